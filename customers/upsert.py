"""Set-based create-or-update of customers keyed by user ID (the API's PUT and bulk paths, the
customer form). A whole batch is two statements: an UPDATE joined to the batch, then an INSERT
of the user IDs it did not find. The batch travels as one JSON parameter, so only the keys a
client sent change (partial updates) and nothing user-typed becomes SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from django.db import connection, transaction
from psycopg.types.json import Jsonb

from activity.services import Actor, activity_record
from customers.profile import (
    STANDARD_FIELDS,
    CleanProfile,
    FieldError,
    ProfileInvalid,
    mask_changes,
)
from segments.fields import ChangeKind
from segments.incremental import pending_mark

# Column names come from the code's registry, never from input.
_TEXT_COLUMNS = list(STANDARD_FIELDS)

_INPUT = """
WITH i AS (
    SELECT e->>'user_id' AS user_id, e->'set' AS s, e->'custom_set' AS cs,
           ARRAY(SELECT jsonb_array_elements_text(e->'custom_unset')) AS cu
    FROM jsonb_array_elements(%s) AS e
)
"""

# The new value of each column: the batch's where the item has the key, else the row's.
_NEW_VALUE = {
    **{
        col: f"CASE WHEN i.s ? '{col}' THEN i.s->>'{col}' ELSE c.{col} END" for col in _TEXT_COLUMNS
    },
    "device_tokens": "CASE WHEN i.s ? 'device_tokens' THEN i.s->'device_tokens' "
    "ELSE c.device_tokens END",
    "custom": "(c.custom || i.cs) - i.cu",
}
# Rows whose values would not change are left alone (updated_at keeps meaning "changed");
# the final SELECT reports every existing row of the batch and whether it changed.
_UPDATE = f"""{_INPUT},
u AS (
    UPDATE customers_customer c
    SET {", ".join(f"{col} = {expr}" for col, expr in _NEW_VALUE.items())}, updated_at = now()
    FROM i
    WHERE c.user_id = i.user_id
      AND ({", ".join(f"c.{col}" for col in _NEW_VALUE)})
          IS DISTINCT FROM ({", ".join(_NEW_VALUE.values())})
    RETURNING c.id
)
SELECT c.id, c.user_id, u.id IS NOT NULL
FROM customers_customer c JOIN i ON c.user_id = i.user_id LEFT JOIN u ON u.id = c.id
"""  # noqa: S608 - identifiers come from STANDARD_FIELDS, values are one JSON parameter

_NEW_TEXT = ", ".join(
    f"coalesce(i.s->>'{col}', '{'live' if col == 'user_type' else ''}')" for col in _TEXT_COLUMNS
)
_INSERT = f"""{_INPUT}
INSERT INTO customers_customer
    (user_id, {", ".join(_TEXT_COLUMNS)}, device_tokens, custom, created_at, updated_at)
SELECT i.user_id, {_NEW_TEXT}, coalesce(i.s->'device_tokens', '[]'::jsonb), i.cs, now(), now()
FROM i
ON CONFLICT (user_id) DO NOTHING
RETURNING id, user_id, true
"""  # noqa: S608 - as above


@dataclass
class UpsertItem:
    user_id: str
    profile: CleanProfile


@dataclass
class UpsertResult:
    user_id: str
    id: int
    created: bool
    changed: bool = True  # False: the customer existed and nothing about it changed
    fields: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "created" if self.created else "updated" if self.changed else "unchanged"


def _merge(items: list[UpsertItem]) -> dict[str, CleanProfile]:
    """One profile per user ID; a later item's keys win, as if the items ran in order."""
    merged: dict[str, CleanProfile] = {}
    for item in items:
        into = merged.get(item.user_id)
        if into is None:
            merged[item.user_id] = CleanProfile(
                dict(item.profile.values),
                dict(item.profile.custom_set),
                list(item.profile.custom_unset),
                list(item.profile.tags),
            )
            continue
        p = item.profile
        into.values.update(p.values)
        for name, value in p.custom_set.items():
            into.custom_set[name] = value
            if name in into.custom_unset:
                into.custom_unset.remove(name)
        for name in p.custom_unset:
            into.custom_set.pop(name, None)
            if name not in into.custom_unset:
                into.custom_unset.append(name)
        into.tags += [t for t in p.tags if t.lower() not in {x.lower() for x in into.tags}]
    return merged


def _run(sql: str, profiles: dict[str, CleanProfile]) -> dict[str, tuple[int, bool]]:
    batch = [{"user_id": uid, **p.as_json()} for uid, p in profiles.items()]
    with connection.cursor() as cursor:
        cursor.execute(sql, [Jsonb(batch)])
        return {user_id: (pk, changed) for pk, user_id, changed in cursor.fetchall()}


def customers_upsert(
    items: list[UpsertItem],
    actor: Actor,
    *,
    mode: Literal["upsert", "create"] = "upsert",
    log_each: bool | None = None,
) -> dict[str, UpsertResult]:
    """Create or update every item; returns a result per user ID.

    ``mode="create"`` refuses existing user IDs (ProfileInvalid on user_id). Activity: one
    entry per customer when ``log_each`` (default: batches of one), else one for the batch.
    """
    from tags.services import customers_tag_by_name

    profiles = _merge(items)
    results: dict[str, UpsertResult] = {}
    with transaction.atomic():
        pending = profiles
        # A concurrent writer can create a user ID between our UPDATE and INSERT; such rows
        # lose the INSERT (ON CONFLICT DO NOTHING) and are updated on the next round.
        for _ in range(3):
            if mode == "upsert":
                for user_id, (pk, changed) in _run(_UPDATE, pending).items():
                    results[user_id] = UpsertResult(user_id, pk, False, changed)
            missing = {u: p for u, p in pending.items() if u not in results}
            if not missing:
                break
            for user_id, (pk, _) in _run(_INSERT, missing).items():
                results[user_id] = UpsertResult(user_id, pk, True)
            pending = {u: p for u, p in missing.items() if u not in results}
            if not pending:
                break
            if mode == "create":
                raise ProfileInvalid(
                    [FieldError("user_id", "A customer with this user ID already exists.")]
                )
        pairs = [(results[u].id, name) for u, p in profiles.items() for name in p.tags]
        tagged = customers_tag_by_name(pairs, actor) if pairs else set()
        for user_id, result in results.items():
            result.fields = profiles[user_id].changed_fields if result.changed else []
            if result.id in tagged:
                result.changed = True
                result.fields.append("tags")
        _log(results, profiles, actor, log_each if log_each is not None else len(results) == 1)
        # Segments re-read these customers within seconds; unchanged ones cause no work.
        marked = [r for r in results.values() if r.changed]
        pending_mark(
            [r.id for r in marked],
            [ChangeKind.ALL if r.created else ChangeKind.PROFILE | ChangeKind.TAGS for r in marked],
        )
    return results


def _log(
    results: dict[str, UpsertResult],
    profiles: dict[str, CleanProfile],
    actor: Actor,
    each: bool,
) -> None:
    if not results:
        return
    if each:
        for user_id, result in results.items():
            if not result.changed:
                continue
            activity_record(
                actor,
                "customer.created" if result.created else "customer.updated",
                target_type="customer",
                target_id=result.id,
                target_label=user_id,
                fields=result.fields,
                changes=mask_changes(profiles[user_id]),
            )
        return
    created = sum(r.created for r in results.values())
    unchanged = sum(not r.changed for r in results.values())
    fields = sorted({f for r in results.values() for f in r.fields})
    activity_record(
        actor,
        "customers.upserted",
        target_type="customer",
        fields=fields,
        changes={
            "created": created,
            "updated": len(results) - created - unchanged,
            "unchanged": unchanged,
        },
        count=len(results),
    )
