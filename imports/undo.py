"""Undoing an import: the customers it created are erased, the values it changed go back to
what they were (only where nobody changed them since), and the tag assignments it added are
removed. Chunked like the import itself: each chunk's ImportCreated ids and ImportChange rows
are taken off the log in the transaction that reverts them, so a re-run carries on where a
killed one stopped.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from activity.services import Actor, activity_record
from customers.models import Customer
from customers.profile import STANDARD_FIELDS
from imports.models import Import, ImportChange, ImportCreated, ImportStatus
from imports.pipeline import created_tags_prune, runner_lock
from segments.fields import ChangeKind
from segments.incremental import pending_mark
from tags.models import CustomerTag, Source

UNDO_CHUNK = 10_000

# A field goes back only while it still holds the value the import wrote.
_RESTORE_STANDARD = ", ".join(
    f"{c} = CASE WHEN ch.changes ? '{c}' AND c.{c} = ch.changes->'{c}'->>1"
    f" THEN ch.changes->'{c}'->>0 ELSE c.{c} END"
    for c in STANDARD_FIELDS
)
_CUSTOM_RESTORED = """
    FROM jsonb_each(ch.changes) e(k, v)
    WHERE left(k, 7) = 'custom.' AND c.custom->substr(k, 8) = v->1
"""
_RESTORE_SQL = f"""
UPDATE customers_customer c SET {_RESTORE_STANDARD},
    custom = (c.custom - ARRAY(SELECT substr(k, 8) {_CUSTOM_RESTORED}
                               AND jsonb_typeof(v->0) = 'null'))
             || coalesce((SELECT jsonb_object_agg(substr(k, 8), v->0) {_CUSTOM_RESTORED}
                          AND jsonb_typeof(v->0) <> 'null'), '{{}}'::jsonb),
    updated_at = now()
FROM imports_importchange ch
WHERE ch.import_id = %s AND NOT ch.created AND ch.customer_id = c.id
  AND ch.customer_id = ANY(%s::bigint[])
RETURNING c.id
"""  # noqa: S608 - identifiers from STANDARD_FIELDS


def _erase_created_chunk(imp: Import, actor: Actor, totals: dict[str, int]) -> bool:
    """Erase up to UNDO_CHUNK of the customers the import created, in one transaction with
    taking them off its log; False when none are left."""
    from customers.services import customers_erase

    with transaction.atomic():
        Import.objects.filter(pk=imp.pk).update(heartbeat_at=timezone.now())
        logged = (
            ImportCreated.objects.select_for_update()
            .filter(import_id=imp.pk)
            .order_by("first_id")
            .first()
        )
        if logged is None:
            return False
        ids, rest = logged.ids[:UNDO_CHUNK], logged.ids[UNDO_CHUNK:]
        totals["removed"] += customers_erase(
            Customer.objects.filter(pk__in=ids), actor, record=False
        )
        left = ImportCreated.objects.filter(pk=logged.pk)
        if rest:
            left.update(first_id=rest[0], ids=rest)
        else:
            left.delete()
        imp.options = {**imp.options, "undo": totals}
        imp.save(update_fields=["options"])
    return True


def import_undo_run(import_id: int) -> Import | None:
    from customers.services import customers_erase

    with runner_lock(import_id) as got:
        if not got:
            return None
        imp = Import.objects.get(pk=import_id)
        if imp.status != ImportStatus.UNDOING:
            return None
        actor = (
            Actor(Source.UI, member=imp.undone_by)
            if imp.undone_by
            else Actor.system(f"Undo of import {imp.pk}")
        )
        totals = imp.options.get("undo", {"removed": 0, "restored": 0})
        while _erase_created_chunk(imp, actor, totals):
            pass
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                Import.objects.filter(pk=imp.pk).update(heartbeat_at=timezone.now())
                batch = list(
                    ImportChange.objects.filter(import_id=imp.pk)
                    .order_by("customer_id")
                    .values_list("customer_id", "created")[:UNDO_CHUNK]
                )
                if not batch:
                    break
                created = [pk for pk, was_created in batch if was_created]
                changed = [pk for pk, was_created in batch if not was_created]
                if changed:
                    cursor.execute(_RESTORE_SQL, [imp.pk, changed])
                    back = [row[0] for row in cursor.fetchall()]
                    totals["restored"] += len(back)
                    pending_mark(back, ChangeKind.PROFILE)
                if created:
                    totals["removed"] += customers_erase(
                        Customer.objects.filter(pk__in=created), actor, record=False
                    )
                ImportChange.objects.filter(
                    import_id=imp.pk, customer_id__in=[pk for pk, _ in batch]
                ).delete()
                # Running totals move with the rows they count, so a resumed undo reports all.
                imp.options = {**imp.options, "undo": totals}
                imp.save(update_fields=["options"])
        with transaction.atomic():
            assignments = CustomerTag.objects.filter(added_by_import=imp.pk)
            untagged_customers = sorted(set(assignments.values_list("customer_id", flat=True)))
            untagged, _ = assignments.delete()
            pending_mark(untagged_customers, ChangeKind.TAGS)
            # Tags the import itself created (the default "Import …" tag) go when left empty.
            created_tags_prune(imp)
            imp.status = ImportStatus.UNDONE
            imp.undone_at = timezone.now()
            removed, restored = totals["removed"], totals["restored"]
            imp.message = (
                f"Undone: {removed:,} created customers removed, {restored:,} restored, "
                f"{untagged:,} tag assignments removed."
            )
            imp.save(update_fields=["status", "undone_at", "message"])
            activity_record(
                actor,
                "import.undone",
                target_type="import",
                target_id=imp.pk,
                target_label=imp.file_name,
                changes={"removed": removed, "restored": restored, "untagged": untagged},
                count=removed + restored + untagged,
            )
        return imp
