"""Writes for webhooks: endpoints (create, edit, delete, enable, rotate the secret), test
events, replays and hand-overs. Each records its activity and enqueues on commit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import uuid4

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from activity.services import Actor, activity_record
from segments.models import Segment
from webhooks import delivery, signing, ssrf
from webhooks.models import (
    ADMIN_DISABLED_REASON,
    MAX_BATCH_SIZE,
    SUBSCRIBABLE,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
    EventType,
    Handover,
)
from webhooks.payload import CUSTOM_PREFIX, PROFILE_FIELDS
from workbench.jobs import enqueue_on_commit

MAX_ID = 2**63 - 1  # PostgreSQL bigint


class WebhookInvalid(Exception):
    """Input a member can correct; the message says how."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class EndpointData:
    url: str
    description: str = ""
    events: list[str] | None = None
    all_segments: bool = True
    segment_ids: list[int] | None = None
    profile_fields: list[str] | None = None
    batch_size: int = 1


def _clean(data: EndpointData) -> EndpointData:
    url = ssrf.ascii_url(data.url.strip())
    if len(url) > Endpoint._meta.get_field("url").max_length:  # encoding lengthens it
        raise WebhookInvalid("The URL is too long.", "url")
    try:
        ssrf.url_check(url)
    except ssrf.AddressRefused as exc:
        raise WebhookInvalid(str(exc), "url") from exc
    events = list(dict.fromkeys(data.events or []))
    if not events:
        raise WebhookInvalid("Choose at least one event.", "events")
    if unknown := [e for e in events if e not in SUBSCRIBABLE]:
        raise WebhookInvalid(f"Unknown event: {', '.join(unknown)}.", "events")
    fields = list(dict.fromkeys(data.profile_fields or []))
    for name in fields:
        if name not in PROFILE_FIELDS and not name.startswith(CUSTOM_PREFIX):
            raise WebhookInvalid(f"Unknown profile field “{name}”.", "profile_fields")
    if not 1 <= data.batch_size <= MAX_BATCH_SIZE:
        raise WebhookInvalid(f"Batch size must be 1 to {MAX_BATCH_SIZE}.", "batch_size")
    segment_ids = sorted(set(data.segment_ids or []))
    # Checked here for every caller: an id beyond bigint would break the relay's
    # ``::bigint[]`` cast on every fan-out.
    if any(not 1 <= pk <= MAX_ID for pk in segment_ids) or Segment.objects.filter(
        pk__in=segment_ids
    ).count() != len(segment_ids):
        raise WebhookInvalid("Choose segments that exist.", "segment_ids")
    return EndpointData(
        url=url,
        description=data.description.strip()[:200],
        events=events,
        all_segments=data.all_segments,
        segment_ids=segment_ids,
        profile_fields=fields,
        batch_size=data.batch_size,
    )


def _apply(endpoint: Endpoint, data: EndpointData) -> None:
    endpoint.url = data.url
    endpoint.description = data.description
    endpoint.events = data.events or []
    endpoint.all_segments = data.all_segments
    endpoint.segment_ids = data.segment_ids or []
    endpoint.profile_fields = data.profile_fields or []
    endpoint.batch_size = data.batch_size


def endpoint_create(*, data: EndpointData, actor: Actor) -> tuple[Endpoint, str]:
    """Create an endpoint; returns it and its secret (shown to the member once)."""
    from webhooks.relay import cursor_start

    clean = _clean(data)
    endpoint = Endpoint(secret=signing.secret_new(), created_by=actor.member)
    _apply(endpoint, clean)
    with transaction.atomic():
        endpoint.cursor = cursor_start()  # from now on, not the history
        endpoint.save()
        _record(actor, "webhook.created", endpoint)
    return endpoint, endpoint.secret


def endpoint_update(*, endpoint: Endpoint, data: EndpointData, actor: Actor) -> Endpoint:
    clean = _clean(data)
    with transaction.atomic():
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        _apply(locked, clean)
        locked.updated_at = timezone.now()
        locked.save()
        _record(actor, "webhook.updated", locked)
    return locked


def endpoint_delete(*, endpoint: Endpoint, actor: Actor) -> None:
    with transaction.atomic():
        _record(actor, "webhook.deleted", endpoint)
        endpoint.delete()


def endpoint_enable(*, endpoint: Endpoint, enabled: bool, actor: Actor) -> Endpoint:
    """Turn sending on or off. Enabling clears the failure count and resumes what waited."""
    with transaction.atomic():
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        if locked.enabled == enabled:
            return locked
        locked.enabled = enabled
        if enabled:
            locked.consecutive_failures = 0
            locked.disabled_at, locked.disabled_reason = None, ""
        else:
            locked.disabled_at, locked.disabled_reason = timezone.now(), ADMIN_DISABLED_REASON
        locked.save()
        _record(actor, "webhook.enabled" if enabled else "webhook.disabled", locked)
        if enabled:
            transaction.on_commit(_wake_all)
    return locked


def _wake_all() -> None:
    from webhooks.relay import relay_wake

    relay_wake()
    delivery.send_wake()


def endpoint_rotate_secret(*, endpoint: Endpoint, actor: Actor) -> tuple[Endpoint, str]:
    """A new secret; the old one keeps signing (as a second signature) during the overlap."""
    with transaction.atomic():
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + timedelta(
            hours=settings.WEBHOOKS_SECRET_OVERLAP_HOURS
        )
        locked.secret = signing.secret_new()
        locked.save()
        _record(actor, "webhook.secret_rotated", locked)
    return locked, locked.secret


def endpoint_send_test(*, endpoint: Endpoint, actor: Actor) -> tuple[Delivery, DeliveryAttempt]:
    """Send a webhook-test delivery now, in the request (the member sees the answer at
    once); if it fails it is retried like any delivery."""
    now = timezone.now()
    body = json.dumps(
        {
            "type": EventType.TEST,
            "timestamp": now.isoformat(),
            "data": [{"message": "A test event from Workbench.", "endpoint_id": endpoint.pk}],
        }
    )
    with transaction.atomic():
        test = Delivery.objects.create(
            endpoint=endpoint,
            webhook_id=f"msg_{endpoint.pk}_test_{uuid4().hex}",
            event=EventType.TEST,
            body=body,
            item_count=1,
            attempts=1,
            next_attempt_at=now + delivery.lease(),
            give_up_at=delivery.give_up_time(now),
            created_at=now,
        )
        _record(actor, "webhook.tested", endpoint)
    test.endpoint = endpoint
    attempt = delivery.send_claimed_one(test)
    test.refresh_from_db()
    return test, attempt


def delivery_replay(*, item: Delivery, actor: Actor) -> None:
    """Send one delivery again (same webhook-id and body), with a fresh retry window."""
    deliveries_replay(endpoint=item.endpoint, ids=[item.pk], actor=actor)


def deliveries_replay(
    *,
    endpoint: Endpoint,
    actor: Actor,
    ids: list[int] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """Queue deliveries again: the ones given, or all created in [start, end)."""
    qs = Delivery.objects.filter(endpoint=endpoint)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    else:
        if start is None or end is None or start >= end:
            raise WebhookInvalid("Choose a time range whose start is before its end.")
        qs = qs.filter(created_at__gte=start, created_at__lt=end)
    now = timezone.now()
    with transaction.atomic():
        count = qs.update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            give_up_at=delivery.give_up_time(now),
        )
        _record(actor, "webhook.replayed", endpoint, count=count)
        if count:
            transaction.on_commit(delivery.send_wake)
    return count


def handover_create(
    *,
    endpoint: Endpoint,
    actor: Actor,
    description: str,
    customer_ids: list[int] | None = None,
    filter_query: str | None = None,
    segment_id: int | None = None,
    exclude_channel: str = "",
    tz: str = "UTC",
) -> Handover:
    """Queue sending an audience to ``endpoint`` once (webhooks/audience.py)."""
    from webhooks.tasks import send_audience

    if not endpoint.enabled:
        raise WebhookInvalid("That endpoint is disabled; enable it first.", "endpoint")
    # The job casts them to bigint[]: one id out of range would fail it on every retry.
    if any(not 1 <= pk <= MAX_ID for pk in customer_ids or []) or (
        segment_id is not None and not 1 <= segment_id <= MAX_ID
    ):
        raise WebhookInvalid("The audience holds ids that are not valid.", "customer_ids")
    with transaction.atomic():
        handover = Handover.objects.create(
            endpoint=endpoint,
            description=description[:300],
            customer_ids=sorted(set(customer_ids or [])),
            filter_query=filter_query or "",
            use_filter=filter_query is not None,
            segment_id=segment_id,
            exclude_channel=exclude_channel,
            timezone=tz,
            created_by=actor.member,
        )
        _record(actor, "webhook.audience_sent", endpoint, changes={"audience": description})
        enqueue_on_commit(send_audience, handover.pk)
    return handover


def _record(actor: Actor, action: str, endpoint: Endpoint, **kwargs) -> None:
    activity_record(
        actor,
        action,
        target_type="webhook",
        target_id=endpoint.pk,
        target_label=endpoint.label,
        **kwargs,
    )
