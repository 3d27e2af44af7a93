"""Merging staged rows into customers with set-based SQL, keyed by user ID.

One statement per chunk: lock the existing customers of the chunk (in user ID order), work out
each one's new values (only the columns the file maps; "fill empty" columns only where the
customer has no value), rewrite only rows that change, insert the new user IDs, record what
changed for undo, and add the import's tags. The same new-value expressions serve the dry
run's count, so a dry run and the import cannot disagree.

Identifiers come from the profile field registry (customers/profile.py), never from input.
"""

from __future__ import annotations

from dataclasses import dataclass

from customers.profile import STANDARD_FIELDS
from segments.fields import ChangeKind
from segments.incremental import pending_mark_sql
from tags.services import TAGS_LOCKED

# Customers a chunk touches, queued for segment evaluation by the merge statement itself: a
# new customer can enter any segment, a changed one those reading profile fields, a newly
# tagged one those reading tags (passing 20,000 ids through Python cost ~80 ms a chunk).
_MARKS_NEW = f"SELECT id, {ChangeKind.ALL} AS k FROM ins"
_MARKS_CHANGED = (
    f"SELECT id, {ChangeKind.PROFILE} AS k FROM upd"
    f" UNION ALL SELECT customer_id, {ChangeKind.TAGS} FROM tg"
)
_MARKS = f"SELECT id, bit_or(k) AS k FROM ({_MARKS_NEW} UNION ALL {_MARKS_CHANGED}) x GROUP BY id"
# The optimistic merge queues its new customers apart, with no conflict check (nobody else
# knows their ids yet; the check cost ~15 ms a 20,000-row chunk), and the others as above.
_MARKS_OTHERS = (
    f"SELECT id, bit_or(k) AS k FROM ({_MARKS_CHANGED}) x"
    " WHERE NOT EXISTS (SELECT FROM ins WHERE ins.id = x.id) GROUP BY id"
)


@dataclass(frozen=True)
class MergePlan:
    columns: tuple[str, ...]  # standard fields the file maps
    fill_empty: frozenset[str]  # standard fields and "custom.<name>" written only where empty

    @classmethod
    def build(cls, headers: list[str], targets: list[str], fill_empty: list[str]) -> MergePlan:
        """``fill_empty`` names the columns (by header) that only fill empty values."""
        return cls(
            tuple(t for t in STANDARD_FIELDS if t in targets),
            frozenset(t for h, t in zip(headers, targets, strict=True) if h in fill_empty),
        )

    @property
    def fill_custom(self) -> list[str]:
        return sorted(t[7:] for t in self.fill_empty if t.startswith("custom."))

    def _new(self, col: str) -> str:
        given = f"o.vals ? '{col}'"
        if col in self.fill_empty:
            given += f" AND o.{col} = ''"
        return f"CASE WHEN {given} THEN o.vals->>'{col}' ELSE o.{col} END"

    def _new_custom(self) -> str:
        if not self.fill_custom:
            return "o.custom || o.s_custom"
        return (
            "o.custom || (SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb)"
            " FROM jsonb_each(o.s_custom) e(k, v)"
            " WHERE NOT (k = ANY(%(fill_custom)s::text[]) AND o.custom ? k))"
        )

    def ctes(self, *, lock: bool, only: bool = False) -> str:
        """s: the chunk's typed rows to apply; j: each with its existing customer, if any (one
        look-up per row, shared by the update and the insert); o: those that exist; d: old and
        new values of the customers that change; q: the rows a customer's digest vouched for
        when they were staged (imports/digest.py), each with its customer and whether the
        customer still carries that digest (``fresh``; those that do not are typed and merged
        again by the caller).

        Customers are reached by a LATERAL look-up per row through the user ID index, in
        user ID order (so two imports lock shared customers in the same order). The planner
        cannot estimate a CTE's size, and a table filled by the import itself has no statistics
        yet; a plain join let it loop over both sides (measured: minutes for 20k rows)."""
        old = "".join(f"c.{c}, " for c in self.columns)
        news = ", ".join(
            [f"o.{c} AS old_{c}, {self._new(c)} AS {c}" for c in self.columns]
            + ["o.custom AS old_custom", f"{self._new_custom()} AS custom", "o.s_custom AS given"]
        )
        olds = ", ".join([*(f"old_{c}" for c in self.columns), "old_custom"])
        fresh = ", ".join([*self.columns, "custom"])
        return f"""
        s AS MATERIALIZED (
            SELECT user_id, vals, custom, digest FROM imports_stagedrow
            WHERE import_id = %(imp)s AND row_no > %(lo)s AND row_no <= %(hi)s
              AND errors IS NULL AND superseded_by IS NULL AND cells IS NULL
              {"AND user_id = ANY(%(only)s::text[])" if only else ""}
            ORDER BY user_id
        ),
        q AS MATERIALIZED (
            SELECT r.row_no, c.id, coalesce(c.import_digest = r.digest, false) AS fresh
            FROM imports_stagedrow r LEFT JOIN LATERAL (
                SELECT c.id, c.import_digest FROM customers_customer c WHERE c.user_id = r.user_id
                LIMIT 1  -- kept a look-up per row: flattened, it became a scan of every customer
            ) c ON true
            WHERE r.import_id = %(imp)s AND r.row_no > %(lo)s AND r.row_no <= %(hi)s
              AND r.superseded_by IS NULL AND r.cells IS NOT NULL
              {"AND r.user_id = ANY(%(only)s::text[])" if only else ""}
        ),
        j AS MATERIALIZED (
            SELECT s.user_id, s.vals, s.custom AS s_custom, s.digest, c.*
            FROM s LEFT JOIN LATERAL (
                SELECT c.id, {old}c.custom FROM customers_customer c
                WHERE c.user_id = s.user_id {"FOR UPDATE" if lock else ""}
            ) c ON true
        ),
        o AS (SELECT * FROM j WHERE id IS NOT NULL),
        d AS MATERIALIZED (
            SELECT * FROM (SELECT o.id, o.digest, {news} FROM o) n
            WHERE ({olds}) IS DISTINCT FROM ({fresh})
        )
        """

    def _changes(self) -> str:
        """{"field": [before, after]} for each field the import changes."""
        pairs = ", ".join(
            f"'{c}', CASE WHEN old_{c} <> {c} THEN jsonb_build_array(old_{c}, {c}) END"
            for c in self.columns
        )
        standard = f"jsonb_strip_nulls(jsonb_build_object({pairs}))" if pairs else "'{}'::jsonb"
        custom = (
            "coalesce((SELECT jsonb_object_agg('custom.' || k,"
            " jsonb_build_array(d.old_custom->k, d.custom->k))"
            " FROM jsonb_object_keys(d.given) k"
            " WHERE d.old_custom->k IS DISTINCT FROM d.custom->k), '{}'::jsonb)"
        )
        return f"{standard} || {custom}"

    def apply_sql(self, *, only: bool = False, optimistic: bool = False) -> str:
        """The chunk's merge: (created, updated, tagged, queued for segment evaluation,
        existing, user IDs missed, rows a digest vouched for, rows whose digest went stale).
        ``optimistic``: without ON CONFLICT on the new customers and the undo log (the
        look-up found none of those user IDs; the checks cost ~2 µs a row), for a savepoint
        the caller rolls back to when another writer created one meanwhile.

        Tag assignments keep no key constraints (tags/models.py): the customers they name
        are this chunk's new ones, the existing ones locked in ``j``, and (``qt``) those a
        digest vouched for that lack one of the tags, locked here (FOR KEY SHARE; one erased
        meanwhile is skipped); the tags are locked as they are read. A re-import that tags
        again finds the tags there with one index probe a row and locks no customer."""
        on_conflict = "" if optimistic else "ON CONFLICT (user_id) DO NOTHING"
        on_conflict_log = "" if optimistic else "ON CONFLICT DO NOTHING"
        marks = (
            f"mk_new AS ({pending_mark_sql(_MARKS_NEW, fresh=True)}),"
            f" mk_others AS ({pending_mark_sql(_MARKS_OTHERS)}),"
            " mk AS (SELECT FROM mk_new UNION ALL SELECT FROM mk_others)"
            if optimistic
            else f"mk AS ({pending_mark_sql(_MARKS)})"
        )
        sets = ", ".join(f"{c} = d.{c}" for c in (*self.columns, "custom"))
        insert_cols = ", ".join([*self.columns, "custom"])
        insert_vals = ", ".join(
            [
                *(
                    f"coalesce(j.vals->>'{c}', '{'live' if c == 'user_type' else ''}')"
                    for c in self.columns
                ),
                "j.s_custom",
            ]
        )
        return f"""
        WITH {self.ctes(lock=True, only=only)},
        upd AS (
            UPDATE customers_customer c SET {sets}, import_digest = d.digest, updated_at = now()
            FROM d WHERE c.id = d.id RETURNING c.id
        ),
        ins AS (
            INSERT INTO customers_customer
                (user_id, {insert_cols}, import_digest, created_at, updated_at)
            SELECT j.user_id, {insert_vals}, j.digest, now(), now()
            FROM j WHERE j.id IS NULL
            ORDER BY j.user_id
            {on_conflict}
            RETURNING id, user_id
        ),
        chg AS (
            INSERT INTO imports_importchange (import_id, customer_id, created, changes)
            SELECT %(imp)s, d.id, false, {self._changes()} FROM d
            {on_conflict_log}
        ),
        made AS (
            INSERT INTO imports_importcreated (import_id, first_id, ids)
            SELECT %(imp)s, min(id), jsonb_agg(id ORDER BY id) FROM ins HAVING count(*) > 0
            {on_conflict_log}
        ),
        qt AS (
            SELECT l.id FROM (SELECT id FROM q WHERE fresh ORDER BY id) f
            CROSS JOIN LATERAL (
                SELECT c.id FROM customers_customer c WHERE c.id = f.id FOR KEY SHARE
            ) l
            -- A count per row, not NOT EXISTS: that became a hash of every assignment.
            WHERE (SELECT count(*) FROM tags_customertag ct
                   WHERE ct.customer_id = f.id AND ct.tag_id = ANY(%(tags)s::bigint[]))
                  < cardinality(%(tags)s::bigint[])
        ),
        tg AS (
            INSERT INTO tags_customertag (customer_id, tag_id, added_at, added_by_id,
                added_by_token_id, source, added_by_import_id)
            SELECT x.id, t, now(), %(member)s, %(token)s, 'import', %(imp)s
            FROM (SELECT id FROM o UNION ALL SELECT id FROM ins UNION ALL SELECT id FROM qt) x
            CROSS JOIN ({TAGS_LOCKED.format("%(tags)s::bigint[]")}) AS tl(t)
            ON CONFLICT DO NOTHING
            RETURNING customer_id
        ),
        {marks}
        SELECT
            (SELECT count(*) FROM ins),
            (SELECT count(*) FROM upd),
            (SELECT count(DISTINCT customer_id) FROM tg),
            (SELECT count(*) FROM mk),
            (SELECT count(*) FROM o),
            ARRAY(SELECT user_id FROM s EXCEPT SELECT user_id::text FROM o
                  EXCEPT SELECT user_id::text FROM ins),
            (SELECT count(*) FROM q WHERE fresh),
            ARRAY(SELECT row_no FROM q WHERE NOT fresh)
        """  # noqa: S608 - identifiers from STANDARD_FIELDS; values are parameters

    def classify_sql(self) -> str:
        """Would-be counts for a dry run: (created, updated, unchanged). Rows a digest vouches
        for count as unchanged (the caller types those whose customer lost it first)."""
        return f"""
        WITH {self.ctes(lock=False)}
        SELECT (SELECT count(*) FROM s) - (SELECT count(*) FROM o),
               (SELECT count(*) FROM d),
               (SELECT count(*) FROM o) - (SELECT count(*) FROM d) + (SELECT count(*) FROM q)
        """  # noqa: S608 - as above


# Rows of the file with a user ID that a later row repeats: the last row wins. The repeated
# user IDs are found by hashing (a sort of a million user IDs in the database's collation took
# 14 s), then only their earlier rows are updated; a file without repeats updates nothing.
SUPERSEDE_SQL = """
WITH dup AS MATERIALIZED (
    SELECT user_id, max(row_no) AS last FROM imports_stagedrow
    WHERE import_id = %(imp)s AND errors IS NULL
    GROUP BY user_id HAVING count(*) > 1
)
UPDATE imports_stagedrow r SET superseded_by = dup.last
FROM dup
WHERE r.import_id = %(imp)s AND r.errors IS NULL AND r.user_id = dup.user_id
  AND r.row_no < dup.last
"""
