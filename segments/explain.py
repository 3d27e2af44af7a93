"""Why is (or isn't) a customer in a segment: every condition with the value it saw and
whether it held, computed by the same compiler as membership (one query per explanation)."""

from __future__ import annotations

from typing import Any

from django.db import connection

from customers.models import Customer
from donotcontact.models import Entry
from donotcontact.suppression import address_column, entries_matching_q
from segments.compiler import FALSE, CompileContext, Sql, condition_sql, event_rows, tag_window
from segments.models import Membership, Segment
from segments.query import compile_context


def _seen_sql(node: dict[str, Any], ctx: CompileContext) -> Sql:
    kind = node["type"]
    if kind == "attribute":
        field = ctx.registry.get(node["field"])
        if field is None:
            return Sql("NULL::text")
        return Sql(f"({field.sql})::text", list(field.params))
    if kind == "event":
        type_id = ctx.event_type_ids.get(node["name"])
        if type_id is None:
            return Sql("0::bigint")
        rows = event_rows(node, type_id, ctx)
        return Sql(
            f"(SELECT count(*) FROM events_event e WHERE e.customer_id = c.id AND {rows.sql})",
            rows.params,
        )
    if kind == "tag":
        ids = [ctx.tag_ids[n.lower()] for n in node["tags"] if n.lower() in ctx.tag_ids]
        window = tag_window(node, ctx)
        return Sql(
            "(SELECT coalesce(string_agg(tg.name, ', ' ORDER BY tg.name), '')"
            " FROM tags_customertag t JOIN tags_tag tg ON tg.id = t.tag_id"
            f" WHERE t.customer_id = c.id AND t.tag_id = ANY(%s){window.sql})",
            [ids, *window.params],
        )
    if kind == "do_not_contact":
        # The matching entry is looked up afterwards (``_entry_seen``), by the list's own rule.
        return Sql("NULL::text")
    return Sql(
        "EXISTS (SELECT 1 FROM segments_membership m"
        " WHERE m.segment_id = %s AND m.customer_id = c.id)",
        [node["segment"]],
    )


def _entry_seen(node: dict[str, Any], email: str, phone: str) -> dict[str, Any] | None:
    """The entry (the oldest, if several) that puts this customer on the list as the
    condition asks, or None."""
    channel = node.get("channel")
    if channel:
        contacts = [email if address_column(channel) == "c.email" else phone]
    else:
        contacts = [email, phone]
    for contact in contacts:
        if not contact:
            continue
        q = entries_matching_q(contact, channel, node.get("sender", ""), node.get("account", ""))
        entry = (
            Entry.objects.filter(q)
            .order_by("added_at", "id")
            .values("contact", "channel", "sender", "account", "added_at", "source")
            .first()
        )
        if entry is not None:
            return entry
    return None


def _leaves(tree: dict[str, Any], path: str = "root"):
    for i, child in enumerate(tree["children"]):
        child_path = f"children[{i}]" if path == "root" else f"{path}.children[{i}]"
        if child["type"] == "group":
            yield from _leaves(child, child_path)
        else:
            yield child_path, child


def _fold(tree: dict[str, Any], results: dict[str, tuple[bool, Any]], path: str) -> dict:
    children = []
    for i, child in enumerate(tree["children"]):
        child_path = f"children[{i}]" if path == "root" else f"{path}.children[{i}]"
        if child["type"] == "group":
            children.append(_fold(child, results, child_path))
        else:
            held, seen = results[child_path]
            children.append({**child, "node": child_path, "held": held, "seen": seen})
    values = [c["held"] for c in children]
    held = all(values) if tree["match"] == "all" else any(values)
    if tree.get("negate"):
        held = not held
    return {
        "type": "group",
        "node": path,
        "match": tree["match"],
        "negate": tree.get("negate", False),
        "held": held,
        "children": children,
    }


def explain(segment: Segment, customer_id: int) -> dict[str, Any]:
    """The rule tree annotated for one customer: each node gets ``held`` and each condition
    the value it ``seen`` (the field's value, the event count, the customer's matching tags,
    or whether they are in the other segment). ``matches`` is the verdict now; ``member`` is
    the stored membership, which can lag by the seconds incremental evaluation takes."""
    tree = segment.rules
    ctx = compile_context(tree, segment.timezone, candidates=[customer_id])
    leaves = list(_leaves(tree))
    columns, params = [], []
    for _, node in leaves:
        held, seen = condition_sql(node, ctx), _seen_sql(node, ctx)
        columns += [held.sql, seen.sql]
        params += [*held.params, *seen.params]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.email, c.phone, {', '.join(columns) or FALSE}"
            " FROM customers_customer c WHERE c.id = %s",
            [*params, customer_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise Customer.DoesNotExist(f"No customer {customer_id}.")
    email, phone, row = row[0], row[1], row[2:]
    results = {}
    for i, (path, node) in enumerate(leaves):
        seen = row[2 * i + 1]
        if node["type"] == "do_not_contact":
            seen = _entry_seen(node, email, phone)
        results[path] = (row[2 * i], seen)
    folded = _fold(tree, results, "root")
    member = Membership.objects.filter(segment=segment, customer_id=customer_id).exists()
    return {"matches": folded["held"], "member": member, "rules": folded}
