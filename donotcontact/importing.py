"""Importing a file into the Do Not Contact list: upload → start row and columns → analysis →
accounts → import. Services (``entry_import_*``) for the wizard, and the two long steps the
workers run (``import_analyze``, ``import_run``).

Analysis reads the file once (donotcontact/filereader.py), cleans every row with
``contacts.entry_clean`` (the rules of every other entry point) and COPYs the valid rows,
normalised, into the unlogged staging table ``donotcontact_entryimportrow``. Duplicates within
the file and entries already on the list are counted in SQL over the staged rows. A re-run
(a killed worker) starts the analysis over: it deletes the import's staged rows first.

The import adds the staged rows to the list in chunks of row numbers, each one transaction:
``INSERT ... SELECT ... CROSS JOIN unnest(accounts) ON CONFLICT DO NOTHING``, with the
customers holding the added contacts queued for segment re-evaluation and the checkpoint
(``applied_through``) moved in that same transaction. A re-run resumes after the checkpoint;
even a chunk applied twice adds nothing twice, because the unique index decides.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.timezone import now

from activity.services import Actor, activity_record
from donotcontact.contacts import ContactInvalid, account_clean, entry_clean
from donotcontact.filereader import (
    DataFile,
    FileRejected,
    file_prepare,
    rows_iter,
    rows_preview,
    upload_store,
)
from donotcontact.models import EntryImport, EntryImportRow, ImportStatus, Source
from donotcontact.suppression import customers_mark_for_added_contacts
from tags.models import Source as ActivitySource

log = logging.getLogger(__name__)
TARGETS = ("contact", "sender", "channel")
PROBLEMS_KEPT = 100
ANALYZE_BATCH = 50_000  # rows COPYed per transaction (and per progress update)
MAX_ATTEMPTS = 3
ALREADY_ANALYSING = (
    "This file is already being analysed (or imported); this page was out of date. "
    "Wait for the analysis to finish."
)
# Header words that name a column; a first row made of them is a header row.
_HEADER_WORDS = {
    "contact": (
        "contact",
        "contact information",
        "contact info",
        "email",
        "e-mail",
        "email address",
        "e-mail address",
        "phone",
        "phone number",
        "mobile",
        "msisdn",
        "destination",
    ),
    "sender": ("sender", "from", "sender id"),
    "channel": ("channel",),
}
# Bytes per row, to estimate the row count (for the progress bar) from the file size.
_BYTES_PER_ROW = {"txt": 24, "csv": 30, "xlsx": 12}


class ImportInvalid(Exception):
    """The wizard can't go on with these choices; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- 1. upload -------------------------------------------------------------------------------


def entry_import_upload(*, chunks: Iterable[bytes], file_name: str, actor: Actor) -> EntryImport:
    """Store and check the upload; FileRejected (nothing kept) when it can't be imported."""
    directory = Path(settings.DNC_IMPORTS_DIR) / uuid4().hex
    path = directory / "upload"
    try:
        size = upload_store(chunks, path)
        data = file_prepare(path, file_name, directory)
        preview = rows_preview(data, 1, 5)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    if not preview:
        shutil.rmtree(directory, ignore_errors=True)
        raise FileRejected("The file has no rows with values.")
    start_row, mapping = _guess(preview)
    data_size = data.path.stat().st_size
    return EntryImport.objects.create(
        file_name=file_name[:255],
        file_path=str(path),
        file_size=size,
        file_info=data.as_options(),
        start_row=start_row,
        mapping=mapping,
        rows_estimate=max(1, data_size // _BYTES_PER_ROW[data.kind]),
        created_by=actor.member,
    )


def _guess(preview: list[tuple[int, list[str]]]) -> tuple[int, dict[str, int | None]]:
    """A first suggestion for the start row and the columns, from a header row when the file
    has one, else the first column holding a contact."""
    mapping: dict[str, int | None] = dict.fromkeys(TARGETS)
    number, first = preview[0]
    for index, cell in enumerate(first):
        word = cell.strip().lower()
        for target, words in _HEADER_WORDS.items():
            if word in words and mapping[target] is None:
                mapping[target] = index
    # Any column named after a target makes the first row a header row (the reference's
    # sample names its contact column "Contact information").
    header = any(index is not None for index in mapping.values())
    start = number + 1 if header else 1
    if mapping["contact"] is not None:
        return start, mapping
    for _, cells in preview[1:] if header else preview:
        for index, cell in enumerate(cells):
            if index in mapping.values():
                continue
            try:
                entry_clean(cell)
            except ContactInvalid:
                continue
            mapping["contact"] = index
            return start, mapping
    mapping["contact"] = 0
    return start, mapping


def import_data(imp: EntryImport) -> DataFile:
    return DataFile.from_options(imp.file_info)


def import_preview(imp: EntryImport, start_row: int | None = None, limit: int = 10) -> dict:
    """The first rows from the start row, and how many columns they have."""
    start = imp.start_row if start_row is None else start_row
    try:
        rows = rows_preview(import_data(imp), start, limit)
    except (FileRejected, OSError):
        rows = []
    columns = max((len(cells) for _, cells in rows), default=1)
    return {"rows": [(n, cells + [""] * (columns - len(cells))) for n, cells in rows],
            "columns": max(columns, 1)}  # fmt: skip


# --- 2. start row and columns ----------------------------------------------------------------


def entry_import_configure(
    *, imp: EntryImport, start_row: int, mapping: dict[str, int | None], columns: int
) -> None:
    if imp.status not in (ImportStatus.DRAFT, ImportStatus.ANALYZED):
        raise ImportInvalid("This import has already started.")
    if start_row < 1:
        raise ImportInvalid("The first row to import is row 1 or later.")
    if mapping.get("contact") is None:
        raise ImportInvalid("Choose the column that holds the contacts (e-mail or phone).")
    used = [v for v in mapping.values() if v is not None]
    if len(used) != len(set(used)):
        raise ImportInvalid("Each column can be mapped to one field only.")
    if any(not 0 <= v < columns for v in used):
        raise ImportInvalid("A mapped column is not in the file.")
    # Conditional: a second (double-submitted) request must not reset an analysis under way.
    chosen = {t: mapping.get(t) for t in TARGETS}
    updated = EntryImport.objects.filter(
        pk=imp.pk, status__in=(ImportStatus.DRAFT, ImportStatus.ANALYZED)
    ).update(start_row=start_row, mapping=chosen, status=ImportStatus.DRAFT)
    if not updated:
        raise ImportInvalid(ALREADY_ANALYSING)
    imp.start_row, imp.mapping, imp.status = start_row, chosen, ImportStatus.DRAFT


# --- 3. analysis -----------------------------------------------------------------------------


def entry_import_analyze_start(*, imp: EntryImport) -> None:
    """Small files are analysed now; larger ones by a worker (the page polls)."""
    from donotcontact import tasks
    from workbench.jobs import enqueue_on_commit

    if imp.status not in (ImportStatus.DRAFT, ImportStatus.ANALYZED):
        raise ImportInvalid("This import has already started.")
    # Conditional: of two requests at once (a double submit) only one starts an analysis.
    # analyzed_at is the last activity the sweep goes by: set as the analysis starts, and
    # again as it ends.
    started = EntryImport.objects.filter(
        pk=imp.pk, status__in=(ImportStatus.DRAFT, ImportStatus.ANALYZED)
    ).update(status=ImportStatus.ANALYZING, rows_read=0, attempts=0, message="", analyzed_at=now())
    if not started:
        raise ImportInvalid(ALREADY_ANALYSING)
    imp.status = ImportStatus.ANALYZING
    if imp.file_size <= settings.DNC_IMPORT_INLINE_BYTES:
        try:
            import_analyze(imp.pk)
        except Exception:
            # Inline there is no worker to retry or record it: without this the import
            # would stay ANALYZING for ever.
            log.exception("dnc import %s: analysis failed", imp.pk)
            _fail(imp.pk, "The analysis failed unexpectedly. Upload the file again.")
        imp.refresh_from_db()
    else:
        enqueue_on_commit(tasks.analyze_entry_import, imp.pk)


@dataclass
class _Counts:
    total: int = 0
    valid: int = 0
    invalid: int = 0
    last_row: int = 0


def _cell(cells: list[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index]


def import_analyze(import_id: int) -> EntryImport | None:
    """Read, clean and stage every row; count. Safe to run again: it starts over."""
    imp = _claim(import_id, ImportStatus.ANALYZING)
    if imp is None:
        return None
    EntryImportRow.objects.filter(import_id=imp.pk).delete()
    contact_at = imp.mapping["contact"]
    sender_at, channel_at = imp.mapping.get("sender"), imp.mapping.get("channel")
    counts, problems = _Counts(), []
    batch: list[str] = []  # COPY text lines
    prefix = f"{imp.pk}\t"
    try:
        with closing(rows_iter(import_data(imp))) as rows:
            for number, cells in rows:
                if number < imp.start_row or not any(c.strip() for c in cells):
                    continue
                counts.total += 1
                contact = _cell(cells, contact_at)
                try:
                    entry = entry_clean(contact, _cell(cells, channel_at), _cell(cells, sender_at))
                except ContactInvalid as exc:
                    counts.invalid += 1
                    if len(problems) < PROBLEMS_KEPT:
                        problems.append([number, contact[:200], str(exc)])
                    continue
                counts.valid += 1
                counts.last_row = number
                # COPY's text format, built here: write_row per row costs more than the
                # cleaning. Cleaned values hold no control characters (contacts.py refuses
                # them), but a backslash must be doubled; tabs and line ends are escaped too,
                # so a value that slips through can never shift a column.
                contact, sender = _copy_text(entry.contact), _copy_text(entry.sender)
                batch.append(f"{prefix}{number}\t{contact}\t{entry.channel}\t{sender}\n")
                if len(batch) >= ANALYZE_BATCH:
                    _stage(imp.pk, batch, counts.total)
                    batch = []
    except FileRejected as exc:
        _fail(imp.pk, exc.message)
        return None
    _stage(imp.pk, batch, counts.total)
    with connection.cursor() as cursor:
        # One pass: the distinct entries of the file, and those already on the list (for
        # every account), probed through the unique index that leads with the contact.
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM donotcontact_entry e"
            "  WHERE e.contact = s.contact AND e.channel = s.channel AND e.sender = s.sender"
            "  AND e.account = ''))"
            " FROM (SELECT DISTINCT contact, channel, sender FROM donotcontact_entryimportrow"
            "  WHERE import_id = %s) s",
            [imp.pk],
        )
        unique, present = cursor.fetchone()
    EntryImport.objects.filter(pk=imp.pk, status=ImportStatus.ANALYZING).update(
        status=ImportStatus.ANALYZED,
        rows_read=counts.total,
        total_rows=counts.total,
        valid=counts.valid,
        invalid=counts.invalid,
        duplicates=counts.valid - unique,
        unique_valid=unique,
        already_present=present,
        problems=problems,
        last_row=counts.last_row,
        applied_through=imp.start_row - 1,
        analyzed_at=now(),
    )
    imp.refresh_from_db()
    return imp


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _stage(import_id: int, batch: list[str], read: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        if batch:
            with cursor.copy(
                "COPY donotcontact_entryimportrow (import_id, row_no, contact, channel, sender)"
                " FROM STDIN"
            ) as copy:
                copy.write("".join(batch))
        EntryImport.objects.filter(pk=import_id).update(rows_read=read)


# --- 4. accounts, 5. import ------------------------------------------------------------------


def entry_import_start(*, imp: EntryImport, accounts: Iterable[str], actor: Actor) -> None:
    from donotcontact import tasks
    from workbench.jobs import enqueue_on_commit

    if imp.status != ImportStatus.ANALYZED:
        raise ImportInvalid("Analyze the file before importing it.")
    if imp.valid == 0:
        raise ImportInvalid("The file has no valid contacts to import.")
    chosen: list[str] = []
    for value in accounts:
        try:
            account = account_clean(value)
        except ContactInvalid as exc:
            raise ImportInvalid(str(exc)) from None
        if account not in chosen:
            chosen.append(account)
    if not chosen:
        raise ImportInvalid("Choose at least one account, or All accounts.")
    with transaction.atomic():
        updated = EntryImport.objects.filter(pk=imp.pk, status=ImportStatus.ANALYZED).update(
            status=ImportStatus.QUEUED, accounts=chosen, attempts=0
        )
        if not updated:
            raise ImportInvalid("This import has already started.")
        enqueue_on_commit(tasks.run_entry_import, imp.pk)
    imp.refresh_from_db()


def import_run(import_id: int) -> EntryImport | None:
    """Add the staged rows, chunk by chunk from the checkpoint; then finish."""
    imp = _claim(import_id, ImportStatus.QUEUED, ImportStatus.RUNNING)
    if imp is None:
        return None
    # The staging table is UNLOGGED: a PostgreSQL crash empties it. Applying what is left
    # would "complete" having added nothing and report every contact as already present.
    # Staged rows stay until the import finishes, so every valid row must still be there.
    if EntryImportRow.objects.filter(import_id=imp.pk).count() != imp.valid:
        _fail(
            imp.pk,
            "The analysed rows of this import were lost (the database restarted), so it was "
            f"stopped; {imp.added:,} entries had been added. Upload the file again to import "
            "the rest; entries already on the list are skipped.",
        )
        return None
    chunk = int(settings.DNC_IMPORT_CHUNK_ROWS)
    member_id = imp.created_by_id
    # Read once per run: a segment created meanwhile is built from the list as it then is.
    mark = _segments_read_the_list()
    while True:
        with transaction.atomic():
            # The row lock serialises two workers on one import: each chunk starts from the
            # checkpoint the previous transaction committed.
            imp = EntryImport.objects.select_for_update().get(pk=import_id)
            if imp.status != ImportStatus.RUNNING:
                return imp
            lo = imp.applied_through
            if lo >= imp.last_row:
                break
            hi = min(lo + chunk, imp.last_row)
            added = _apply_chunk(imp, lo, hi, member_id, mark=mark)
            imp.applied_through = hi
            imp.added += added
            imp.save(update_fields=["applied_through", "added"])
    return _finish(imp)


def _segments_read_the_list() -> bool:
    from segments.fields import ChangeKind

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM segments_segment WHERE change_kinds & %s <> 0)",
            [ChangeKind.DO_NOT_CONTACT],
        )
        return bool(cursor.fetchone()[0])


_INSERT = (
    "INSERT INTO donotcontact_entry"
    " (contact, channel, sender, account, source, reason, note, added_at, added_by_id)"
    " SELECT r.contact, r.channel, r.sender, a.account, %s, '', '', now(), %s"
    " FROM donotcontact_entryimportrow r CROSS JOIN unnest(%s::text[]) AS a(account)"
    " WHERE r.import_id = %s AND r.row_no > %s AND r.row_no <= %s"
    # One lock order for every writer of the unique index: no deadlocks with concurrent
    # imports or adds (donotcontact/services.py sorts the same way).
    " ORDER BY 1, 2, 3, 4"
    " ON CONFLICT (contact, channel, sender, account) DO NOTHING"
)


def _apply_chunk(
    imp: EntryImport, lo: int, hi: int, member_id: int | None, *, mark: bool = True
) -> int:
    """Add the staged rows lo+1 … hi for every chosen account; the number added. With
    ``mark``, the customers holding the added contacts are queued for segment evaluation
    (skipped when no segment reads the list: RETURNING a million contacts costs seconds)."""
    params = [Source.IMPORT, member_id, list(imp.accounts), imp.pk, lo, hi]
    with connection.cursor() as cursor:
        if not mark:
            cursor.execute(_INSERT, params)
            return cursor.rowcount
        # Created once per connection; emptied per chunk (and on commit) so a chunk's list
        # never carries another chunk's contacts.
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS dnc_added_contacts (contact text)"
            " ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE dnc_added_contacts")
        cursor.execute(
            f"WITH added AS ({_INSERT} RETURNING contact)"  # noqa: S608 (a constant)
            " INSERT INTO dnc_added_contacts SELECT contact FROM added",
            params,
        )
        added = cursor.rowcount
        if added:
            customers_mark_for_added_contacts()
    return added


def _finish(imp: EntryImport) -> EntryImport:
    from donotcontact.services import CHOICE_CACHE_KEYS
    from notifications.services import notification_send

    present = max(imp.unique_valid * len(imp.accounts) - imp.added, 0)
    with transaction.atomic():
        done = EntryImport.objects.filter(pk=imp.pk, status=ImportStatus.RUNNING).update(
            status=ImportStatus.COMPLETED, present=present, finished_at=now()
        )
        if not done:
            return imp
        imp.refresh_from_db()
        EntryImportRow.objects.filter(import_id=imp.pk).delete()
        member = imp.created_by
        activity_record(
            Actor(ActivitySource.IMPORT, member=member),
            "do_not_contact.imported",
            target_type="dnc_import",
            target_id=imp.pk,
            target_label=imp.file_name,
            changes={
                "added": imp.added,
                "already_present": present,
                "invalid": imp.invalid,
                "accounts": imp.accounts_label,
            },
            count=imp.added,
        )
        if member is not None:
            notification_send(
                member=member,
                title=f"Do Not Contact import finished: {imp.file_name}",
                body=f"{imp.added:,} added, {present:,} already on the list, "
                f"{imp.invalid:,} invalid.",
                url=reverse("dnc-import-detail", args=[imp.pk]),
            )
        transaction.on_commit(lambda: _files_remove(imp))
    cache.delete_many(CHOICE_CACHE_KEYS)
    return imp


# --- claiming, failing -----------------------------------------------------------------------


def _claim(import_id: int, *statuses: str) -> EntryImport | None:
    """The import, marked as being worked on (RUNNING for an import), when it is in one of
    ``statuses``; None when there is nothing to do (finished, or another step). An import
    tried MAX_ATTEMPTS times fails with the reason instead of looping."""
    with transaction.atomic():
        imp = EntryImport.objects.select_for_update().filter(pk=import_id).first()
        if imp is None or imp.status not in statuses:
            return None
        imp.attempts += 1
        if imp.attempts > MAX_ATTEMPTS:
            _fail(imp.pk, "The import stopped several times and was given up. Try again.")
            return None
        if imp.status == ImportStatus.QUEUED:
            imp.status = ImportStatus.RUNNING
            imp.started_at = now()
        imp.save(update_fields=["attempts", "status", "started_at"])
    return imp


def _fail(import_id: int, message: str, *, statuses: tuple[str, ...] | None = None) -> bool:
    """Mark the import failed (unless finished, or not in ``statuses`` when given: checked
    under the row lock, so a caller that read the status earlier can't fail an import that
    moved on meanwhile). True when it did."""
    from notifications.services import notification_send

    with transaction.atomic():
        imp = EntryImport.objects.select_for_update().filter(pk=import_id).first()
        if imp is None or imp.finished:
            return False
        if statuses is not None and imp.status not in statuses:
            return False
        was_importing = imp.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)
        imp.status = ImportStatus.FAILED
        imp.message = message
        imp.finished_at = now()
        imp.save(update_fields=["status", "message", "finished_at"])
        EntryImportRow.objects.filter(import_id=imp.pk).delete()
        if was_importing and imp.created_by is not None:
            notification_send(
                member=imp.created_by,
                title=f"Do Not Contact import failed: {imp.file_name}",
                body=message,
                url=reverse("dnc-import-detail", args=[imp.pk]),
            )
        transaction.on_commit(lambda: _files_remove(imp))
    return True


def import_error(import_id: int, exc: BaseException) -> None:
    """A worker's last retry failed: record why."""
    _fail(import_id, f"The import failed unexpectedly ({type(exc).__name__}).")


def _files_remove(imp: EntryImport) -> None:
    if imp.file_path:
        shutil.rmtree(Path(imp.file_path).parent, ignore_errors=True)


def entry_imports_sweep() -> int:
    """Imports left in the wizard for longer than DNC_IMPORT_ABANDONED_HOURS since their last
    activity (the analysis, else the upload): their files and staged rows go (a 15 MB upload
    and a million staged rows each), the row stays as failed so the member sees what happened.
    An analysis running for longer than its worker could (every retry at the actor's time
    limit) died with its worker and is failed too. Returns how many."""
    from donotcontact.tasks import ANALYZE_MAX_SECONDS

    cutoff = now() - timedelta(hours=int(settings.DNC_IMPORT_ABANDONED_HOURS))
    waiting = (ImportStatus.DRAFT, ImportStatus.ANALYZED)
    last_activity = Coalesce("analyzed_at", "created_at")
    stale = (
        EntryImport.objects.annotate(last_activity=last_activity)
        .filter(status__in=waiting, last_activity__lt=cutoff)
        .values_list("pk", flat=True)
    )
    stuck = (
        EntryImport.objects.annotate(last_activity=last_activity)
        .filter(
            status=ImportStatus.ANALYZING,
            last_activity__lt=now() - timedelta(seconds=ANALYZE_MAX_SECONDS),
        )
        .values_list("pk", flat=True)
    )
    count = 0
    for pk in list(stale[:500]):
        # Status-guarded under the row lock: a member may start the import meanwhile.
        count += _fail(
            pk,
            "Not imported: the import was left unfinished, so its file was removed.",
            statuses=waiting,
        )
    for pk in list(stuck[:500]):
        count += _fail(
            pk,
            "The analysis stopped and did not finish. Upload the file again.",
            statuses=(ImportStatus.ANALYZING,),
        )
    return count
