"""Activity log reads: the Configuration → Activity page and one customer's history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from activity.models import Activity
from customers.models import Customer

PAGE_SIZE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass
class ActivityPage:
    entries: list[Activity]
    next_cursor: str | None


def cursor_for(entry: Activity) -> str:
    """ "<microseconds since the epoch>.<id>": exact (no float rounding) and URL-safe."""
    return f"{(entry.at - _EPOCH) // _MICROSECOND}.{entry.pk}"


def cursor_parse(cursor: str | None) -> tuple[datetime, int] | None:
    """The (at, id) a cursor names, or None for a missing or malformed one."""
    try:
        micros, pk = (int(part) for part in (cursor or "").split("."))
        return _EPOCH + micros * _MICROSECOND, pk
    except (ValueError, OverflowError):
        return None


def _mark_customer_targets(entries: Iterable[Activity]) -> None:
    """Set ``target_exists`` on customer entries. Erasure blanks an entry's label, but some
    writers log without one, so an empty label alone does not mean "erased"."""
    entries = [e for e in entries if e.target_type == "customer" and e.target_id]
    unlabelled = {e.target_id for e in entries if not e.target_label}
    existing = (
        set(Customer.objects.filter(pk__in=unlabelled).values_list("pk", flat=True))
        if unlabelled
        else set()
    )
    for entry in entries:
        entry.target_exists = bool(entry.target_label) or entry.target_id in existing


def activity_page(
    *, source: str = "", target_type: str = "", action: str = "", before: str | None = None
) -> ActivityPage:
    """Newest first, keyset-paginated on (at, id): page N costs what page 1 costs."""
    qs = Activity.objects.order_by("-at", "-id")
    if source:
        qs = qs.filter(source=source)
    if target_type:
        qs = qs.filter(target_type=target_type)
    if action:
        qs = qs.filter(action=action)
    if (cursor := cursor_parse(before)) is not None:
        at, pk = cursor
        # at <= cursor lets the scan start at the cursor on the ``at`` index; the OR only
        # settles ties within one microsecond.
        qs = qs.filter(Q(at__lt=at) | Q(at=at, pk__lt=pk), at__lte=at)
    rows = list(qs[: PAGE_SIZE + 1])
    entries = rows[:PAGE_SIZE]
    _mark_customer_targets(entries)
    next_cursor = cursor_for(entries[-1]) if len(rows) > PAGE_SIZE else None
    return ActivityPage(entries, next_cursor)


def activity_for_customer(customer_id: int, limit: int = 20) -> list[Activity]:
    """One customer's history, newest first (served by the (target_type, target_id, at)
    index). Bulk entries without a single target are not included."""
    entries = list(
        Activity.objects.filter(target_type="customer", target_id=customer_id).order_by(
            "-at", "-id"
        )[:limit]
    )
    _mark_customer_targets(entries)
    return entries
