"""Reading events: a customer's timeline (newest first, keyset-paginated) and the catalog."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Q, QuerySet

from events.models import Event, EventType

_CURSOR_PREFIX = "e1:"


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class TimelinePage:
    events: list[Event]
    next_cursor: str | None


def encode_cursor(event: Event) -> str:
    text = f"{_CURSOR_PREFIX}{event.occurred_at.isoformat()}|{event.pk}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError
        moment, _, pk = text.removeprefix(_CURSOR_PREFIX).partition("|")
        at, pk = datetime.fromisoformat(moment), int(pk)
        if at.tzinfo is None or not 0 < pk < 2**63:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("Not a cursor from a previous page's next_cursor.") from None
    return at, pk


def event_timeline(
    customer_id: int,
    *,
    names: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> TimelinePage:
    """One customer's events, newest first; ``since`` inclusive, ``until`` exclusive. Served by
    the (customer, type, time) index: by name, an index range per name; unfiltered, the
    customer's index entries then a top-N sort."""
    qs: QuerySet[Event] = Event.objects.filter(customer_id=customer_id)
    if names is not None:
        qs = qs.filter(event_type__name__in=names)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    if cursor:
        at, pk = decode_cursor(cursor)
        qs = qs.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, pk__lt=pk))
    rows = list(qs.select_related("event_type").order_by("-occurred_at", "-pk")[: limit + 1])
    page = rows[:limit]
    return TimelinePage(page, encode_cursor(page[-1]) if len(rows) > limit else None)


def event_names_for_customer(customer_id: int) -> list[str]:
    """The names of the events one customer has, for the timeline's filter."""
    type_ids = Event.objects.filter(customer_id=customer_id).values("event_type_id").distinct()
    return list(
        EventType.objects.filter(pk__in=type_ids).order_by("name").values_list("name", flat=True)
    )


TIMELINE_PAGE = 25


def customer_timeline(customer_id: int, name: str = "", cursor: str | None = None) -> dict:
    """The customer page's timeline card: a page of events, optionally of one name, and the
    names to choose from. A stale or mangled cursor starts again from the newest event."""
    names = event_names_for_customer(customer_id)
    name = name if name in names else ""
    try:
        page = event_timeline(
            customer_id, names=[name] if name else None, cursor=cursor, limit=TIMELINE_PAGE
        )
    except BadCursor:
        page = event_timeline(customer_id, names=[name] if name else None, limit=TIMELINE_PAGE)
    return {"page": page, "event_names": names, "event_name": name}


CATALOG_SORTS = {
    "name": ("name",),
    "count": ("-event_count", "name"),
    "last_seen": (F("last_seen").desc(nulls_last=True), "name"),
}


def event_catalog(*, q: str = "", kind: str = "", sort: str = "name") -> QuerySet[EventType]:
    """Catalog rows; ``kind`` "custom" or "builtin"; built-in events never seen are listed too
    (they are known up front)."""
    qs = EventType.objects.all()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(label__icontains=q))
    if kind == "custom":
        qs = qs.filter(builtin=False)
    elif kind == "builtin":
        qs = qs.filter(builtin=True)
    return qs.order_by(*CATALOG_SORTS.get(sort, CATALOG_SORTS["name"]))
