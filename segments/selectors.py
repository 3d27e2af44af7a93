"""Segment reads for the pages and the API."""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from customers.models import Customer
from segments.models import Membership, Segment, SegmentSize

SEGMENT_SORTS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "size": ("member_count", "id"),
    "-size": ("-member_count", "-id"),
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
    "updated": ("updated_at", "id"),
    "-updated": ("-updated_at", "-id"),
}
MEMBERS_PAGE = 50


def segment_get(pk: Any) -> Segment:
    try:
        return Segment.objects.get(pk=int(pk))
    except (Segment.DoesNotExist, TypeError, ValueError):
        raise Http404("No such segment.") from None


def segment_list(q: str = "", sort: str = "name") -> QuerySet[Segment]:
    qs = Segment.objects.all()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return qs.order_by(*SEGMENT_SORTS.get(sort, SEGMENT_SORTS["name"]))


def used_by() -> dict[int, list[Segment]]:
    """segment id → the segments whose rules read it (there are at most a few hundred)."""
    users: dict[int, list[Segment]] = defaultdict(list)
    for segment in Segment.objects.only("id", "name", "depends_on"):
        for dep in segment.depends_on:
            users[dep].append(segment)
    return users


def size_histories(segments: list[Segment], days: int = 30) -> dict[int, list[SegmentSize]]:
    """The last ``days`` daily sizes of each segment, oldest first, in one query."""
    since = timezone.localdate() - timedelta(days=days)
    histories: dict[int, list[SegmentSize]] = {s.pk: [] for s in segments}
    for size in SegmentSize.objects.filter(segment__in=segments, day__gt=since).order_by("day"):
        histories[size.segment_id].append(size)
    return histories


def encode_cursor(customer_id: int) -> str:
    return base64.urlsafe_b64encode(f"m1:{customer_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The customer id a members page starts after; ValueError when malformed."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "m1":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("Invalid cursor.") from None


@dataclass
class MembersPage:
    members: list[Customer]
    next_cursor: str | None


def segment_members(
    segment: Segment, *, q: str = "", after: int | None = None, limit: int = MEMBERS_PAGE
) -> MembersPage:
    """Members in customer id order, keyset paginated on the membership key, each with its
    ``entered_at``; ``q`` matches the start of the user ID, e-mail or name."""
    ids = Membership.objects.filter(segment=segment)
    if after is not None:
        ids = ids.filter(customer_id__gt=after)
    entered = Membership.objects.filter(segment=segment, customer_id=OuterRef("pk"))
    customers = Customer.objects.filter(id__in=ids.values("customer_id")).annotate(
        entered_at=Subquery(entered.values("entered_at")[:1])
    )
    if q:
        customers = customers.filter(
            Q(user_id__istartswith=q) | Q(email__istartswith=q.lower()) | Q(name__istartswith=q)
        )
    rows = list(customers.order_by("id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return MembersPage(rows, encode_cursor(rows[-1].pk) if more and rows else None)


def customer_segments(customer: Customer) -> list[tuple[Segment, Any]]:
    """The segments a customer is in, with when they entered, by segment name."""
    entered = dict(
        Membership.objects.filter(customer=customer).values_list("segment_id", "entered_at")
    )
    segments = Segment.objects.filter(pk__in=entered).order_by("name")
    return [(s, entered[s.pk]) for s in segments]
