"""Import writes: upload, configure (mapping and options), start (dry run or for real),
cancel, undo, and the scheduling of queued and stuck imports."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from activity.services import Actor, activity_record
from customers.models import CustomField, CustomFieldType
from imports.mapping import mapping_suggest
from imports.models import Import, ImportPhase, ImportStatus, MergedChunk
from imports.pipeline import (
    file_remove,
    import_file,
    import_finish,
    planned_fields,
    runner_lock,
)
from imports.reader import FileRejected, dialect_detect, header_read, preview_rows, upload_store
from imports.rows import MappingInvalid, columns_for
from imports.staging import staging_drop
from tags.services import TagInvalid, tag_name_clean
from workbench.jobs import enqueue_on_commit


class ImportInvalid(ValueError):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def default_tag_name(at=None) -> str:
    return f"Import {timezone.localtime(at or timezone.now()):%Y-%m-%d %H:%M}"


def import_upload(*, chunks: Iterable[bytes], file_name: str, actor: Actor) -> Import:
    """Store an uploaded file and read its shape: a draft import with suggested mapping.
    FileRejected (nothing kept) when the file is too big, not a CSV, or its header is bad."""
    from customers.custom_fields import custom_field_specs

    directory = Path(settings.IMPORTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    stored = f"{uuid.uuid4().hex}.csv"
    path = directory / stored
    try:
        size = upload_store(chunks, path)
        dialect = dialect_detect(path)
        headers = header_read(path, dialect)
        sample = preview_rows(path, dialect, limit=50)
    except FileRejected:
        path.unlink(missing_ok=True)
        raise
    sample_bytes = sum(len(",".join(r)) + 2 for r in sample) or 1
    return Import.objects.create(
        file_name=(file_name or "import.csv")[:255],
        file_path=stored,
        file_size=size,
        encoding=dialect.encoding,
        delimiter=dialect.delimiter,
        headers=headers,
        mapping=mapping_suggest(headers, custom_field_specs()),
        options={"tags": [default_tag_name()], "fill_empty": []},
        rows_estimate=max(1, int(size * max(len(sample), 1) / sample_bytes)),
        source=actor.source,
        created_by=actor.member,
        token=actor.token,
    )


def _targets_check(imp: Import, mapping: list[str]) -> None:
    types = set(CustomFieldType.values)
    labels = {
        label.lower()
        for label in CustomField.objects.filter(deleted_at__isnull=True).values_list(
            "label", flat=True
        )
    }
    for header, target in zip(imp.headers, mapping, strict=False):
        if target.startswith("new."):
            if target[4:] not in types:
                raise ImportInvalid(
                    f"Column “{header}”: a new custom field's type is text, date, number or "
                    "boolean.",
                    "mapping",
                )
            if header.lower() in labels:
                raise ImportInvalid(
                    f"Column “{header}”: a custom field with this label exists; map the column "
                    "to it instead of creating a new one.",
                    "mapping",
                )


def mapping_from(imp: Import, raw: object) -> list[str]:
    """A mapping as clients give it: a list with one target per column, or an object
    {header: target} where columns left out keep their suggested target."""
    if raw is None:
        return list(imp.mapping)
    if isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        return raw
    if isinstance(raw, dict) and all(isinstance(t, str) for t in raw.values()):
        unknown = [h for h in raw if h not in imp.headers]
        if unknown:
            raise ImportInvalid(f"No column named “{unknown[0]}”.", "mapping")
        return [raw.get(h, t) for h, t in zip(imp.headers, imp.mapping, strict=True)]
    raise ImportInvalid(
        "Must be a list of targets or an object of column header → target.", "mapping"
    )


def import_configure(
    *,
    imp: Import,
    mapping: list[str],
    tags: list[str] | None = None,
    fill_empty: list[str] | None = None,
) -> Import:
    """Set the mapping (one target per column) and options; ImportInvalid says what is wrong."""
    if imp.status != ImportStatus.DRAFT and not (imp.dry_run and imp.finished):
        raise ImportInvalid("This import has started; its mapping can no longer change.")
    mapping = [(t or "skip").strip() for t in mapping]
    _targets_check(imp, mapping)
    draft = Import(headers=imp.headers, mapping=mapping)
    try:
        columns_for(imp.headers, *planned_fields(draft))
    except MappingInvalid as exc:
        raise ImportInvalid(str(exc), "mapping") from None
    clean_tags: dict[str, str] = {}
    try:
        for name in tags or []:
            if name and name.strip():
                clean = tag_name_clean(name)
                clean_tags.setdefault(clean.lower(), clean)
    except TagInvalid as exc:
        raise ImportInvalid(str(exc), "tags") from None
    mapped = {h for h, t in zip(imp.headers, mapping, strict=True) if t != "skip"}
    fill = [h for h in fill_empty or [] if h in mapped]
    imp.mapping = mapping
    imp.options = {"tags": list(clean_tags.values()), "fill_empty": fill}
    imp.save(update_fields=["mapping", "options"])
    return imp


def import_start(*, imp: Import, actor: Actor, dry_run: bool = False) -> Import:
    """Queue a draft (or a finished dry run) as a dry run or as the real import."""
    with transaction.atomic():
        imp = Import.objects.select_for_update().get(pk=imp.pk)
        if imp.status != ImportStatus.DRAFT and not (imp.dry_run and imp.finished):
            raise ImportInvalid("This import has already started.")
        if not imp.file_path or not import_file(imp).is_file():
            raise ImportInvalid("The uploaded file is gone; upload it again.")
        staging_drop(imp.pk)
        MergedChunk.objects.filter(import_id=imp.pk).delete()
        for name in (
            "staged_through",
            "applied_through",
            "total_rows",
            "rows_read",
            "created",
            "updated",
            "unchanged",
            "failed",
            "tagged",
            "attempts",
        ):
            setattr(imp, name, 1 if name == "staged_through" else 0)
        imp.dry_run = dry_run
        imp.status = ImportStatus.QUEUED
        imp.phase = ImportPhase.STAGE
        imp.message = ""
        imp.cancel_requested = False
        imp.queued_at = timezone.now()
        imp.started_at = imp.finished_at = imp.heartbeat_at = None
        imp.created_by = imp.created_by or actor.member
        imp.save()
        if not dry_run:
            activity_record(
                actor,
                "import.queued",
                target_type="import",
                target_id=imp.pk,
                target_label=imp.file_name,
            )
        imports_start_next()
    return imp


def import_discard(imp: Import) -> None:
    """Forget a draft that never ran (an upload whose mapping or options were refused)."""
    file_remove(imp)
    staging_drop(imp.pk)
    imp.delete()


def imports_start_next() -> None:
    """Send the oldest queued imports to the workers, as many as there are free slots (the
    worker claims a slot again, under a lock, before it starts)."""
    from imports.tasks import run_import

    running = Import.objects.filter(status=ImportStatus.RUNNING).count()
    free = max(settings.IMPORTS_MAX_RUNNING - running, 0)
    if not free:
        return
    waiting = Import.objects.filter(status=ImportStatus.QUEUED).order_by("queued_at", "id")
    for pk in waiting.values_list("pk", flat=True)[:free]:
        enqueue_on_commit(run_import, pk)


def import_cancel(*, imp: Import, actor: Actor) -> Import:
    """A queued import (or a draft) is cancelled at once; a running one stops at its next
    checkpoint. What it had already written stays, and can be undone."""
    with transaction.atomic():
        imp = Import.objects.select_for_update().get(pk=imp.pk)
        if not imp.can_cancel:
            raise ImportInvalid("Only a queued or running import can be cancelled.")
        if imp.status == ImportStatus.RUNNING:
            imp.cancel_requested = True
            imp.save(update_fields=["cancel_requested"])
        else:
            imp.status = ImportStatus.CANCELLED
            imp.phase = ImportPhase.DONE
            imp.finished_at = timezone.now()
            imp.message = "Cancelled before it started."
            imp.save()
            transaction.on_commit(lambda: file_remove(imp))
        activity_record(
            actor,
            "import.cancelled",
            target_type="import",
            target_id=imp.pk,
            target_label=imp.file_name,
        )
    return imp


def import_undo(*, imp: Import, actor: Actor) -> Import:
    from imports.tasks import undo_import

    with transaction.atomic():
        imp = Import.objects.select_for_update().get(pk=imp.pk)
        if not imp.can_undo:
            raise ImportInvalid(
                "Only a finished import that changed customers can be undone, within 7 days."
            )
        imp.status = ImportStatus.UNDOING
        imp.undone_by = actor.member
        imp.save(update_fields=["status", "undone_by"])
        activity_record(
            actor,
            "import.undo_requested",
            target_type="import",
            target_id=imp.pk,
            target_label=imp.file_name,
        )
        enqueue_on_commit(undo_import, imp.pk)
    return imp


def imports_sweep() -> dict[str, int]:
    """Pick up imports whose worker stopped (no heartbeat for IMPORTS_STALE_SECONDS and
    nobody holding their runner lock): resume them, or after IMPORTS_MAX_ATTEMPTS fail them
    with the reason. Then fill free slots from the queue."""
    from imports.tasks import run_import, undo_import

    stale_before = timezone.now() - timedelta(seconds=settings.IMPORTS_STALE_SECONDS)
    resumed = failed = 0
    stuck = Import.objects.filter(
        status__in=[ImportStatus.RUNNING, ImportStatus.UNDOING], heartbeat_at__lt=stale_before
    ) | Import.objects.filter(status=ImportStatus.UNDOING, heartbeat_at=None)
    for imp in stuck.order_by("pk"):
        with runner_lock(imp.pk) as free:
            if not free:  # its worker is alive, only slow
                continue
        with transaction.atomic():
            imp = Import.objects.select_for_update().get(pk=imp.pk)
            if imp.status == ImportStatus.UNDOING:
                imp.heartbeat_at = timezone.now()
                imp.save(update_fields=["heartbeat_at"])
                enqueue_on_commit(undo_import, imp.pk)
                resumed += 1
                continue
            imp.attempts += 1
            if imp.attempts >= settings.IMPORTS_MAX_ATTEMPTS:
                imp.save(update_fields=["attempts"])
                import_finish(
                    imp,
                    ImportStatus.FAILED,
                    f"The worker running this import stopped {imp.attempts} times without "
                    f"finishing (last heartbeat {imp.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC). "
                    "Customers written before that stay; undo the import to remove them.",
                )
                failed += 1
                continue
            imp.heartbeat_at = timezone.now()
            imp.save(update_fields=["attempts", "heartbeat_at"])
            enqueue_on_commit(run_import, imp.pk)
            resumed += 1
    with transaction.atomic():
        imports_start_next()
    return {"resumed": resumed, "failed": failed, "discarded": _abandoned_discard()}


ABANDONED_AFTER = timedelta(days=1)


def _abandoned_discard() -> int:
    """Uploads left in the wizard for a day lose their file: a draft goes entirely, a dry run
    that was never imported keeps its row (and report) but can no longer be started."""
    before = timezone.now() - ABANDONED_AFTER
    drafts = list(Import.objects.filter(status=ImportStatus.DRAFT, created_at__lt=before))
    for imp in drafts:
        import_discard(imp)
    dry = Import.objects.filter(dry_run=True, finished_at__lt=before).exclude(file_path="")
    for imp in dry:
        file_remove(imp)
    dry.update(file_path="")
    return len(drafts)
