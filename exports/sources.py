"""What an export reads: the whole customer list, the customers matching a filter, a
selection of ids, or a segment's members. A source is stored on its Export as plain JSON
(``kind`` + ``query``) so the background job rebuilds exactly the same rows."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from customers.custom_fields import CustomFieldSpec
from customers.export import (
    EXPORT_BATCH,
    ExportColumn,
    export_columns,
    export_rows,
    without_suppressed,
)
from customers.filters import customers_filtered
from customers.models import Customer
from customers.selectors import customer_count
from donotcontact.models import Channel
from exports.models import ExportSource
from segments.models import Membership, Segment
from tags.models import Tag

DESCRIPTION_MAX = 300
# The filter parameters in words, in the filter bar's order; "sort" and "after" change the
# order of the list, not which customers it holds.
FILTER_WORDS = {
    "q": "search",
    "tag": "tag",
    "user_type": "user type",
    "country": "country",
    "created_from": "created from",
    "created_to": "created to",
    "last_seen_from": "last seen from",
    "last_seen_to": "last seen to",
}


class SourceGone(Exception):
    """The segment an export reads was deleted."""


@dataclass(frozen=True)
class Source:
    kind: str
    # ``leave_out`` (a channel), when present, drops the customers the Do Not Contact list
    # suppresses on that channel; stored with the rest so the background job applies it.
    query: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def leave_out(self) -> str:
        channel = self.query.get("leave_out") or ""
        return channel if channel in Channel.values else ""


def source_leaving_out(source: Source, channel: str) -> Source:
    """``source`` without the customers on the Do Not Contact list for ``channel`` ("" keeps
    everyone), said in its description."""
    if not channel:
        return source
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    label = Channel(channel).label
    return Source(
        source.kind,
        {**source.query, "leave_out": channel},
        _clip(f"{source.description}, leaving out those on the Do Not Contact list for {label}"),
    )


def source_for_selection(*, ids: list[int], all_matching: bool, filter_query: str) -> Source:
    """The customers a bulk action names: ticked ids, or all matching the list's filter
    (read in the member's time zone, which the filter's dates are days in)."""
    if not all_matching:
        ids = sorted(set(ids))
        noun = "customer" if len(ids) == 1 else "customers"
        return Source(ExportSource.SELECTION, {"ids": ids}, f"{len(ids):,} selected {noun}")
    params = QueryDict(filter_query or "")
    words = _filter_words(params)
    if not words:
        return Source(ExportSource.ALL, {}, "All customers")
    query = {"filter": filter_query, "tz": timezone.get_current_timezone_name()}
    return Source(ExportSource.FILTER, query, _clip(f"Customers matching {words}"))


def source_for_segment(segment: Segment) -> Source:
    return Source(
        ExportSource.SEGMENT,
        {"segment": segment.pk},
        _clip(f"Segment “{segment.name}” ({segment.member_count:,})"),
    )


def _clip(text: str) -> str:
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def _filter_words(params: QueryDict) -> str:
    parts = []
    for name, word in FILTER_WORDS.items():
        value = params.get(name, "").strip()
        if not value:
            continue
        if name == "tag":
            tag = Tag.objects.filter(pk=int(value)).first() if value.isdigit() else None
            value = tag.name if tag else value
        parts.append(f"{word} = {value}")
    return ", ".join(parts)


def _customers(source: Source) -> QuerySet[Customer]:
    if source.kind == ExportSource.SELECTION:
        return Customer.objects.filter(pk__in=source.query.get("ids", []))
    if source.kind == ExportSource.FILTER:
        try:
            tz = zoneinfo.ZoneInfo(source.query.get("tz") or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = zoneinfo.ZoneInfo("UTC")
        # The filter turns its dates into instants when it builds the queryset: in this zone.
        with timezone.override(tz):
            _, qs = customers_filtered(QueryDict(source.query.get("filter", "")))
        return qs
    return Customer.objects.all()


def _segment_id(source: Source) -> int:
    segment_id = source.query.get("segment")
    if not isinstance(segment_id, int) or not Segment.objects.filter(pk=segment_id).exists():
        raise SourceGone("The segment was deleted.")
    return segment_id


def _base(source: Source) -> tuple[QuerySet, str, str]:
    """(rows, their customer-id key, the path from a row to its customer's fields)."""
    if source.kind == ExportSource.SEGMENT:
        # Driven from the membership key (segment, customer): a range scan of one segment.
        members = Membership.objects.filter(segment_id=_segment_id(source))
        return (
            without_suppressed(members, source.leave_out, column="customer_id"),
            "customer_id",
            "customer__",
        )
    return without_suppressed(_customers(source), source.leave_out), "pk", ""


def source_columns(source: Source, custom: dict[str, CustomFieldSpec]) -> dict[str, ExportColumn]:
    return export_columns(custom, segment=source.kind == ExportSource.SEGMENT)


def source_rows(
    source: Source, columns: list[ExportColumn], batch: int = EXPORT_BATCH
) -> Iterator[list[str]]:
    base, key, prefix = _base(source)
    return export_rows(base, columns, key=key, prefix=prefix, batch=batch)


def source_count_upto(source: Source, limit: int) -> int:
    """How many rows, counting no further than ``limit`` + 1: enough to choose between
    streaming and a background build without counting a million rows."""
    base, _, _ = _base(source)
    return base.order_by()[: limit + 1].count()


def source_estimate(source: Source) -> tuple[int, bool]:
    """(rows, approximate?) for a set too large to count exactly."""
    if source.kind == ExportSource.SEGMENT:
        segment = Segment.objects.get(pk=_segment_id(source))
        # Members left out for the Do Not Contact list make the member count an upper bound.
        return segment.member_count, bool(source.leave_out)
    total = customer_count(_base(source)[0])
    return total.value, total.estimate
