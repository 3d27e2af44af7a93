"""The one rule compiler: a clean rule tree (segments/rules.py) → a boolean SQL expression
over the customers table (alias ``c``). Preview, full build, incremental evaluation and the
explanation all use it, so they cannot disagree.

Every condition compiles to an expression that is never NULL (missing values are decided
explicitly), so NOT and OR behave as in plain logic. Subqueries are uncorrelated
``c.id IN (SELECT customer_id ...)``: at the top of a WHERE clause PostgreSQL turns them into
semi-joins, elsewhere into hashed subplans built once per query; with ``candidates`` they are
narrowed to a batch of customers so incremental evaluation reads only those customers' rows.

Semantics, in one place (the property-based test's reference evaluator follows them):
- Text compares ignore case; empty text is no value. ``is_not``/``not_contains`` match
  customers with no value. ``has_value`` matches one comma-separated value exactly (spaces
  around each value ignored).
- Numbers and dates: ``lt``..``gt`` never match a missing value; ``is_not`` does.
- Dates: a date value ("2024-05-01") means that whole day in the segment's zone; a
  date-time value is an instant. Relative operators compare the date part in the segment's
  zone with today there. A custom date stored at midnight UTC is a calendar date (entered as
  "2024-05-01"): its date part is that date in every zone.
- Event counts are over events with that name, in the time window, whose properties all
  match; a count that can be zero (``eq 0``, ``lt 3``) matches customers with no such events.
- Tags: ``has_none`` matches customers with none of the tags (added within the window).
- Do Not Contact: ``is`` holds when an entry suppresses the customer's address for the channel
  (any channel: their e-mail or phone on some channel) for the sender and account, by the
  rules of donotcontact/suppression.py; ``is_not`` is its negation, so it holds for customers
  without that address.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from donotcontact.suppression import suppressed_sql
from segments.fields import Field, FieldType, Registry

TRUE = "TRUE"
FALSE = "FALSE"


@dataclass
class Sql:
    sql: str
    params: list[Any] = field(default_factory=list)


class PerCustomer:
    """Incremental evaluation's form of the event, tag and "in segment" conditions: each is a
    count over the customer's own rows, and every count of a batch of rule trees comes from
    one ``LEFT JOIN LATERAL`` pass per table (one index range per customer and table, however
    many conditions; identical conditions of several segments share one count). The
    subquery form reads a table once per condition instead.

    ``count`` hands out the column for a condition; ``joins`` is the FROM clause's tail, to
    follow ``customers_customer c`` once every tree is compiled (its parameters come after
    those of the select list that reads the columns)."""

    # One index range per event type and customer, from the earliest time a condition on that
    # type looks at (NULL: all time), not all of the customer's events: the fence (OFFSET 0)
    # keeps the planner from merging the ranges into one.
    EVENTS = (
        "unnest(%s::int[], %s::timestamptz[]) AS ty(id, since) CROSS JOIN LATERAL ("
        "SELECT {columns} FROM events_event e WHERE e.customer_id = c.id"
        " AND e.event_type_id = ty.id AND e.occurred_at >= COALESCE(ty.since, '-infinity')"
        " OFFSET 0) e"
    )
    # table: (alias, FROM and WHERE of the per-customer pass)
    TABLES = {
        "events": ("e", EVENTS.format(columns="e.event_type_id, e.occurred_at")),
        # Property filters read the row itself, so their event types get a pass of their own
        # and the others stay an index-only scan.
        "event_properties": (
            "ep",
            EVENTS.format(columns="e.event_type_id, e.occurred_at, e.properties"),
        ),
        "tags": ("t", "tags_customertag t WHERE t.customer_id = c.id"),
        "memberships": ("m", "segments_membership m WHERE m.customer_id = c.id"),
    }

    def __init__(self) -> None:
        self._columns: dict[str, dict[tuple[str, str], tuple[str, Sql]]] = {}
        # event table → {type id: earliest time read, None for all time}
        self._since: dict[str, dict[int, datetime | None]] = {
            "events": {},
            "event_properties": {},
        }

    def column(self, table: str, aggregate: Sql) -> str:
        """The column holding ``aggregate`` over the customer's rows of ``table``."""
        columns = self._columns.setdefault(table, {})
        key = (aggregate.sql, repr(aggregate.params))
        if key not in columns:
            alias = self.TABLES[table][0]
            columns[key] = (f"{alias}{len(columns)}", aggregate)
        return f"{self.TABLES[table][0]}_x.{columns[key][0]}"

    def count(self, table: str, rows: Sql) -> str:
        return self.column(table, Sql(f"count(*) FILTER (WHERE {rows.sql})", rows.params))

    def event_count(self, type_id: int, rows: Sql, since: datetime | None, *, properties: bool):
        """The count of the customer's events of ``rows``, none of them before ``since``."""
        table = "event_properties" if properties else "events"
        earliest = self._since[table]
        if type_id not in earliest:
            earliest[type_id] = since
        elif earliest[type_id] is not None:
            earliest[type_id] = None if since is None else min(earliest[type_id], since)
        return self.count(table, rows)

    def joins(self) -> Sql:
        parts = []
        for table, columns in self._columns.items():
            alias, source = self.TABLES[table]
            select = ", ".join(f"{aggregate.sql} AS {name}" for name, aggregate in columns.values())
            params = [x for _, aggregate in columns.values() for x in aggregate.params]
            if table in self._since:
                types = sorted(self._since[table].items())
                params += [[t for t, _ in types], [since for _, since in types]]
            parts.append(
                Sql(f" LEFT JOIN LATERAL (SELECT {select} FROM {source}) {alias}_x ON TRUE", params)
            )
        return Sql("".join(p.sql for p in parts), [x for p in parts for x in p.params])


@dataclass
class CompileContext:
    now: datetime
    tz: ZoneInfo
    registry: Registry
    tag_ids: dict[str, int]  # lower-case tag name → id
    event_type_ids: dict[str, int]  # event name → id
    candidates: Sequence[int] | None = None  # narrow subqueries to these customers
    per_customer: PerCustomer | None = None  # counts over each customer's rows instead

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()


# --- time arithmetic ------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def shift(moment: date | datetime, amount: int, unit: str) -> Any:
    """``moment`` moved by ``amount`` units (negative: back); months keep the day of the
    month where it exists (31 Jan + 1 month = 28/29 Feb)."""
    if unit == "months":
        if isinstance(moment, datetime):
            return datetime.combine(add_months(moment.date(), amount), moment.timetz())
        return add_months(moment, amount)
    step = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 7 * 86400}[unit]
    return moment + timedelta(seconds=step * amount)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def is_day(value: str) -> bool:
    return len(value) == 10


# Bounds are (operator, instant); an attribute or event time compares with each of them.
Bounds = list[tuple[str, datetime]]


def moment_bounds(op: str, value: str, tz: ZoneInfo) -> Bounds:
    """is/lt/lte/gte/gt and before/until/since/after against a date or a date-time."""
    if is_day(value):
        day = date.fromisoformat(value)
        start, end = day_start(day, tz), day_start(day + timedelta(days=1), tz)
        return {
            "is": [(">=", start), ("<", end)],
            "lt": [("<", start)],
            "before": [("<", start)],
            "lte": [("<", end)],
            "until": [("<", end)],
            "gte": [(">=", start)],
            "since": [(">=", start)],
            "gt": [(">=", end)],
            "after": [(">=", end)],
        }[op]
    moment = parse_instant(value)
    sign = {"is": "=", "lt": "<", "before": "<", "lte": "<=", "until": "<="}
    sign |= {"gte": ">=", "since": ">=", "gt": ">", "after": ">"}
    return [(sign[op], moment)]


def relative_bounds(op: str, amount: int, unit: str, today: date, tz: ZoneInfo) -> Bounds:
    """The relative date operators, on the date part in ``tz``."""

    def start(day: date) -> datetime:
        return day_start(day, tz)

    ahead, back = shift(today, amount, unit), shift(today, -amount, unit)
    one = timedelta(days=1)
    return {
        "will_be_in": [(">=", start(ahead)), ("<", start(ahead + one))],
        "will_be_within": [(">=", start(today)), ("<", start(ahead + one))],
        "will_be_more_than": [(">=", start(ahead + one))],
        "was": [(">=", start(back)), ("<", start(back + one))],
        "was_within": [(">=", start(back)), ("<", start(today + one))],
        "was_more_than": [("<", start(back))],
    }[op]


def event_time_bounds(time: dict[str, Any], now: datetime, tz: ZoneInfo) -> Bounds:
    op, value = time["operator"], time.get("value")
    if op == "any_time":
        return []
    if op == "within_last":
        return [(">=", shift(now, -value, time["unit"]))]
    if op == "before_last":
        return [("<", shift(now, -value, time["unit"]))]
    if op == "between_last":
        low, high = value
        return [(">=", shift(now, -high, time["unit"])), ("<=", shift(now, -low, time["unit"]))]
    if op == "between":
        lower = moment_bounds("since", value[0], tz)
        upper = moment_bounds("until", value[1], tz)
        return lower + upper
    return moment_bounds(op, value, tz)  # after / before


# --- pieces ---------------------------------------------------------------------------------


def _all(parts: list[Sql], joiner: str = " AND ") -> Sql:
    return Sql("(" + joiner.join(p.sql for p in parts) + ")", [x for p in parts for x in p.params])


def negate(part: Sql) -> Sql:
    return Sql(f"(NOT {part.sql})", part.params)


def _decided(expr: Sql, part: Sql) -> Sql:
    """``part``, a comparison of ``expr``, with a missing value (NULL) decided as false.
    Spelled as a guard rather than COALESCE(part, FALSE), which hides the comparison from the
    planner: an expression index on ``expr`` (segments/indexes.py) can serve this form."""
    return Sql(f"({expr.sql} IS NOT NULL AND {part.sql})", [*expr.params, *part.params])


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _bounded(expr: Sql, bounds: Bounds, as_text: bool) -> Sql:
    parts = []
    for sign, moment in bounds:
        param: Any = _iso(moment) if as_text else moment
        parts.append(Sql(f"{expr.sql} {sign} %s", [*expr.params, param]))
    return _decided(expr, _all(parts)) if parts else Sql(TRUE)


def _iso(moment: datetime) -> str:
    # The stored custom date format (customers/custom_fields.format_date_value).
    moment = moment.astimezone(UTC)
    text = moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    # Stored values are whole seconds; a fraction written after the "Z" sorts the bound after
    # its whole second and before the next one ("…00Z" < "…00Z.5" < "…01Z").
    return text if not moment.microsecond else f"{text}.{moment.microsecond:06d}"


def _text_condition(expr: Sql, op: str, value: Any) -> Sql:
    lowered = Sql(f"lower({expr.sql})", expr.params)
    if op == "is":
        return _decided(lowered, Sql(f"{lowered.sql} = lower(%s)", [*lowered.params, value]))
    if op == "is_not":
        return negate(_text_condition(expr, "is", value))
    if op == "not_contains":
        return negate(_text_condition(expr, "contains", value))
    if op == "has_value":
        return _decided(
            lowered,
            Sql(
                "EXISTS (SELECT 1 FROM unnest(string_to_array("
                f"{lowered.sql}, ',')) AS part WHERE btrim(part) = lower(%s))",
                [*lowered.params, value.strip(" ")],
            ),
        )
    pattern = {
        "starts_with": "lower(%s) || '%%'",
        "ends_with": "'%%' || lower(%s)",
        "contains": "'%%' || lower(%s) || '%%'",
    }[op]
    return _decided(
        lowered, Sql(f"{lowered.sql} LIKE {pattern}", [*lowered.params, like_escape(value)])
    )


def _number(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _order_sign(op: str) -> str:
    return {"lt": "<", "lte": "<=", "gte": ">=", "gt": ">", "is": "="}[op]


def attribute_sql(node: dict[str, Any], field: Field, ctx: CompileContext) -> Sql:
    expr = Sql(field.sql, list(field.params))
    op, value = node["operator"], node.get("value")
    if op == "is_empty":
        return Sql(f"({expr.sql} IS NULL)", expr.params)
    if op == "is_not_empty":
        return Sql(f"({expr.sql} IS NOT NULL)", expr.params)
    if field.type in (FieldType.TEXT, FieldType.MULTI_TEXT, FieldType.CHOICE):
        return _text_condition(expr, op, value)
    if field.type == FieldType.NUMBER:
        if op == "is_not":
            return Sql(f"({expr.sql} IS DISTINCT FROM %s)", [*expr.params, _number(value)])
        return _decided(
            expr, Sql(f"{expr.sql} {_order_sign(op)} %s", [*expr.params, _number(value)])
        )
    if field.type == FieldType.BOOLEAN:
        if op == "is_not":
            return Sql(f"({expr.sql} IS DISTINCT FROM %s)", [*expr.params, value])
        return _decided(expr, Sql(f"{expr.sql} = %s", [*expr.params, value]))
    # Dates.
    if op == "is_not":
        return negate(attribute_sql({**node, "operator": "is"}, field, ctx))

    def bounds(tz: ZoneInfo) -> Bounds:
        if "unit" in node:
            return relative_bounds(op, value, node["unit"], ctx.today, tz)
        return moment_bounds(op, value, tz)

    if field.group != "custom":
        return _bounded(expr, bounds(ctx.tz), as_text=False)
    # A custom date stored at midnight UTC is a calendar date ("2024-05-01", as the customer
    # page shows it): its day is that date in every zone, so it is compared with day bounds
    # taken in UTC. Any other stored value is an instant, read in the segment's zone.
    instant, calendar = bounds(ctx.tz), bounds(ZoneInfo("UTC"))
    if instant == calendar:
        return _bounded(expr, instant, as_text=True)
    midnight = Sql(f"right({expr.sql}, 10) = 'T00:00:00Z'", list(expr.params))
    return _all(
        [
            _all([negate(midnight), _bounded(expr, instant, as_text=True)]),
            _all([midnight, _bounded(expr, calendar, as_text=True)]),
        ],
        " OR ",
    )


def _typed_property(key: str, json_type: str) -> Sql:
    cast = {"number": "::numeric", "boolean": "::boolean", "string": ""}[json_type]
    return Sql(
        f"(CASE WHEN jsonb_typeof(e.properties->%s) = '{json_type}'"
        f" THEN (e.properties->>%s){cast} END)",
        [key, key],
    )


def property_sql(prop: dict[str, Any]) -> Sql:
    """One property filter over events alias ``e``; strings compare with strings, numbers
    with numbers, booleans with booleans (a number never equals the text "100")."""
    key, op, value = prop["key"], prop["operator"], prop.get("value")
    if op in ("is_empty", "is_not_empty"):
        empty = Sql("(COALESCE(e.properties->>%s, '') = '')", [key])
        return empty if op == "is_empty" else negate(empty)
    if op == "is_not":
        return negate(property_sql({**prop, "operator": "is"}))
    if op == "not_contains":
        return negate(property_sql({**prop, "operator": "contains"}))
    if isinstance(value, bool):
        expr = _typed_property(key, "boolean")
        return _decided(expr, Sql(f"{expr.sql} = %s", [*expr.params, value]))
    if isinstance(value, (int, float)):
        expr = _typed_property(key, "number")
        return _decided(
            expr, Sql(f"{expr.sql} {_order_sign(op)} %s", [*expr.params, _number(value)])
        )
    return _text_condition(_typed_property(key, "string"), op, value)


def event_rows(node: dict[str, Any], type_id: int, ctx: CompileContext) -> Sql:
    parts = [Sql("e.event_type_id = %s", [type_id])]
    for sign, moment in event_time_bounds(node["time"], ctx.now, ctx.tz):
        parts.append(Sql(f"e.occurred_at {sign} %s", [moment]))
    parts += [property_sql(p) for p in node.get("properties", [])]
    if ctx.candidates is not None and ctx.per_customer is None:
        parts.append(Sql("e.customer_id = ANY(%s)", [list(ctx.candidates)]))
    return _all(parts)


def count_form(operator: str, value: int) -> tuple[bool, str, int]:
    """Every count operator as (negated, "gte" | "eq", k) with k ≥ 1, or k = 0 for "always"."""
    if operator == "gte":
        return (False, "gte", value)
    if operator == "gt":
        return (False, "gte", value + 1)
    if operator == "eq":
        return (True, "gte", 1) if value == 0 else (False, "eq", value)
    if operator == "lt":
        return (True, "gte", value)  # lt 0: never (NOT gte 0 = NOT always)
    return (True, "gte", value + 1)  # lte


def event_sql(node: dict[str, Any], ctx: CompileContext) -> Sql:
    negated, form, k = count_form(node["count"]["operator"], node["count"]["value"])
    type_id = ctx.event_type_ids.get(node["name"])
    if form == "gte" and k == 0:
        positive = Sql(TRUE)
    elif type_id is None:  # no such event has ever been stored: everyone's count is 0
        positive = Sql(FALSE)
    elif ctx.per_customer is not None:
        bounds = event_time_bounds(node["time"], ctx.now, ctx.tz)
        since = max((moment for sign, moment in bounds if sign in (">=", ">")), default=None)
        count = ctx.per_customer.event_count(
            type_id, event_rows(node, type_id, ctx), since, properties=bool(node.get("properties"))
        )
        positive = Sql(f"({count} {'>=' if form == 'gte' else '='} %s)", [k])
    else:
        rows = event_rows(node, type_id, ctx)
        if form == "gte" and k == 1:
            positive = Sql(
                f"c.id IN (SELECT e.customer_id FROM events_event e WHERE {rows.sql})", rows.params
            )
        else:
            sign = ">=" if form == "gte" else "="
            positive = Sql(
                f"c.id IN (SELECT e.customer_id FROM events_event e WHERE {rows.sql}"
                f" GROUP BY e.customer_id HAVING count(*) {sign} %s)",
                [*rows.params, k],
            )
    return negate(positive) if negated else positive


def _candidates(column: str, ctx: CompileContext) -> Sql:
    if ctx.candidates is None:
        return Sql("")
    return Sql(f" AND {column} = ANY(%s)", [list(ctx.candidates)])


def tag_window(node: dict[str, Any], ctx: CompileContext) -> Sql:
    within = node.get("within")
    if not within:
        return Sql("")
    return Sql(" AND t.added_at >= %s", [shift(ctx.now, -within["value"], within["unit"])])


def tag_sql(node: dict[str, Any], ctx: CompileContext) -> Sql:
    ids = [ctx.tag_ids[n.lower()] for n in node["tags"] if n.lower() in ctx.tag_ids]
    window, narrow = tag_window(node, ctx), _candidates("t.customer_id", ctx)

    def having(tag_ids: list[int]) -> Sql:
        if ctx.per_customer is not None:
            rows = Sql(f"t.tag_id = ANY(%s){window.sql}", [tag_ids, *window.params])
            return Sql(f"({ctx.per_customer.count('tags', rows)} > 0)")
        return Sql(
            "c.id IN (SELECT t.customer_id FROM tags_customertag t WHERE t.tag_id = ANY(%s)"
            f"{window.sql}{narrow.sql})",
            [tag_ids, *window.params, *narrow.params],
        )

    if node["operator"] == "has_all":
        if len(ids) < len(node["tags"]):
            return Sql(FALSE)  # a tag that no longer exists is on nobody
        return _all([having([i]) for i in ids])
    positive = having(ids) if ids else Sql(FALSE)
    return negate(positive) if node["operator"] == "has_none" else positive


def segment_sql(node: dict[str, Any], ctx: CompileContext) -> Sql:
    narrow = _candidates("m.customer_id", ctx)
    if ctx.per_customer is not None:
        rows = Sql("m.segment_id = %s", [node["segment"]])
        positive = Sql(f"({ctx.per_customer.count('memberships', rows)} > 0)")
        return negate(positive) if node["operator"] == "not_in" else positive
    positive = Sql(
        "c.id IN (SELECT m.customer_id FROM segments_membership m WHERE m.segment_id = %s"
        f"{narrow.sql})",
        [node["segment"], *narrow.params],
    )
    return negate(positive) if node["operator"] == "not_in" else positive


def do_not_contact_sql(node: dict[str, Any]) -> Sql:
    # A correlated EXISTS on the entries' unique index (contact first): one probe per customer
    # in incremental evaluation, a semi/anti-join or a hashed subplan over a whole base.
    sql, params = suppressed_sql(
        node["channel"], sender=node.get("sender", ""), account=node.get("account", ""), alias="c"
    )
    positive = Sql(f"({sql})", list(params))
    return negate(positive) if node["operator"] == "is_not" else positive


def condition_sql(node: dict[str, Any], ctx: CompileContext) -> Sql:
    kind = node["type"]
    if kind == "group":
        return group_sql(node, ctx)
    if kind == "attribute":
        field = ctx.registry.get(node["field"])
        if field is None:  # a custom field deleted since the rules were saved: no value
            holds_for_empty = node["operator"] in ("is_not", "not_contains", "is_empty")
            return Sql(TRUE if holds_for_empty else FALSE)
        return attribute_sql(node, field, ctx)
    if kind == "event":
        return event_sql(node, ctx)
    if kind == "tag":
        return tag_sql(node, ctx)
    if kind == "do_not_contact":
        return do_not_contact_sql(node)
    return segment_sql(node, ctx)


def group_sql(node: dict[str, Any], ctx: CompileContext) -> Sql:
    if not node["children"]:
        raise ValueError("An empty group has no meaning; rules_clean refuses it.")
    joiner = " AND " if node["match"] == "all" else " OR "
    combined = _all([condition_sql(child, ctx) for child in node["children"]], joiner)
    return negate(combined) if node.get("negate") else combined


def compile_rules(tree: dict[str, Any], ctx: CompileContext) -> Sql:
    """The WHERE expression for a clean rule tree."""
    return group_sql(tree, ctx)
