"""Do Not Contact writes. Adds are one set-based statement whatever the number of entries
(``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING``): re-adding an
identical entry is a no-op the unique index decides, so concurrent adders of the same entry
neither fail nor duplicate it. Every add and remove queues the customers holding the contacts
for segment re-evaluation in the same transaction, and records one activity entry per action
(bulk actions record a count, not one row per entry)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import QuerySet

from activity.services import Actor, activity_record
from donotcontact.contacts import CleanEntry, ContactInvalid
from donotcontact.models import Entry, Source
from donotcontact.suppression import (
    ADDED_CONTACTS_TABLE,
    customers_mark_for_added_contacts,
    customers_mark_for_contacts,
)

REASON_MAX = 200
NOTE_MAX = 2000
ACTIVITY_TARGET = "dnc_entry"
# Cache keys of the list's sender and account filter choices (selectors.py), dropped on adds.
CHOICE_CACHE_KEYS = ("dnc:senders", "dnc:accounts")
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTI_LINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def reason_clean(value: object) -> str:
    return _text_clean(value, "reason", REASON_MAX, one_line=True)


def note_clean(value: object) -> str:
    return _text_clean(value, "note", NOTE_MAX, one_line=False)


def _text_clean(value: object, what: str, max_length: int, *, one_line: bool) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ContactInvalid(f"The {what} must be text.")
    if "\x00" in value:
        raise ContactInvalid(f"The {what} contains a NUL character.")
    value = " ".join(value.split()) if one_line else value.strip()
    # Control characters are invisible here and dropped by a spreadsheet export, where they
    # could hide a formula; a note keeps its line breaks and tabs.
    if (_CONTROL_ONE_LINE if one_line else _CONTROL_MULTI_LINE).search(value):
        raise ContactInvalid(f"The {what} contains a control character.")
    if len(value) > max_length:
        raise ContactInvalid(f"The {what} is longer than {max_length} characters.")
    return value


@dataclass
class AddResult:
    added: list[Entry] = field(default_factory=list)
    existing: int = 0

    @property
    def added_keys(self) -> set[tuple[str, str, str, str]]:
        return {(e.contact, e.channel, e.sender, e.account) for e in self.added}


def entries_add(
    *,
    entries: Sequence[CleanEntry],
    source: str,
    reason: str = "",
    note: str = "",
    actor: Actor,
    details: Sequence[tuple[str, str]] | None = None,
) -> AddResult:
    """Add entries (already normalised by ``contacts.entry_clean``). ``details`` gives each
    entry its own (reason, note) where callers have them (the API); otherwise every entry gets
    ``reason`` and ``note``. Entries already on the list keep their original time, author and
    source; they count as ``existing``. Repeats within ``entries`` count once."""
    if source not in Source.values:
        raise ValueError(f"unknown source {source!r}")
    if details is not None and len(details) != len(entries):
        raise ValueError("details must give one (reason, note) per entry")
    reason, note = reason_clean(reason), note_clean(note)
    rows: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    for i, entry in enumerate(entries):
        extra = (reason_clean(details[i][0]), note_clean(details[i][1])) if details else None
        rows.setdefault(entry.key, extra or (reason, note))
    if not rows:
        return AddResult()
    keys = list(rows)
    columns = list(zip(*keys, strict=True))
    reasons = [rows[k][0] for k in keys]
    notes = [rows[k][1] for k in keys]
    member_id = actor.member.pk if actor.member else None
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO donotcontact_entry"
                " (contact, channel, sender, account, source, reason, note, added_at, added_by_id)"
                " SELECT c, ch, s, a, %s, r, n, now(), %s FROM unnest("
                "   %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]"
                " ) AS x(c, ch, s, a, r, n)"
                # A stable order: concurrent adders of overlapping batches take the unique
                # index's locks in the same order and cannot deadlock.
                " ORDER BY c, ch, s, a"
                " ON CONFLICT (contact, channel, sender, account) DO NOTHING"
                " RETURNING id, contact, channel, sender, account, reason, note, added_at",
                [source, member_id, *map(list, columns), reasons, notes],
            )
            added = [
                Entry.from_db(
                    None,
                    ["id", "contact", "channel", "sender", "account", "reason", "note", "added_at"],
                    row,
                )
                for row in sorted(cursor.fetchall())
            ]
        for entry in added:
            entry.source, entry.added_by_id = source, member_id
        if added:
            customers_mark_for_contacts({e.contact for e in added})
            _record_add(actor, added, source)
    cache.delete_many(CHOICE_CACHE_KEYS)
    return AddResult(added=added, existing=len(keys) - len(added))


def _record_add(actor: Actor, added: list[Entry], source: str) -> None:
    # A single entry is labelled with its contact: the log is the audit trail of who suppressed
    # (or, on removal, unsuppressed) whom. Bulk actions record the count only.
    if len(added) == 1:
        entry = added[0]
        activity_record(
            actor,
            "do_not_contact.added",
            target_type=ACTIVITY_TARGET,
            target_id=entry.pk,
            target_label=str(entry),
            changes={"source": Source(source).label},
        )
        return
    activity_record(
        actor,
        "do_not_contact.added",
        target_type=ACTIVITY_TARGET,
        target_label=f"{len(added):,} Do Not Contact entries",
        changes={"entries": len(added), "source": Source(source).label},
        count=len(added),
    )


def entries_remove(*, ids: Sequence[int], actor: Actor) -> int:
    """Remove the entries with these ids (unknown ids are ignored); returns how many went."""
    return entries_remove_matching(Entry.objects.filter(pk__in=list(ids)), actor=actor)


def entries_remove_matching(entries: QuerySet[Entry], *, actor: Actor) -> int:
    """Remove every entry of ``entries`` (e.g. all matching the list's filter) in one
    statement; returns how many went. The removed contacts go to a temporary table, not into
    Python: "all matching" may be a million entries."""
    if entries.query.is_empty():
        # An invalid filter gives .none(), which has no SQL (EmptyResultSet): nothing to remove.
        return 0
    sql, params = entries.order_by().values("pk").query.sql_with_params()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # As the import does (importing._apply_chunk): created once per connection,
            # emptied per statement and on commit.
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {ADDED_CONTACTS_TABLE} (contact text)"
                " ON COMMIT DELETE ROWS"
            )
            cursor.execute(f"TRUNCATE {ADDED_CONTACTS_TABLE}")
            cursor.execute(
                # Django compiled the subquery; values stay parameters.
                "WITH removed AS (DELETE FROM donotcontact_entry WHERE id IN ("  # noqa: S608
                f"{sql}) RETURNING id, contact, channel),"
                f" kept AS (INSERT INTO {ADDED_CONTACTS_TABLE} SELECT contact FROM removed)"
                # The count, and the one entry's details for the activity label.
                " SELECT count(*), min(id), min(contact), min(channel) FROM removed",
                params,
            )
            count, pk, contact, channel = cursor.fetchone()
        if count:
            customers_mark_for_added_contacts()
            if count == 1:
                activity_record(
                    actor,
                    "do_not_contact.removed",
                    target_type=ACTIVITY_TARGET,
                    target_id=pk,
                    target_label=str(Entry(contact=contact, channel=channel)),
                )
            else:
                activity_record(
                    actor,
                    "do_not_contact.removed",
                    target_type=ACTIVITY_TARGET,
                    target_label=f"{count:,} Do Not Contact entries",
                    changes={"entries": count},
                    count=count,
                )
    return count


def entry_remove(*, entry: Entry, actor: Actor) -> bool:
    return entries_remove(ids=[entry.pk], actor=actor) == 1


def entries_exported(*, count: int, fmt: str, actor: Actor) -> None:
    """Exports change nothing but hand personal data out: the log says who took how much."""
    activity_record(
        actor,
        "do_not_contact.exported",
        target_type=ACTIVITY_TARGET,
        target_label=f"{count:,} Do Not Contact entries",
        changes={"entries": count, "format": fmt.upper()},
        count=max(count, 1),
    )
