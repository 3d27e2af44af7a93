"""Reads for webhooks: endpoints, the delivery log, and which endpoints use a segment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from webhooks.models import (
    OPEN_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
    EventType,
    Handover,
)

LOG_PAGE = 50


def endpoint_list() -> list[Endpoint]:
    """Every endpoint with how many deliveries wait and how many failed (read from the
    partial index over those two states, however long the delivered log grows)."""
    endpoints = list(Endpoint.objects.order_by("url", "id"))
    counts = (
        Delivery.objects.filter(status__in=OPEN_STATUSES)
        .values_list("endpoint_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_endpoint: dict[tuple[int, str], int] = {(e, s): n for e, s, n in counts}
    for endpoint in endpoints:
        endpoint.pending = by_endpoint.get((endpoint.pk, DeliveryStatus.PENDING), 0)
        endpoint.failed = by_endpoint.get((endpoint.pk, DeliveryStatus.FAILED), 0)
    return endpoints


def endpoint_get(pk: int) -> Endpoint:
    return get_object_or_404(Endpoint, pk=pk)


def endpoints_enabled() -> QuerySet[Endpoint]:
    return Endpoint.objects.filter(enabled=True).order_by("url", "id")


def endpoints_disabled_count() -> int:
    return Endpoint.objects.filter(enabled=False, disabled_at__isnull=False).count()


def endpoints_for_segment(segment_id: int) -> list[Endpoint]:
    """Endpoints that name this segment among the ones they receive."""
    return list(
        Endpoint.objects.filter(all_segments=False, segment_ids__contains=[segment_id]).order_by(
            "url", "id"
        )
    )


def endpoints_by_segment() -> dict[int, list[Endpoint]]:
    """segment id → the endpoints that name it (for the segments list's "Used by"); there are
    a handful of endpoints, so their segment lists are read whole."""
    named: dict[int, list[Endpoint]] = {}
    endpoints = Endpoint.objects.filter(all_segments=False).only(
        "id", "url", "description", "enabled", "segment_ids"
    )
    for endpoint in endpoints.order_by("url", "id"):
        for segment_id in endpoint.segment_ids:
            named.setdefault(segment_id, []).append(endpoint)
    return named


def endpoints_for_every_segment() -> int:
    """How many enabled endpoints receive every segment's events."""
    return Endpoint.objects.filter(all_segments=True, enabled=True).count()


def delivery_get(endpoint: Endpoint, pk: int) -> Delivery:
    return get_object_or_404(Delivery, endpoint=endpoint, pk=pk)


@dataclass
class LogPage:
    deliveries: list[Delivery]
    next_before: str  # "" on the last page


def delivery_log(
    endpoint: Endpoint, *, status: str = "", event: str = "", before: str = ""
) -> LogPage:
    """The endpoint's deliveries, newest first, with their latest attempt; keyset pages."""
    qs = Delivery.objects.filter(endpoint=endpoint).defer("body", "transition_ids")
    if status in DeliveryStatus.values:
        qs = qs.filter(status=status)
    if event in EventType.values:
        qs = qs.filter(event=event)
    if before:
        try:
            stamp, pk = before.split("_", 1)
            qs = qs.filter(
                Q(created_at__lt=datetime.fromisoformat(stamp))
                | Q(created_at=datetime.fromisoformat(stamp), pk__lt=int(pk))
            )
        except ValueError:
            pass  # a mangled link: the first page
    rows = list(qs.order_by("-created_at", "-id")[: LOG_PAGE + 1])
    more = len(rows) > LOG_PAGE
    rows = rows[:LOG_PAGE]
    latest = {}
    for attempt in (
        DeliveryAttempt.objects.filter(delivery__in=rows)
        .order_by("delivery_id", "-number", "-id")
        .distinct("delivery_id")
    ):
        latest[attempt.delivery_id] = attempt
    for row in rows:
        row.latest_attempt = latest.get(row.pk)
    next_before = f"{rows[-1].created_at.isoformat()}_{rows[-1].pk}" if more else ""
    return LogPage(rows, next_before)


def handovers_recent(endpoint: Endpoint, limit: int = 10) -> list[Handover]:
    return list(endpoint.handovers.select_related("created_by")[:limit])
