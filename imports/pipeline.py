"""The import pipeline: parse → stage → merge, in chunks with checkpoints.

1. Stage: the file streams through the reader (imports/reader.py); each row is validated and
   typed (imports/rows.py) and COPY'd into imports_stagedrow, a chunk per transaction. The
   chunk and the checkpoint (``staged_through``, the last file row staged) commit together,
   so a re-run skips exactly the rows already staged. Then a later row with the same user ID
   supersedes an earlier one (the last row wins). In a big file, a row whose digest a customer
   carries (imports/digest.py: an earlier import applied that very row) is staged with its
   cells, unchecked; the merge counts it unchanged, or checks it then if the customer changed
   in the meantime. Nothing touches customers in this phase, so
   a file that turns out broken (an unterminated quote in the last row) fails with nothing
   half-written.
2. Merge: staged rows, in row-number ranges, go into customers with one set-based statement
   per chunk (imports/merge.py), committed together with the chunk's marker (MergedChunk) and
   its counts; big imports merge two chunks at once. A re-delivered chunk finds its marker and
   does nothing; a resumed import merges only the chunks without one.
3. Finish: status, error rows kept for the report, the file removed, the next queued import
   started.

A dry run stages and counts (created / updated / unchanged / failed) without writing
customers. One runner per import at a time: a session advisory lock, which PostgreSQL frees
when a killed worker's connection goes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from psycopg import errors as pg_errors

from activity.services import Actor, activity_record
from customers.custom_fields import CustomFieldSpec, custom_field_name_for, custom_field_specs
from customers.models import CustomField
from imports.digest import RowDigests, cells_of, digest_key, known_digests
from imports.merge import SUPERSEDE_SQL, MergePlan
from imports.models import Import, ImportPhase, ImportStatus, MergedChunk, StagedRow
from imports.reader import Dialect, FileRejected, rows_read
from imports.rows import MappingInvalid, columns_for, copy_line, row_type
from imports.stage_pool import BLOCK_ROWS, blocks_of, typed_blocks, typed_file
from imports.staging import staging_drop, staging_ensure, staging_keep, staging_lost
from segments.incremental import pending_marked
from tags.models import Source

log = logging.getLogger(__name__)

RUNNER_LOCK = 5201  # advisory lock namespace: (RUNNER_LOCK, import id) while running
SLOTS_LOCK = 5202  # (SLOTS_LOCK, 0) while deciding which queued import may start
RELEASE_LOCK = 5203  # (RELEASE_LOCK, 0) while an import lets go of its staged rows
ANALYZE_AFTER = 10_000  # created customers

_COPY_SQL = (
    "COPY imports_stagedrow (import_id, row_no, user_id, vals, custom, errors, raw, digest, cells)"
    " FROM STDIN"
)

Progress = Callable[[Import], None]


class Stop(Exception):
    """The import was cancelled, or another runner moved it on; stop quietly."""


def import_file(imp: Import) -> Path:
    return Path(settings.IMPORTS_DIR) / imp.file_path


def actor_for(imp: Import) -> Actor:
    return Actor(Source.IMPORT, member=imp.created_by, token=imp.token)


# --- running ---------------------------------------------------------------------------------


@contextmanager
def runner_lock(import_id: int) -> Iterator[bool]:
    """The import's runner lock, if free (yields whether it was got); released on exit."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [RUNNER_LOCK, import_id])
        got = cursor.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [RUNNER_LOCK, import_id])


def import_run(import_id: int, *, progress: Progress | None = None) -> Import | None:
    """Run or resume an import to its end. Returns None when it may not run now (another
    runner has it, it is not queued or running, or every slot is taken)."""
    with runner_lock(import_id) as got:
        if not got:
            return None
        try:
            imp = _claim(import_id)
        except MappingInvalid as exc:  # a field it would create appeared meanwhile
            imp = Import.objects.get(pk=import_id)
            import_finish(imp, ImportStatus.FAILED, str(exc))
            return imp
        if imp is None:
            return None
        try:
            if imp.staged_through and staging_lost(imp.pk):
                _restage(imp)
            if imp.phase == ImportPhase.STAGE:
                _stage(imp, progress)
            if imp.phase == ImportPhase.APPLY:
                _merge(imp, progress)
            import_finish(imp, ImportStatus.COMPLETED)
        except Stop:
            imp.refresh_from_db()
            if imp.cancel_requested and not imp.finished:
                import_finish(imp, ImportStatus.CANCELLED, "Cancelled.")
        except (FileRejected, MappingInvalid) as exc:
            import_finish(imp, ImportStatus.FAILED, getattr(exc, "message", None) or str(exc))
        if progress:
            progress(imp)
        return imp


def _claim(import_id: int) -> Import | None:
    """Queued → running if a slot is free (at most IMPORTS_MAX_RUNNING at once); a running
    import (a retry, or a resume after a killed worker) carries on."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [SLOTS_LOCK])
        imp = Import.objects.select_for_update().filter(pk=import_id).first()
        if imp is None or imp.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            return None
        if imp.status == ImportStatus.QUEUED:
            running = Import.objects.filter(status=ImportStatus.RUNNING).count()
            if running >= settings.IMPORTS_MAX_RUNNING:
                return None
            imp.status = ImportStatus.RUNNING
            imp.started_at = timezone.now()
            if not imp.dry_run:
                _prepare(imp)
        imp.heartbeat_at = timezone.now()
        imp.save()
        return imp


def _prepare(imp: Import) -> None:
    """Once, as the import starts: create the new custom fields it maps and the tags it adds."""
    from customers.services import CustomFieldInvalid, custom_field_create
    from tags.selectors import tags_named
    from tags.services import tags_ensure

    actor = actor_for(imp)
    mapping = list(imp.mapping)
    for index, target in enumerate(mapping):
        if target.startswith("new."):
            try:
                field = custom_field_create(label=imp.headers[index], type=target[4:], actor=actor)
            except CustomFieldInvalid as exc:
                raise MappingInvalid(f"Column “{imp.headers[index]}”: {exc}") from None
            mapping[index] = field.key
    imp.mapping = mapping
    names = imp.options.get("tags", [])
    existing = set(tags_named(names).values_list("pk", flat=True)) if names else set()
    imp.tag_ids = [t.pk for t in tags_ensure(names, actor)]
    # Tags this import brought into being go again if it fails or is undone and leaves them empty.
    imp.options = {
        **imp.options,
        "created_tag_ids": [pk for pk in imp.tag_ids if pk not in existing],
    }


def _restage(imp: Import) -> None:
    """The staged rows are gone (a crash of the database server empties the unlogged staging
    partition): stage the whole file again. Chunks already merged keep their markers and are
    not merged again; the rest merge from the new rows, which are numbered as before."""
    log.warning("import %s: its staged rows were lost; staging the file again", imp.pk)
    imp.staged_through = imp.rows_read = 0
    imp.phase = ImportPhase.STAGE
    Import.objects.filter(pk=imp.pk).update(staged_through=0, rows_read=0, phase=imp.phase)


def planned_fields(imp: Import) -> tuple[list[str], dict[str, CustomFieldSpec]]:
    """The mapping with each "new.<type>" read as the custom field it will make (a dry run
    runs before they exist), and the custom fields by name including those."""
    specs = custom_field_specs()
    taken = set(CustomField.objects.values_list("name", flat=True))  # deleted ones too
    mapping = list(imp.mapping)
    for index, target in enumerate(mapping):
        if target.startswith("new."):
            name = custom_field_name_for(imp.headers[index], taken)
            taken.add(name)
            specs[name] = CustomFieldSpec(name, target[4:], imp.headers[index])
            mapping[index] = f"custom.{name}"
    return mapping, specs


def _staging_checkpoint(imp: Import) -> None:
    """Lock the import row; Stop if it was cancelled or another runner staged past us."""
    row = Import.objects.select_for_update().only("cancel_requested", "staged_through")
    row = row.get(pk=imp.pk)
    if row.cancel_requested or row.staged_through != imp.staged_through:
        raise Stop


# --- stage -----------------------------------------------------------------------------------


def _stage(imp: Import, progress: Progress | None) -> None:
    staging_ensure(imp.pk)
    mapping, specs = planned_fields(imp)
    columns_for(imp.headers, mapping, specs)  # a mapping that no longer fits fails here
    dialect = Dialect(imp.encoding, imp.delimiter)
    resume_after = imp.staged_through
    big = imp.rows_estimate - imp.rows_read >= settings.IMPORTS_PARALLEL_FROM_ROWS
    # Reading every customer's digest pays off for a big file only.
    digests = RowDigests(_digest_key(imp, mapping, specs), known_digests() if big else b"")
    if big and settings.IMPORTS_STAGE_PROCESSES > 1:
        typed = typed_file(
            imp.pk,
            imp.headers,
            mapping,
            specs,
            import_file(imp),
            dialect,
            after=resume_after,
            processes=settings.IMPORTS_STAGE_PROCESSES,
            digests=digests,
        )
    else:
        rows = (
            (row.number, row.cells, row.problem)
            for row in rows_read(import_file(imp), dialect)
            if row.number > resume_after
        )
        typed = typed_blocks(
            imp.pk,
            imp.headers,
            mapping,
            specs,
            blocks_of(rows, min(BLOCK_ROWS, settings.IMPORTS_CHUNK_ROWS)),  # one checkpoint each
            digests,
        )
    chunk: list[str] = []
    count, last = 0, imp.staged_through
    for done, text in typed:
        chunk.append(text)
        count += done.count
        last = done.last
        if count >= settings.IMPORTS_CHUNK_ROWS:
            _stage_commit(imp, chunk, count, last)
            chunk, count = [], 0
            if progress:
                progress(imp)
    _stage_commit(imp, chunk, count, last)
    with transaction.atomic(), connection.cursor() as cursor:
        _staging_checkpoint(imp)
        cursor.execute("ANALYZE imports_stagedrow")  # what follows plans on these statistics
        cursor.execute("SET LOCAL work_mem = %s", [settings.SEGMENTS_WORK_MEM])
        cursor.execute(SUPERSEDE_SQL, {"imp": imp.pk})
        if imp.dry_run:
            _retype(imp, mapping, specs, _stale_rows(cursor, imp.pk))
        counts = StagedRow.objects.filter(import_id=imp.pk).aggregate(
            total=Count("row_no"),
            failed=Count("row_no", filter=Q(errors__isnull=False) | Q(superseded_by__isnull=False)),
        )
        imp.total_rows, imp.failed = counts["total"], counts["failed"]
        imp.phase = ImportPhase.APPLY
        if imp.dry_run:
            _classify(imp, mapping, cursor)
            imp.phase = ImportPhase.DONE
        imp.heartbeat_at = timezone.now()
        imp.save()


def _digest_key(imp: Import, mapping: list[str], specs: dict[str, CustomFieldSpec]) -> bytes:
    fill_empty = set(imp.options.get("fill_empty", []))
    filled = [t for h, t in zip(imp.headers, mapping, strict=True) if h in fill_empty]
    return digest_key(mapping, filled, {name: spec.type for name, spec in specs.items()})


def _stale_rows(cursor, import_id: int) -> list[int]:
    """Rows staged on a customer's digest that the customer no longer carries."""
    cursor.execute(
        "SELECT r.row_no FROM imports_stagedrow r WHERE r.import_id = %s"
        " AND r.cells IS NOT NULL AND r.superseded_by IS NULL AND NOT EXISTS ("
        "  SELECT FROM customers_customer c"
        "  WHERE c.user_id = r.user_id AND c.import_digest = r.digest)",
        [import_id],
    )
    return [row_no for (row_no,) in cursor.fetchall()]


def _retype(
    imp: Import, mapping: list[str], specs: dict[str, CustomFieldSpec], row_nos: list[int]
) -> tuple[int, list[str]]:
    """Check and type, in place, rows staged on a digest alone whose customer changed since:
    (how many fail, the user IDs of those that pass). A row that fails here (a custom field's
    type changed in the meantime) is reported, but does not give back rows it superseded."""
    if not row_nos:
        return 0, []
    columns = columns_for(imp.headers, mapping, specs)
    width, failed, passed, lines = len(imp.headers), 0, [], []
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM imports_stagedrow WHERE import_id = %s AND row_no = ANY(%s)"
            " AND cells IS NOT NULL RETURNING row_no, digest, cells",
            [imp.pk, row_nos],
        )
        for row_no, digest, joined in cursor.fetchall():
            cells = cells_of(joined)
            typed = row_type(cells, width, columns)
            if typed.errors:
                failed += 1
            else:
                passed.append(typed.user_id)
            lines.append(copy_line(imp.pk, row_no, cells, typed, digest))
        with cursor.cursor.copy(_COPY_SQL) as copy:
            copy.write("".join(lines))
    return failed, passed


def _stage_commit(imp: Import, chunk: list[str], count: int, last: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        _staging_checkpoint(imp)
        if chunk:
            with cursor.cursor.copy(_COPY_SQL) as copy:
                for text in chunk:
                    copy.write(text)
        imp.staged_through = last
        imp.rows_read += count
        imp.heartbeat_at = timezone.now()
        Import.objects.filter(pk=imp.pk).update(
            staged_through=imp.staged_through,
            rows_read=imp.rows_read,
            heartbeat_at=imp.heartbeat_at,
        )


def _classify(imp: Import, mapping: list[str], cursor) -> None:
    plan = MergePlan.build(imp.headers, mapping, imp.options.get("fill_empty", []))
    cursor.execute(
        plan.classify_sql(),
        {"imp": imp.pk, "lo": 0, "hi": imp.staged_through, "fill_custom": plan.fill_custom},
    )
    imp.created, imp.updated, imp.unchanged = cursor.fetchone()


# --- merge -----------------------------------------------------------------------------------


def _merge(imp: Import, progress: Progress | None) -> None:
    """Merge every chunk not merged yet. A big import merges on IMPORTS_MERGE_CONNECTIONS
    connections at once: the merge is PostgreSQL's CPU while Python waits, and two chunks never
    share a customer (a user ID repeated in the file was settled when staging ended)."""
    plan = MergePlan.build(imp.headers, imp.mapping, imp.options.get("fill_empty", []))
    size = settings.IMPORTS_CHUNK_ROWS
    done = set(MergedChunk.objects.filter(import_id=imp.pk).values_list("lo", flat=True))
    todo = [
        (lo, min(lo + size, imp.staged_through))
        for lo in range(0, imp.staged_through, size)
        if lo not in done
    ]
    big = imp.total_rows >= settings.IMPORTS_PARALLEL_FROM_ROWS
    workers = min(settings.IMPORTS_MERGE_CONNECTIONS, len(todo)) if big else 1
    if workers <= 1:
        for lo, hi in todo:
            _merge_chunk_retrying(imp, plan, lo, hi)
            if progress:
                progress(imp)
    else:
        _merge_parallel(imp, plan, todo, workers, progress)
    if imp.created >= ANALYZE_AFTER:
        # Statistics that predate a big import make the next one plan for an empty table.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE customers_customer")


def _merge_parallel(
    imp: Import,
    plan: MergePlan,
    todo: list[tuple[int, int]],
    workers: int,
    progress: Progress | None,
) -> None:
    queue = iter(todo)
    lock = threading.Lock()
    failed: list[BaseException] = []

    def work() -> None:
        try:
            while not failed:
                with lock:
                    lo_hi = next(queue, None)
                if lo_hi is None:
                    return
                _merge_chunk_retrying(imp, plan, *lo_hi, shared=lock)
                if progress:
                    with lock:
                        progress(imp)
        except BaseException as exc:  # handed to the caller below
            failed.append(exc)
        finally:
            connection.close()  # each thread had its own

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]


def _merge_chunk_retrying(
    imp: Import, plan: MergePlan, lo: int, hi: int, shared: threading.Lock | None = None
) -> None:
    for attempt in range(5):
        try:
            _merge_chunk(imp, plan, lo, hi, shared)
            return
        except pg_errors.DeadlockDetected:
            # Two imports (or an import and an API batch) touching the same customers; the
            # chunk rolled back whole, so it simply runs again.
            log.warning("import %s: deadlock on rows %s–%s, retrying", imp.pk, lo, hi)
            if attempt == 4:
                raise


def _merge_chunk(
    imp: Import, plan: MergePlan, lo: int, hi: int, shared: threading.Lock | None = None
) -> None:
    params = {
        "imp": imp.pk,
        "lo": lo,
        "hi": hi,
        "fill_custom": plan.fill_custom,
        "member": imp.created_by_id,
        "token": imp.token_id,
        "tags": list(imp.tag_ids),
    }
    created = updated = tagged = unchanged = failed = marked = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # The chunk's marker first: a second runner of the same chunk waits here for the
        # first to commit, then finds it merged.
        cursor.execute(
            "INSERT INTO imports_mergedchunk (import_id, lo) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING RETURNING lo",
            [imp.pk, lo],
        )
        if cursor.fetchone() is None:
            raise Stop
        if Import.objects.filter(pk=imp.pk, cancel_requested=True).exists():
            raise Stop
        cursor.execute("SET LOCAL work_mem = %s", [settings.SEGMENTS_WORK_MEM])
        sql, only = plan.apply_sql(), None
        # A user ID another writer created after our look-up loses our INSERT (ON CONFLICT DO
        # NOTHING); the next round updates it instead.
        for _ in range(3):
            got = _apply_optimistic(cursor, plan, params) if only is None else None
            if got is None:
                cursor.execute(sql, {**params, "only": only})
                got = cursor.fetchone()
            new, changed, tags, queued, existing, missed, fresh, stale = got
            created += new
            updated += changed
            tagged += tags
            marked += queued
            unchanged += existing - changed + fresh
            if stale:  # their customers changed since the file was read: check them now
                more_failed, retyped = _retype(imp, imp.mapping, custom_field_specs(), stale)
                failed += more_failed
                missed = [*missed, *retyped]
            if not missed:
                break
            sql, only = plan.apply_sql(only=True), missed
        else:
            raise RuntimeError(f"Rows {lo}–{hi}: user IDs kept colliding with other writers.")
        if marked:
            pending_marked()
        # Last, so the import's row is locked only for the commit: parallel chunks queue here.
        cursor.execute(
            "UPDATE imports_import SET applied_through = applied_through + %s,"
            " created = created + %s, updated = updated + %s, unchanged = unchanged + %s,"
            " failed = failed + %s, tagged = tagged + %s, heartbeat_at = now() WHERE id = %s"
            " RETURNING applied_through, created, updated, unchanged, failed, tagged,"
            " heartbeat_at",
            [hi - lo, created, updated, unchanged, failed, tagged, imp.pk],
        )
        row = cursor.fetchone()
    with shared or nullcontext():
        (
            imp.applied_through,
            imp.created,
            imp.updated,
            imp.unchanged,
            imp.failed,
            imp.tagged,
            imp.heartbeat_at,
        ) = row


def _apply_optimistic(cursor, plan: MergePlan, params: dict) -> tuple | None:
    """The chunk's merge without conflict checks, in a savepoint; None when another writer
    created one of its new user IDs meanwhile (the caller then merges with the checks)."""
    try:
        with transaction.atomic():
            cursor.execute(plan.apply_sql(optimistic=True), {**params, "only": None})
            return cursor.fetchone()
    except IntegrityError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != pg_errors.UniqueViolation.sqlstate:
            raise
        return None


# --- finish ----------------------------------------------------------------------------------


def import_finish(imp: Import, status: str, message: str = "") -> None:
    from imports.services import imports_start_next

    with transaction.atomic():
        row = Import.objects.select_for_update().get(pk=imp.pk)
        if row.finished:
            return
        if status == ImportStatus.COMPLETED and row.failed:
            status = ImportStatus.COMPLETED_WITH_ERRORS
        row.status = status
        row.phase = ImportPhase.DONE
        row.message = message or row.message
        row.finished_at = timezone.now()
        row.save()
        if status in (ImportStatus.FAILED, ImportStatus.CANCELLED):
            created_tags_prune(row)
        if not row.dry_run:
            activity_record(
                actor_for(row),
                f"import.{status}",
                target_type="import",
                target_id=row.pk,
                target_label=row.file_name,
                changes={
                    "created": row.created,
                    "updated": row.updated,
                    "unchanged": row.unchanged,
                    "failed": row.failed,
                },
                count=row.processed,
            )
        imports_start_next()
        if not row.dry_run:  # a dry run's file waits for the import it previews
            transaction.on_commit(lambda: file_remove(row))
        _staged_rows_release(row)  # last: dropping a partition locks the staging table
    imp.refresh_from_db()


def _staged_rows_release(imp: Import) -> None:
    """Error rows (and rows a later one superseded) stay for the report; the rest served their
    purpose. Without any to keep, the import's partition goes whole."""
    with connection.cursor() as cursor:
        # One import at a time from here to its commit. Each reads the staging table, then
        # drops its partition, which wants the table's ACCESS EXCLUSIVE lock: two imports
        # finishing together each held the weaker lock the other's drop waited for (a
        # deadlock, seen when two imports of overlapping user IDs finished at once).
        cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [RELEASE_LOCK])
    staged = StagedRow.objects.filter(import_id=imp.pk)
    if staged.filter(Q(errors__isnull=False) | Q(superseded_by__isnull=False)).exists():
        staged.filter(errors__isnull=True, superseded_by__isnull=True).delete()
        staging_keep(imp.pk)
    else:
        staging_drop(imp.pk)


def file_remove(imp: Import) -> None:
    if imp.file_path:
        import_file(imp).unlink(missing_ok=True)


def import_error(import_id: int, exc: Exception) -> None:
    """An unexpected error: the job is retried from its checkpoint; after
    IMPORTS_MAX_ATTEMPTS the import fails with the reason."""
    with transaction.atomic():
        imp = Import.objects.select_for_update().filter(pk=import_id).first()
        if imp is None or imp.status != ImportStatus.RUNNING:
            return
        imp.attempts += 1
        imp.save(update_fields=["attempts"])
    if imp.attempts >= settings.IMPORTS_MAX_ATTEMPTS:
        import_finish(imp, ImportStatus.FAILED, f"The import stopped on an error: {exc}")


def created_tags_prune(imp: Import) -> None:
    """Delete the tags this import created that no customer carries (any more)."""
    from tags.models import Tag
    from tags.services import tags_remove

    unused = Tag.objects.filter(pk__in=imp.options.get("created_tag_ids", [])).exclude(
        customer_tags__isnull=False
    )
    tags_remove(list(unused.values_list("pk", flat=True)))
