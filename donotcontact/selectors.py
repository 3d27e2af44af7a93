"""Do Not Contact reads: keyset pages of the list in every column's order, totals that stay
cheap at a million entries, the filter's choices, the check, and a customer's status."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.db import connection
from django.db.models import BooleanField, F, QuerySet
from django.db.models.expressions import RawSQL
from django.shortcuts import get_object_or_404

from donotcontact.models import Channel, Entry, EntryImport, ImportStatus
from donotcontact.services import CHOICE_CACHE_KEYS
from donotcontact.suppression import PHONE_CHANNELS, entries_matching_q

if TYPE_CHECKING:
    from customers.models import Customer

PAGE_SIZE = 50
# Above this many rows an exact count(*) costs more than the page; show the planner's estimate.
EXACT_COUNT_LIMIT = 100_000
CHOICES_LIMIT = 200
CHOICES_CACHE_SECONDS = 300
_T = Entry._meta.db_table

# The list's columns: sort key → the model field it orders by. Every page is a keyset page on
# (field, id); a row comparison keeps deep pages as cheap as the first.
SORT_FIELDS: dict[str, str] = {
    "contact": "contact",
    "channel": "channel",
    "sender": "sender",
    "account": "account",
    "source": "source",
    "added": "added_at",
    "reason": "reason",
    "note": "note",
}
SORTS = set(SORT_FIELDS) | {f"-{key}" for key in SORT_FIELDS}
DEFAULT_SORT = "-added"


def sort_from(value: str | None) -> str:
    return value if value in SORTS else DEFAULT_SORT


def entry_get(pk: int) -> Entry:
    """Every member may read every entry; the view guards the role."""
    return get_object_or_404(Entry, pk=pk)


def _encode_cursor(column: str, row: Entry) -> str:
    value = getattr(row, column)
    if isinstance(value, datetime):
        value = value.isoformat()
    return json.dumps([value, row.pk], separators=(",", ":"))


def _decode_cursor(column: str, cursor: str) -> tuple[Any, int] | None:
    """(value, id), or None for a cursor that does not parse (treated as the first page)."""
    try:
        value, pk = json.loads(cursor)
        if not isinstance(pk, int) or not isinstance(value, str) or not 0 < pk < 2**63:
            return None
        if "\x00" in value:
            return None
        return (datetime.fromisoformat(value) if column == "added_at" else value), pk
    except (ValueError, TypeError):
        return None


def _after(column: str, descending: bool, value: Any, pk: int) -> RawSQL:
    op = "<" if descending else ">"
    return RawSQL(  # noqa: S611 - the column comes from SORT_FIELDS; values are parameters
        f'("{_T}"."{column}", "{_T}"."id") {op} (%s, %s)',
        [value, pk],
        output_field=BooleanField(),
    )


@dataclass
class Total:
    value: int
    estimate: bool


@dataclass
class EntryPage:
    rows: list[Entry]
    next_cursor: str | None
    total: Total
    sort: str


def entry_count(qs: QuerySet[Entry]) -> Total:
    """Exact when the planner expects fewer than EXACT_COUNT_LIMIT rows, else its estimate."""
    if qs.query.is_empty():
        return Total(0, False)
    if not qs.query.where:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [_T])
            estimate = max(0, int(cursor.fetchone()[0]))
    else:
        plan = json.loads(qs.order_by().explain(format="json"))
        estimate = int(plan[0]["Plan"]["Plan Rows"])
    if estimate < EXACT_COUNT_LIMIT:
        return Total(qs.count(), False)
    return Total(estimate, True)


def entry_page(
    qs: QuerySet[Entry], *, sort: str = DEFAULT_SORT, after: str = "", size: int = PAGE_SIZE
) -> EntryPage:
    """One page of ``qs`` in ``sort`` order after the cursor ``after`` (keyset, no OFFSET)."""
    sort = sort_from(sort)
    descending = sort.startswith("-")
    column = SORT_FIELDS[sort.lstrip("-")]
    page_qs = qs.select_related("added_by")
    if after and (position := _decode_cursor(column, after)):
        page_qs = page_qs.filter(_after(column, descending, *position))
    key = F(column).desc() if descending else F(column).asc()
    rows = list(page_qs.order_by(key, "-pk" if descending else "pk")[: size + 1])
    next_cursor = _encode_cursor(column, rows[size - 1]) if len(rows) > size else None
    return EntryPage(rows[:size], next_cursor, entry_count(qs), sort)


def _distinct(column: str, cache_key: str) -> list[str]:
    values = cache.get(cache_key)
    if values is None:
        values = list(
            Entry.objects.exclude(**{column: ""})
            .order_by(column)
            .values_list(column, flat=True)
            .distinct()[:CHOICES_LIMIT]
        )
        cache.set(cache_key, values, CHOICES_CACHE_SECONDS)
    return values


def sender_choices() -> list[str]:
    """Senders on the list, for the filter (cached: a scan at a million entries; services
    drop the cache when entries are added)."""
    return _distinct("sender", CHOICE_CACHE_KEYS[0])


def account_choices() -> list[str]:
    return _distinct("account", CHOICE_CACHE_KEYS[1])


# --- The check ----------------------------------------------------------------------------


def entries_suppressing(
    contact: str, channel: str | None = None, sender: str = "", account: str = ""
) -> list[Entry]:
    """The entries that suppress the (normalised) ``contact`` on ``channel`` (None: on any)
    for ``sender`` and ``account``: one probe of the unique index, which leads with the
    contact. Empty when nothing suppresses it."""
    q = entries_matching_q(contact, channel, sender, account)
    return list(Entry.objects.filter(q).order_by("channel", "sender", "account", "pk"))


# --- A customer's status ------------------------------------------------------------------

CUSTOMER_CHANNELS = tuple(Channel)


@dataclass
class ChannelStatus:
    channel: str
    label: str
    address: str  # the customer's e-mail or phone for this channel; "" when they have none
    reachable: bool  # has an address (push: a device token) at all
    suppressed: bool  # an entry for every sender and account covers the channel
    entries: list[Entry] = field(default_factory=list)  # every entry touching the channel

    @property
    def scoped(self) -> bool:
        """Entries exist, but only for some senders or accounts."""
        return bool(self.entries) and not self.suppressed


@dataclass
class CustomerStatus:
    channels: list[ChannelStatus]
    contacts: list[str]  # the customer's e-mail and phone, for links to the filtered list

    @property
    def any_entries(self) -> bool:
        return any(c.entries for c in self.channels)


def customer_dnc_status(customer: Customer) -> CustomerStatus:
    """Per channel: is the customer suppressed, and by which entries. One query for both
    contacts; the rule is suppression.py's (an entry on the channel or on every channel; only
    entries for every sender and account suppress outright, others are listed as scoped)."""
    contacts = [c for c in (customer.email, customer.phone) if c]
    entries = list(
        Entry.objects.filter(contact__in=contacts).order_by("channel", "sender", "account", "pk")
    )
    channels = []
    for channel in CUSTOMER_CHANNELS:
        address = customer.phone if channel in PHONE_CHANNELS else customer.email
        # Push needs a device token; the suppression is still by the phone number.
        reachable = bool(customer.device_tokens) if channel == Channel.PUSH else bool(address)
        matching = [
            e for e in entries if address and e.contact == address and e.channel in (channel, "")
        ]
        channels.append(
            ChannelStatus(
                channel=channel.value,
                label=channel.label,
                address=address,
                reachable=reachable,
                suppressed=any(not e.sender and not e.account for e in matching),
                entries=matching,
            )
        )
    return CustomerStatus(channels=channels, contacts=contacts)


def entry_imports_recent(limit: int = 5) -> list[EntryImport]:
    """The latest imports that got past the wizard's first steps, for the list page."""
    return list(
        EntryImport.objects.exclude(status=ImportStatus.DRAFT)
        .select_related("created_by")
        .only(
            "file_name",
            "status",
            "added",
            "present",
            "invalid",
            "created_at",
            "created_by__name",
            "created_by__email",
        )[:limit]
    )
