"""Tag writes. Bulk assignment is set-based: the customers to tag are a queryset compiled into
one INSERT ... SELECT, so tagging "all matching this filter" at a million rows is one statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet

from activity.services import Actor, activity_record
from customers.models import Customer
from segments.fields import ChangeKind
from segments.incremental import pending_mark
from segments.services import segments_tag_renamed
from tags.models import CustomerTag, Tag
from tags.selectors import tags_named

TAG_NAME_MAX = 100


class TagInvalid(ValueError):
    pass


# The customers and tags an assignment is about to name, locked against deletion until the
# writer commits (tags_customertag keeps no key constraints: tags/models.py). A row deleted
# meanwhile is not returned, so it gets no assignment.
_LOCKED = "SELECT id FROM customers_customer WHERE id {} ORDER BY id FOR KEY SHARE"
TAGS_LOCKED = "SELECT id FROM tags_tag WHERE id = ANY({}) ORDER BY id FOR KEY SHARE"

_MERGE_SQL = f"""
WITH c AS ({_LOCKED.format("IN (SELECT customer_id FROM tags_customertag WHERE tag_id = %s)")}),
t AS ({TAGS_LOCKED.format("%s")})
INSERT INTO tags_customertag
    (customer_id, tag_id, added_at, added_by_id, added_by_token_id, source)
SELECT ct.customer_id, t.id, ct.added_at, ct.added_by_id, ct.added_by_token_id, ct.source
FROM tags_customertag ct JOIN c ON c.id = ct.customer_id CROSS JOIN t WHERE ct.tag_id = %s
ON CONFLICT (customer_id, tag_id) DO UPDATE
    SET added_at = LEAST(tags_customertag.added_at, EXCLUDED.added_at)
"""  # noqa: S608 - constant SQL

_TAG_PAIRS_SQL = f"""
WITH c AS ({_LOCKED.format("= ANY(%s)")}), t AS ({TAGS_LOCKED.format("%s")})
INSERT INTO tags_customertag
    (customer_id, tag_id, added_at, added_by_id, added_by_token_id, source)
SELECT x.c, x.t, now(), %s, %s, %s
FROM unnest(%s::bigint[], %s::bigint[]) AS x(c, t) JOIN c ON c.id = x.c JOIN t ON t.id = x.t
ON CONFLICT DO NOTHING RETURNING customer_id
"""  # noqa: S608 - constant SQL


def tags_remove(tag_ids: Sequence[int]) -> list[int]:
    """Delete tags, then their assignments, in two statements: a writer that locked one of
    the tags first has committed by the time the second one looks, so its assignments go
    too (no cascade in the database: tags/models.py). Returns the customers that had them,
    in id order."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tags_tag WHERE id = ANY(%s) RETURNING id", [list(tag_ids)])
        gone = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "DELETE FROM tags_customertag WHERE tag_id = ANY(%s) RETURNING customer_id", [gone]
        )
        return sorted({row[0] for row in cursor.fetchall()})


def tag_name_clean(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise TagInvalid("A tag needs a name.")
    if len(name) > TAG_NAME_MAX:
        raise TagInvalid(f"A tag name has at most {TAG_NAME_MAX} characters.")
    if "\x00" in name:
        raise TagInvalid("A tag name must not contain NUL characters.")
    return name


def _name_taken(name: str, exclude: int | None = None) -> bool:
    qs = tags_named([name])
    if exclude:
        qs = qs.exclude(pk=exclude)
    return qs.exists()


def tag_create(*, name: str, actor: Actor) -> Tag:
    name = tag_name_clean(name)
    if _name_taken(name):
        raise TagInvalid(f"A tag named “{name}” already exists.")
    try:
        with transaction.atomic():
            tag = Tag.objects.create(name=name, created_by=actor.member)
            activity_record(
                actor, "tag.created", target_type="tag", target_id=tag.pk, target_label=name
            )
    except IntegrityError:
        raise TagInvalid(f"A tag named “{name}” already exists.") from None
    return tag


def tag_rename(*, tag: Tag, name: str, actor: Actor) -> Tag:
    name = tag_name_clean(name)
    if _name_taken(name, exclude=tag.pk):
        raise TagInvalid(f"A tag named “{name}” already exists.")
    old = tag.name
    with transaction.atomic():
        tag.name = name
        tag.save(update_fields=["name"])
        activity_record(
            actor,
            "tag.renamed",
            target_type="tag",
            target_id=tag.pk,
            target_label=name,
            fields=["name"],
            changes={"name": [old, name]},
        )
        segments_tag_renamed(old, name)
    return tag


def tag_delete(*, tag: Tag, actor: Actor) -> int:
    """Delete a tag and its assignments. Returns how many customers had it."""
    with transaction.atomic():
        changed = tags_remove([tag.pk])
        count = len(changed)
        activity_record(
            actor,
            "tag.deleted",
            target_type="tag",
            target_id=tag.pk,
            target_label=tag.name,
            changes={"customers": count},
            count=max(count, 1),
        )
        pending_mark(changed, ChangeKind.TAGS)
    return count


def tag_merge(*, source: Tag, target: Tag, actor: Actor) -> int:
    """Move every assignment of ``source`` to ``target`` (keeping the original time and
    author; a customer with both keeps the older one) and delete ``source``."""
    if source.pk == target.pk:
        raise TagInvalid("Choose a different tag to merge into.")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_MERGE_SQL, [source.pk, [target.pk], source.pk])
            moved = cursor.rowcount
        activity_record(
            actor,
            "tag.merged",
            target_type="tag",
            target_id=target.pk,
            target_label=target.name,
            changes={"merged": source.name, "customers": moved},
            count=max(moved, 1),
        )
        pending_mark(tags_remove([source.pk]), ChangeKind.TAGS)
    return moved


def tags_ensure(names: Iterable[str], actor: Actor) -> list[Tag]:
    """The tags with these names (case-insensitive), creating the missing ones."""
    wanted: dict[str, str] = {}
    for name in names:
        clean = tag_name_clean(name)
        wanted.setdefault(clean.lower(), clean)
    if not wanted:
        return []
    existing = {t.name.lower(): t for t in tags_named(wanted)}
    missing = [name for key, name in wanted.items() if key not in existing]
    if missing:
        with connection.cursor() as cursor:
            # Concurrent creators of the same name: the unique index picks one, both see it.
            cursor.execute(
                "INSERT INTO tags_tag (name, created_at, created_by_id)"
                " SELECT n, now(), %s FROM unnest(%s::text[]) AS n ON CONFLICT DO NOTHING"
                " RETURNING id, name",
                [actor.member.pk if actor.member else None, missing],
            )
            for pk, name in cursor.fetchall():
                activity_record(
                    actor, "tag.created", target_type="tag", target_id=pk, target_label=name
                )
        existing = {t.name.lower(): t for t in tags_named(wanted)}
    return [existing[key] for key in wanted]


def _actor_params(actor: Actor) -> list:
    return [
        actor.member.pk if actor.member else None,
        actor.token.pk if actor.token else None,
        actor.source,
    ]


def customers_tag(
    customers: QuerySet[Customer],
    tags: Sequence[Tag],
    actor: Actor,
    *,
    customer: Customer | None = None,
) -> int:
    """Add ``tags`` to every customer in the queryset; returns the number of new assignments.
    Existing assignments keep their original time and author."""
    if not tags:
        return 0
    sql, params = customers.order_by().values("pk").query.sql_with_params()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                # The subquery is Django's own compiled SQL; values stay parameters.
                "INSERT INTO tags_customertag"  # noqa: S608
                " (customer_id, tag_id, added_at, added_by_id, added_by_token_id, source)"
                f" SELECT c.id, t.id, now(), %s, %s, %s FROM ({_LOCKED.format(f'IN ({sql})')}) c"
                f" CROSS JOIN ({TAGS_LOCKED.format('%s')}) t ON CONFLICT DO NOTHING"
                " RETURNING customer_id",
                [*_actor_params(actor), *params, [t.pk for t in tags]],
            )
            changed = {row[0] for row in cursor.fetchall()}
            added = cursor.rowcount
        pending_mark(sorted(changed), ChangeKind.TAGS)
        _log_bulk(actor, "customers.tagged", tags, added, customer)
    return added


def customers_untag(
    customers: QuerySet[Customer],
    tags: Sequence[Tag],
    actor: Actor,
    *,
    customer: Customer | None = None,
) -> int:
    if not tags:
        return 0
    with transaction.atomic():
        assignments = CustomerTag.objects.filter(
            tag__in=[t.pk for t in tags], customer__in=customers.order_by().values("pk")
        )
        changed = sorted(set(assignments.values_list("customer_id", flat=True)))
        removed, _ = assignments.delete()
        pending_mark(changed, ChangeKind.TAGS)
        _log_bulk(actor, "customers.untagged", tags, removed, customer)
    return removed


def _log_bulk(
    actor: Actor, action: str, tags: Sequence[Tag], count: int, customer: Customer | None
) -> None:
    """One entry per batch; with ``customer`` it lands on that customer's page."""
    if not count:
        return
    activity_record(
        actor,
        action,
        target_type="customer",
        target_id=customer.pk if customer else None,
        target_label=customer.user_id if customer else "",
        fields=["tags"],
        changes={"tags": [t.name for t in tags], "assignments": count},
        count=count,
    )


def customers_tag_by_name(pairs: Sequence[tuple[int, str]], actor: Actor) -> set[int]:
    """Add tags given as (customer id, tag name) pairs, creating tags as needed (API and
    import writes; the caller records the activity). Returns the ids of customers that gained
    a tag."""
    tags = {t.name.lower(): t.pk for t in tags_ensure(dict.fromkeys(n for _, n in pairs), actor)}
    with connection.cursor() as cursor:
        cursor.execute(
            _TAG_PAIRS_SQL,
            [
                sorted({pk for pk, _ in pairs}),
                sorted(set(tags.values())),
                *_actor_params(actor),
                [pk for pk, _ in pairs],
                [tags[name.lower()] for _, name in pairs],
            ],
        )
        changed = {row[0] for row in cursor.fetchall()}
    pending_mark(sorted(changed), ChangeKind.TAGS)
    return changed


def customer_tags_add(*, customer: Customer, names: Iterable[str], actor: Actor) -> list[Tag]:
    tags = tags_ensure(names, actor)
    customers_tag(Customer.objects.filter(pk=customer.pk), tags, actor, customer=customer)
    return tags


def customer_tags_remove(*, customer: Customer, tags: Sequence[Tag], actor: Actor) -> int:
    return customers_untag(Customer.objects.filter(pk=customer.pk), tags, actor, customer=customer)
