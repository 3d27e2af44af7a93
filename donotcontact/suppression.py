"""How Do Not Contact entries suppress customers. One set of rules, used by the check API, the
customer page, the segment condition, the reachable counts, exports and hand-overs:

- A customer's address for a channel is their e-mail for Email, their phone number for SMS,
  WhatsApp, Viber, RCS and Voice, and their phone number for Push (push needs a device token
  to be reachable; the suppression is by the phone number the person gave).
- An entry suppresses that address on its channel, or on every channel when it has none.
- An entry with a sender suppresses only messages from that sender; one without, every sender.
  The same for accounts.
- Asked without a sender (or account), the question is "suppressed whatever the sender", so
  only entries for every sender count; asked with one, entries for it and for every sender do.

The SQL fragments here read ``donotcontact_entry`` through its unique index, which leads with
the contact: one index probe per customer for incremental evaluation, a hash anti-join for a
whole base. The reachable counts read the Email entry and the suppressed phone numbers
(``reach_joins_sql``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Q

from donotcontact.models import Channel, Entry, SuppressedPhone

PHONE_CHANNELS = frozenset(
    {Channel.SMS, Channel.WHATSAPP, Channel.VIBER, Channel.RCS, Channel.VOICE, Channel.PUSH}
)


def address_column(channel: str, alias: str = "c") -> str:
    """The customer column that holds their contact for ``channel``."""
    if channel == Channel.EMAIL:
        return f"{alias}.email"
    if channel in PHONE_CHANNELS:
        return f"{alias}.phone"
    raise ValueError(f"unknown channel {channel!r}")


def has_address_sql(channel: str, alias: str = "c") -> str:
    """True when the customer can be reached on ``channel`` at all."""
    if channel == Channel.PUSH:
        return f"(jsonb_array_length({alias}.device_tokens) > 0)"
    return f"({address_column(channel, alias)} <> '')"


def _scope_sql(sender: str, account: str) -> tuple[str, list[str]]:
    sql, params = [], []
    for column, value in (("sender", sender), ("account", account)):
        if value:
            sql.append(f"dnc.{column} IN ('', %s)")
            params.append(value)
        else:
            sql.append(f"dnc.{column} = ''")
    return " AND ".join(sql), params


def suppressed_sql(
    channel: str | None, *, sender: str = "", account: str = "", alias: str = "c"
) -> tuple[str, list[str]]:
    """An SQL condition on customer ``alias``: true when an entry suppresses them on
    ``channel`` (None: on some channel) for ``sender`` and ``account``."""
    scope, params = _scope_sql(sender, account)
    if channel is None:
        return (
            "(EXISTS (SELECT 1 FROM donotcontact_entry dnc"
            f" WHERE dnc.contact = {alias}.email AND {scope})"
            " OR EXISTS (SELECT 1 FROM donotcontact_entry dnc"
            f" WHERE dnc.contact = {alias}.phone AND {scope}))",
            [*params, *params],
        )
    return (
        "EXISTS (SELECT 1 FROM donotcontact_entry dnc"
        f" WHERE dnc.contact = {address_column(channel, alias)}"
        f" AND dnc.channel IN (%s, '') AND {scope})",
        [channel, *params],
    )


# One bit per channel in donotcontact_suppressedphone (models.SuppressedPhone); an entry for
# every channel sets them all. Migration 0003's dnc_channel_bits() says the same in SQL.
CHANNEL_BITS = {channel.value: 1 << i for i, channel in enumerate(Channel)}


def reach_joins_sql(channels: Iterable[str], alias: str = "c") -> tuple[str, dict[str, str]]:
    """Whether a customer is reachable on each of ``channels`` (has the channel's address, and
    no entry for every sender and account suppresses it), for counting many customers: two
    LEFT JOINs that each find at most one row per customer, whatever the number of channels:

    - the e-mail address to its entry for Email, every sender and account (the only entry
      that can suppress it so: e-mail addresses are on the list for Email only);
    - the phone number to its suppressed channels (models.SuppressedPhone, kept by triggers).

    The planner probes the unique indexes for a few customers and hashes for many. Returns
    the LEFT JOIN clauses and, per channel, a condition on them (constants only)."""
    joins = (
        f" LEFT JOIN {Entry._meta.db_table} dnc_e ON dnc_e.contact = {alias}.email"
        f" AND dnc_e.channel = '{Channel.EMAIL.value}' AND dnc_e.sender = ''"
        " AND dnc_e.account = ''"
        f" LEFT JOIN {SuppressedPhone._meta.db_table} dnc_p ON dnc_p.contact = {alias}.phone"
    )
    conditions = {}
    for channel in channels:
        if channel == Channel.EMAIL:
            suppressed = "dnc_e.id IS NOT NULL"
        else:
            suppressed = f"COALESCE(dnc_p.channels, 0) & {CHANNEL_BITS[channel]} <> 0"
        conditions[channel] = f"({has_address_sql(channel, alias)} AND NOT {suppressed})"
    return joins, conditions


def entries_matching_q(
    contact: str, channel: str | None = None, sender: str = "", account: str = ""
) -> Q:
    """The entries that suppress ``contact`` on ``channel`` (None: any) for sender/account,
    as a filter on Entry; the same rule as ``suppressed_sql``."""
    q = Q(contact=contact)
    if channel:
        q &= Q(channel__in=[channel, ""])
    q &= Q(sender__in=["", sender]) if sender else Q(sender="")
    q &= Q(account__in=["", account]) if account else Q(account="")
    return q


# The temporary table ``customers_mark_for_added_contacts`` reads: one ``contact`` column.
ADDED_CONTACTS_TABLE = "dnc_added_contacts"


def customers_mark_for_contacts(contacts: Iterable[str]) -> None:
    """Queue the customers whose e-mail or phone is among ``contacts`` for incremental segment
    evaluation, in the caller's transaction. Skipped when no segment reads the list."""
    contacts = sorted(set(contacts))
    if contacts:
        _mark("= ANY(%s)", [contacts])


def customers_mark_for_added_contacts() -> None:
    """``customers_mark_for_contacts`` for the contacts the caller put in the temporary table
    ADDED_CONTACTS_TABLE, set-based for imports of millions (a join, not a Python list)."""
    _mark(f"IN (SELECT contact FROM {ADDED_CONTACTS_TABLE})", [])


def _mark(contacts_sql: str, params: list) -> None:
    from segments.fields import ChangeKind
    from segments.incremental import pending_mark_selected

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM segments_segment WHERE change_kinds & %s <> 0)",
            [ChangeKind.DO_NOT_CONTACT],
        )
        if not cursor.fetchone()[0]:
            return
    pending_mark_selected(
        f"SELECT id, %s AS k FROM (SELECT c.id FROM customers_customer c WHERE c.email"
        f" {contacts_sql} UNION SELECT c.id FROM customers_customer c WHERE c.phone"
        f" {contacts_sql}) x",
        [ChangeKind.DO_NOT_CONTACT, *params, *params],
    )
