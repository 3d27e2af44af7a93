"""Customer and custom field writes. Profile changes go through customers/upsert.py so the
form and the API share one path; erasure and custom field purges are set-based."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from activity.models import Activity
from activity.services import Actor, activity_record
from customers.custom_fields import custom_field_name_for
from customers.erasure_gate import erasure_enter
from customers.models import Customer, CustomField, CustomFieldType
from customers.profile import CleanProfile
from customers.upsert import UpsertItem, customers_upsert
from segments.membership import LOCK_NAMESPACE as SEGMENT_LOCK_NAMESPACE
from workbench.jobs import enqueue_on_commit


class CustomFieldInvalid(ValueError):
    pass


# --- Customers ---------------------------------------------------------------------------


def customer_create(*, user_id: str, profile: CleanProfile, actor: Actor) -> Customer:
    """A new customer; ProfileInvalid (on user_id) when the user ID is taken."""
    results = customers_upsert([UpsertItem(user_id, profile)], actor, mode="create")
    return Customer.objects.get(pk=results[user_id].id)


def customer_update(*, customer: Customer, profile: CleanProfile, actor: Actor) -> Customer:
    customers_upsert([UpsertItem(customer.user_id, profile)], actor, log_each=True)
    customer.refresh_from_db()
    return customer


def customers_erase(customers: QuerySet[Customer], actor: Actor, *, record: bool = True) -> int:
    """Erase customers: the rows go, and with them their tags, events and memberships. The
    activity log keeps an entry without personal data (unless the caller records its own,
    ``record=False``), and earlier entries about them lose the user ID they were labelled
    with."""
    sql, params = customers.order_by().values("pk").query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        erasure_enter(cursor)  # the writers of events in flight commit first
        cursor.execute(
            # Django compiled the subquery; values stay parameters.
            f"UPDATE {Activity._meta.db_table} SET target_label = ''"  # noqa: S608
            f" WHERE target_type = 'customer' AND target_id IN ({sql})",
            params,
        )
        # The segments' counts change under their evaluation locks (taken in id order, as
        # evaluations take them), so a concurrent evaluation neither counts an exit twice nor
        # deadlocks with the erasure.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, segment_id::int) FROM (SELECT DISTINCT segment_id"  # noqa: S608
            f" FROM segments_membership WHERE customer_id IN ({sql}) ORDER BY 1) s",
            [SEGMENT_LOCK_NAMESPACE, *params],
        )
        # Events, memberships and tag assignments keep no key constraint on the customer
        # (events/models.py, segments/models.py, tags/models.py): they go after the rows.
        # Writers of events and memberships (ingestion, segment evaluations and builds) hold
        # the erasure gate, so they committed before this started, and this sees what they
        # wrote, or they start after this commits and find no row; a writer adding a tag
        # locked the customer first, so it either committed before this deleted the row, or
        # finds the row gone and adds nothing.
        cursor.execute(
            f"DELETE FROM {Customer._meta.db_table} WHERE id IN ({sql}) RETURNING id",  # noqa: S608
            params,
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("DELETE FROM events_event WHERE customer_id = ANY(%s)", [ids])
        cursor.execute("DELETE FROM tags_customertag WHERE customer_id = ANY(%s)", [ids])
        cursor.execute(
            "WITH gone AS (DELETE FROM segments_membership WHERE customer_id = ANY(%s)"
            " RETURNING segment_id)"
            " UPDATE segments_segment s SET member_count = s.member_count - g.n"
            " FROM (SELECT segment_id, count(*) AS n FROM gone GROUP BY segment_id) g"
            " WHERE s.id = g.segment_id",
            [ids],
        )
        if ids and record:
            activity_record(
                actor,
                "customer.erased" if len(ids) == 1 else "customers.erased",
                target_type="customer",
                target_id=ids[0] if len(ids) == 1 else None,
                count=len(ids),
            )
    return len(ids)


def customer_erase(*, customer: Customer, actor: Actor) -> None:
    customers_erase(Customer.objects.filter(pk=customer.pk), actor)


# --- Custom fields -------------------------------------------------------------------------


def _label_clean(label: str) -> str:
    label = " ".join((label or "").split())
    if not label:
        raise CustomFieldInvalid("A custom field needs a label.")
    if len(label) > 100:
        raise CustomFieldInvalid("A label has at most 100 characters.")
    return label


def _label_taken(label: str, exclude: int | None = None) -> bool:
    qs = CustomField.objects.filter(label__iexact=label, deleted_at__isnull=True)
    return qs.exclude(pk=exclude).exists() if exclude else qs.exists()


def custom_field_create(*, label: str, type: str, actor: Actor) -> CustomField:
    label = _label_clean(label)
    if type not in CustomFieldType.values:
        raise CustomFieldInvalid("Choose a type: text, date, number or yes/no.")
    if _label_taken(label):
        raise CustomFieldInvalid(f"A custom field labelled “{label}” already exists.")
    taken = set(CustomField.objects.values_list("name", flat=True))  # deleted ones too
    with transaction.atomic():
        # Two creators racing for one name: the unique constraint refuses the second.
        field = CustomField.objects.create(
            name=custom_field_name_for(label, taken),
            label=label,
            type=type,
            created_by=actor.member,
        )
        activity_record(
            actor,
            "custom_field.created",
            target_type="custom_field",
            target_id=field.pk,
            target_label=label,
            changes={"name": field.name, "type": type},
        )
    return field


def custom_field_rename(*, field: CustomField, label: str, actor: Actor) -> CustomField:
    label = _label_clean(label)
    if _label_taken(label, exclude=field.pk):
        raise CustomFieldInvalid(f"A custom field labelled “{label}” already exists.")
    old = field.label
    with transaction.atomic():
        field.label = label
        field.save(update_fields=["label"])
        activity_record(
            actor,
            "custom_field.renamed",
            target_type="custom_field",
            target_id=field.pk,
            target_label=label,
            fields=["label"],
            changes={"label": [old, label]},
        )
    return field


def custom_field_delete(*, field: CustomField, actor: Actor) -> None:
    """Hide the field now; a background job removes its values from every customer."""
    from customers.tasks import purge_custom_field

    with transaction.atomic():
        field.deleted_at = timezone.now()
        field.save(update_fields=["deleted_at"])
        activity_record(
            actor,
            "custom_field.deleted",
            target_type="custom_field",
            target_id=field.pk,
            target_label=field.label,
            changes={"name": field.name},
        )
        enqueue_on_commit(purge_custom_field, field.pk)


PURGE_CHUNK = 50_000


def custom_field_purge(field: CustomField) -> None:
    """Remove a deleted field's values, one primary-key range per transaction, then the field
    row. Safe to rerun: each range is idempotent, and a rerun starts again at the lowest id."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {Customer._meta.db_table}")  # noqa: S608
        last = cursor.fetchone()[0]
    start = 0
    while start <= last:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Customer._meta.db_table} SET custom = custom - %s"  # noqa: S608
                " WHERE id >= %s AND id < %s AND custom ? %s",
                [field.name, start, start + PURGE_CHUNK, field.name],
            )
        start += PURGE_CHUNK
    field.delete()
