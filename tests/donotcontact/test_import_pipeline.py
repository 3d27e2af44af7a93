"""The Do Not Contact import pipeline: analysis counts (valid, invalid with reasons,
duplicates, already present), the import (accounts, re-imports, checkpoints), the customers it
suppresses and queues, and what it records (activity, notification)."""

from __future__ import annotations

import pytest
from django.db import connection

from activity.models import Activity
from activity.services import Actor
from donotcontact import importing
from donotcontact import tasks as dnc_tasks
from donotcontact.models import Entry, EntryImport, EntryImportRow, ImportStatus, Source
from donotcontact.suppression import suppressed_sql
from notifications.models import Notification
from segments.fields import ChangeKind
from segments.models import Segment
from tests.donotcontact.files.builders import xlsx_bytes, zip_bytes
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def dnc_dir(settings, tmp_path):
    settings.DNC_IMPORTS_DIR = tmp_path / "dnc"
    return settings.DNC_IMPORTS_DIR


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    """The import actors send nothing; the tests run the steps as the worker would."""
    messages = []
    for actor in (dnc_tasks.analyze_entry_import, dnc_tasks.run_entry_import):

        def send(*args, _name=actor.actor_name, **kwargs):
            messages.append((_name, args))

        monkeypatch.setattr(actor, "send", send)
    return messages


def upload(raw: bytes | str, name: str = "list.csv", member=None) -> EntryImport:
    data = raw.encode() if isinstance(raw, str) else raw
    chunks = (data[i : i + 1000] for i in range(0, len(data), 1000))
    actor = Actor("ui", member=member) if member else Actor.system("tests")
    return importing.entry_import_upload(chunks=chunks, file_name=name, actor=actor)


def analyze(imp: EntryImport, start_row: int | None = None, **mapping) -> EntryImport:
    if start_row is not None or mapping:
        columns = importing.import_preview(imp, start_row)["columns"]
        full = {"contact": 0, "sender": None, "channel": None, **mapping}
        importing.entry_import_configure(
            imp=imp, start_row=start_row or imp.start_row, mapping=full, columns=columns
        )
    importing.entry_import_analyze_start(imp=imp)
    if imp.status == ImportStatus.ANALYZING:  # a big file: the worker's part
        importing.import_analyze(imp.pk)
    imp.refresh_from_db()
    return imp


def run(imp: EntryImport, accounts=("",)) -> EntryImport:
    importing.entry_import_start(imp=imp, accounts=accounts, actor=Actor.system("tests"))
    assert importing.import_run(imp.pk) is not None
    imp.refresh_from_db()
    return imp


def entries() -> set[tuple[str, str, str, str]]:
    return set(Entry.objects.values_list("contact", "channel", "sender", "account"))


CSV = """Email,Sender,Channel
ann@example.com,Shop,
BOB@Example.com,,email
not-an-address,,
+44 1234 567890,Shop,sms
ann@example.com,Shop,
,,
carol@example.com,,sms
"""


@pytest.mark.parametrize(
    ("text", "start_row", "mapping"),
    [
        # The reference's sample header: the contact column is "Contact information".
        (
            "Contact information,Sender,Channel\n1234567890,9876543210,Viber\n",
            2,
            {"contact": 0, "sender": 1, "channel": 2},
        ),
        # A header naming only the sender: the contact column is found in the data rows,
        # never in a column already mapped.
        (
            "Sender,Who\n+441234567890,ann@example.com\n",
            2,
            {"contact": 1, "sender": 0, "channel": None},
        ),
        # No header at all.
        ("ann@example.com\nbob@example.com\n", 1, {"contact": 0, "sender": None, "channel": None}),
    ],
)
def test_start_row_and_columns_are_guessed(text, start_row, mapping):
    imp = upload(text)
    assert (imp.start_row, imp.mapping) == (start_row, mapping)


def test_analysis_counts_and_reasons():
    imp = upload(CSV)
    # The header row was recognised: start at row 2, columns mapped from the headers.
    assert imp.start_row == 2
    assert imp.mapping == {"contact": 0, "sender": 1, "channel": 2}
    imp = analyze(imp)
    assert imp.status == ImportStatus.ANALYZED
    assert (imp.total_rows, imp.valid, imp.invalid, imp.duplicates) == (6, 4, 2, 1)
    assert imp.unique_valid == 3
    assert [row for row, _, _ in imp.problems] == [4, 8]
    assert "neither an e-mail address nor a phone number" in imp.problems[0][2]
    assert "can only be added for Email" in imp.problems[1][2]
    staged = set(
        EntryImportRow.objects.filter(import_id=imp.pk).values_list("contact", "channel", "sender")
    )
    assert staged == {
        ("ann@example.com", "email", "Shop"),
        ("bob@example.com", "email", ""),
        ("+441234567890", "sms", "Shop"),
    }
    assert Entry.objects.count() == 0  # analysis adds nothing


def test_import_adds_the_valid_rows(marketer):
    imp = run(analyze(upload(CSV, member=marketer)))
    assert imp.status == ImportStatus.COMPLETED
    assert (imp.added, imp.present) == (3, 0)
    assert entries() == {
        ("ann@example.com", "email", "Shop", ""),
        ("bob@example.com", "email", "", ""),
        ("+441234567890", "sms", "Shop", ""),
    }
    assert set(Entry.objects.values_list("source", flat=True)) == {Source.IMPORT}
    assert set(Entry.objects.values_list("added_by", flat=True)) == {marketer.pk}
    assert not EntryImportRow.objects.filter(import_id=imp.pk).exists()  # staging cleared
    log = Activity.objects.get(action="do_not_contact.imported")
    assert (log.count, log.changes["added"], log.target_label) == (3, 3, "list.csv")
    note = Notification.objects.get(member=marketer)
    assert "list.csv" in note.title and "3 added" in note.body
    assert note.url == f"/do-not-contact/import/{imp.pk}/"


def test_importing_the_same_file_twice_adds_nothing_the_second_time():
    first = run(analyze(upload(CSV)))
    before = entries()
    second = analyze(upload(CSV))
    assert second.already_present == 3
    second = run(second)
    assert (second.added, second.present) == (0, 3)
    assert entries() == before
    assert first.added == 3


def test_several_accounts_add_one_entry_per_account():
    imp = run(analyze(upload("a@example.com\nb@example.com\n", "l.txt")), ["", "EU", "US"])
    assert imp.added == 6
    assert {a for *_, a in entries()} == {"", "EU", "US"}
    again = run(analyze(upload("a@example.com\nc@example.com\n", "l.txt")), ["EU"])
    assert (again.added, again.present) == (1, 1)


def test_a_bad_account_is_refused():
    imp = analyze(upload("a@example.com\n", "l.txt"))
    with pytest.raises(importing.ImportInvalid, match="longer than 100"):
        importing.entry_import_start(imp=imp, accounts=["x" * 101], actor=Actor.system("t"))
    with pytest.raises(importing.ImportInvalid, match="at least one account"):
        importing.entry_import_start(imp=imp, accounts=[], actor=Actor.system("t"))


def test_start_row_and_mapping_chosen():
    raw = "exported by CRM\nname;phone;who\nAnn;+351 912 345 678;Clinic\nBob;bad;Clinic\n"
    imp = upload(raw)
    imp = analyze(imp, start_row=3, contact=1, sender=2)
    assert (imp.valid, imp.invalid) == (1, 1)
    run(imp)
    assert entries() == {("+351912345678", "", "Clinic", "")}


def test_values_with_backslashes_and_tabs_are_staged_intact():
    raw = "contact\tsender\na@example.com\tC:\\Shop\\EU\nb@example.com\tA   B\n"
    imp = run(analyze(upload(raw)))
    assert imp.added == 2
    assert dict(Entry.objects.values_list("contact", "sender")) == {
        "a@example.com": "C:\\Shop\\EU",
        "b@example.com": "A B",
    }


def test_configure_refuses_a_missing_contact_column():
    imp = upload(CSV)
    with pytest.raises(importing.ImportInvalid, match="contacts"):
        importing.entry_import_configure(
            imp=imp, start_row=2, mapping={"contact": None, "sender": 1}, columns=3
        )


def test_xlsx_with_a_header_and_numbers():
    raw = xlsx_bytes([["Phone number"], [441234567890], ["+44 1234 567891"], ["nope"]])
    imp = analyze(upload(raw, "book.xlsx"))
    assert imp.start_row == 2
    assert (imp.valid, imp.invalid) == (2, 1)
    run(imp)
    assert {c for c, *_ in entries()} == {"+441234567890", "+441234567891"}


def test_zip_import_reports_ignored_files():
    raw = zip_bytes({"list.txt": "a@example.com\n", "__MACOSX/._list.txt": b"\x00"})
    imp = upload(raw, "list.zip")
    assert imp.file_info["ignored"] == ["__MACOSX/._list.txt"]
    assert run(analyze(imp)).added == 1


def test_big_files_are_analysed_by_a_worker(settings, sent, django_capture_on_commit_callbacks):
    settings.DNC_IMPORT_INLINE_BYTES = 10
    imp = upload("a@example.com\nb@example.com\n", "l.txt")
    with django_capture_on_commit_callbacks(execute=True):
        importing.entry_import_analyze_start(imp=imp)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.ANALYZING
    assert sent == [("analyze_entry_import", (imp.pk,))]
    dnc_tasks.analyze_entry_import(imp.pk)
    imp.refresh_from_db()
    assert (imp.status, imp.valid) == (ImportStatus.ANALYZED, 2)


def test_the_import_is_queued_for_a_worker(sent, django_capture_on_commit_callbacks):
    imp = analyze(upload("a@example.com\n", "l.txt"))
    with django_capture_on_commit_callbacks(execute=True):
        importing.entry_import_start(imp=imp, accounts=[""], actor=Actor.system("t"))
    imp.refresh_from_db()
    assert imp.status == ImportStatus.QUEUED
    assert sent == [("run_entry_import", (imp.pk,))]
    dnc_tasks.run_entry_import(imp.pk)
    dnc_tasks.run_entry_import(imp.pk)  # a second delivery finds nothing to do
    imp.refresh_from_db()
    assert (imp.status, imp.added) == (ImportStatus.COMPLETED, 1)


def test_a_killed_worker_resumes_from_the_checkpoint(settings, monkeypatch):
    settings.DNC_IMPORT_CHUNK_ROWS = 3
    lines = [f"person{i}@example.com" for i in range(10)]
    imp = analyze(upload("\n".join(lines) + "\n", "l.txt"))
    real = importing._apply_chunk
    calls = []

    def dies_on_the_third_chunk(imp, lo, hi, member_id, **kwargs):
        calls.append(lo)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real(imp, lo, hi, member_id, **kwargs)

    monkeypatch.setattr(importing, "_apply_chunk", dies_on_the_third_chunk)
    importing.entry_import_start(imp=imp, accounts=[""], actor=Actor.system("t"))
    with pytest.raises(RuntimeError):
        importing.import_run(imp.pk)
    imp.refresh_from_db()
    assert (imp.status, imp.applied_through, imp.added) == (ImportStatus.RUNNING, 6, 6)
    monkeypatch.setattr(importing, "_apply_chunk", real)
    importing.import_run(imp.pk)
    imp.refresh_from_db()
    assert (imp.status, imp.added, imp.present) == (ImportStatus.COMPLETED, 10, 0)
    assert Entry.objects.count() == 10


def test_a_chunk_applied_twice_adds_nothing_twice():
    """As if a worker died after its chunk committed but before the checkpoint moved: the
    unique index makes the repeat a no-op."""
    imp = analyze(upload("a@example.com\nb@example.com\nc@example.com\n", "l.txt"))
    importing.entry_import_start(imp=imp, accounts=[""], actor=Actor.system("t"))
    imp.refresh_from_db()
    assert importing._apply_chunk(imp, 0, 3, None, mark=False) == 3
    assert importing._apply_chunk(imp, 0, 3, None) == 0
    assert importing._apply_chunk(imp, 1, 3, None, mark=False) == 0
    assert Entry.objects.count() == 3


def test_an_import_that_keeps_failing_is_given_up():
    imp = analyze(upload("a@example.com\n", "l.txt"))
    importing.entry_import_start(imp=imp, accounts=[""], actor=Actor.system("t"))
    EntryImport.objects.filter(pk=imp.pk).update(attempts=importing.MAX_ATTEMPTS)
    assert importing.import_run(imp.pk) is None
    imp.refresh_from_db()
    assert imp.status == ImportStatus.FAILED and "given up" in imp.message


def test_worker_error_on_the_last_retry_fails_the_import(marketer, monkeypatch):
    imp = analyze(upload("a@example.com\n", "l.txt", member=marketer))
    importing.entry_import_start(imp=imp, accounts=[""], actor=Actor.system("t"))

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(importing, "_apply_chunk", boom)
    with pytest.raises(RuntimeError):
        dnc_tasks.run_entry_import(imp.pk)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.FAILED and "RuntimeError" in imp.message
    assert Notification.objects.get(member=marketer).title.startswith(
        "Do Not Contact import failed"
    )


def test_import_queues_customers_for_segments():
    customer = CustomerFactory(email="ann@example.com")
    CustomerFactory(email="other@example.com")
    phone = CustomerFactory(email="", phone="+441234567890")
    Segment.objects.create(name="dnc", rules={}, change_kinds=ChangeKind.DO_NOT_CONTACT)
    run(analyze(upload(CSV)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_id, kinds FROM segments_pendingcustomer ORDER BY 1")
        assert cursor.fetchall() == [
            (customer.pk, ChangeKind.DO_NOT_CONTACT),
            (phone.pk, ChangeKind.DO_NOT_CONTACT),
        ]


def _suppressed(email: str) -> bool:
    condition, params = suppressed_sql("email")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {condition} FROM customers_customer c WHERE c.email = %s",  # noqa: S608
            params + [email],
        )
        return cursor.fetchone()[0]


def test_suppression_survives_a_customer_import(settings, tmp_path, monkeypatch):
    """Entries name contacts, not customers: a customer created or updated by a CSV import
    after the Do Not Contact import is suppressed all the same."""
    from imports import pipeline, services
    from imports import tasks as import_tasks

    settings.IMPORTS_DIR = tmp_path / "imports"
    monkeypatch.setattr(import_tasks.run_import, "send", lambda *a, **k: None)
    run(analyze(upload("Ann@Example.com\n", "l.txt")))
    CustomerFactory(user_id="u2", email="bob@example.com")

    raw = b"id,email\nu1,ANN@example.com\nu2,bob@example.com\n"
    customers = services.import_upload(
        chunks=[raw], file_name="people.csv", actor=Actor.system("t")
    )
    services.import_configure(imp=customers, mapping=["id", "email"], tags=[], fill_empty=[])
    services.import_start(imp=customers, actor=Actor.system("t"), dry_run=False)
    pipeline.import_run(customers.pk)
    assert _suppressed("ann@example.com") is True
    assert _suppressed("bob@example.com") is False
    assert Entry.objects.count() == 1


def test_abandoned_imports_are_swept(marketer, django_capture_on_commit_callbacks):
    from datetime import timedelta
    from pathlib import Path

    from django.utils.timezone import now

    old = analyze(upload("a@example.com\n", "l.txt", member=marketer))
    fresh = upload("b@example.com\n", "l.txt")
    EntryImport.objects.filter(pk=old.pk).update(
        created_at=now() - timedelta(hours=25), analyzed_at=now() - timedelta(hours=25)
    )
    folder = Path(old.file_path).parent
    assert folder.exists() and EntryImportRow.objects.filter(import_id=old.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert dnc_tasks.sweep_entry_imports() is None
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == ImportStatus.FAILED and "left unfinished" in old.message
    assert fresh.status == ImportStatus.DRAFT
    assert not EntryImportRow.objects.filter(import_id=old.pk).exists()
    assert not folder.exists()
    assert not Notification.objects.exists()  # nobody is told about a draft they left


# --- review fixes: control characters, lost staging, double submits, the sweep ----------------


def test_a_tab_in_a_quoted_address_is_an_invalid_row():
    imp = analyze(upload('"a\tb"@example.com\nok@example.com\n', "l.txt"))
    assert (imp.status, imp.valid, imp.invalid) == (ImportStatus.ANALYZED, 1, 1)
    assert "control character" in imp.problems[0][2]


def test_the_copy_text_escapes_tabs_and_line_ends(monkeypatch):
    # Cleaned values hold none, but should one slip through it must not shift a column.
    from donotcontact.contacts import CleanEntry

    odd = CleanEntry(contact="a\tb\\c\r\n@example.com", channel="email", sender="S\t1",
                     account="")  # fmt: skip
    monkeypatch.setattr(importing, "entry_clean", lambda *a: odd)
    imp = analyze(upload("x@example.com\n", "l.txt"))
    assert imp.status == ImportStatus.ANALYZED
    row = EntryImportRow.objects.get(import_id=imp.pk)
    assert (row.contact, row.sender) == (odd.contact, odd.sender)


def test_an_inline_analysis_that_breaks_fails_the_import(monkeypatch):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(importing, "_stage", broken)
    imp = analyze(upload("a@example.com\n", "l.txt"))
    assert imp.status == ImportStatus.FAILED
    assert "analysis failed" in imp.message


def test_lost_staged_rows_fail_the_import_instead_of_completing():
    # An unlogged table is empty after a PostgreSQL crash.
    imp = analyze(upload("a@example.com\nb@example.com\n", "l.txt"))
    importing.entry_import_start(imp=imp, accounts=[""], actor=Actor.system("tests"))
    EntryImportRow.objects.filter(import_id=imp.pk).delete()
    assert importing.import_run(imp.pk) is None
    imp.refresh_from_db()
    assert imp.status == ImportStatus.FAILED and "Upload the file again" in imp.message
    assert not Entry.objects.exists()


def test_a_double_submitted_analysis_runs_once(settings, sent, django_capture_on_commit_callbacks):
    settings.DNC_IMPORT_INLINE_BYTES = 0  # the worker's part: the first stays ANALYZING
    imp = upload("a@example.com\n", "l.txt")
    first, second = EntryImport.objects.get(pk=imp.pk), EntryImport.objects.get(pk=imp.pk)
    with django_capture_on_commit_callbacks(execute=True):
        importing.entry_import_analyze_start(imp=first)
        with pytest.raises(importing.ImportInvalid, match="already being analysed"):
            importing.entry_import_analyze_start(imp=second)
        with pytest.raises(importing.ImportInvalid, match="already being analysed"):
            importing.entry_import_configure(
                imp=second, start_row=1, mapping={"contact": 0}, columns=1
            )
    assert [name for name, _ in sent] == ["analyze_entry_import"]
    assert EntryImport.objects.get(pk=imp.pk).status == ImportStatus.ANALYZING


def _age(imp: EntryImport, hours: float, **extra) -> None:
    from datetime import timedelta

    from django.utils.timezone import now

    EntryImport.objects.filter(pk=imp.pk).update(created_at=now() - timedelta(hours=hours), **extra)


def test_the_sweep_goes_by_the_last_activity():
    from django.utils.timezone import now

    imp = analyze(upload("a@example.com\n", "l.txt"))
    _age(imp, 25, analyzed_at=now())  # uploaded long ago, analysed just now
    assert importing.entry_imports_sweep() == 0
    imp.refresh_from_db()
    assert imp.status == ImportStatus.ANALYZED


def test_the_sweep_does_not_fail_an_import_started_meanwhile(monkeypatch):
    from datetime import timedelta

    from django.utils.timezone import now

    imp = analyze(upload("a@example.com\n", "l.txt"))
    _age(imp, 25, analyzed_at=now() - timedelta(hours=25))
    fail = importing._fail

    def started_first(pk, message, **kwargs):
        # The member presses Import between the sweep's listing and its _fail.
        EntryImport.objects.filter(pk=pk).update(status=ImportStatus.QUEUED)
        return fail(pk, message, **kwargs)

    monkeypatch.setattr(importing, "_fail", started_first)
    assert importing.entry_imports_sweep() == 0
    imp.refresh_from_db()
    assert imp.status == ImportStatus.QUEUED


def test_the_sweep_fails_an_analysis_stuck_past_its_time_limit(settings):
    from datetime import timedelta

    from django.utils.timezone import now

    settings.DNC_IMPORT_INLINE_BYTES = 0
    stuck, running = upload("a@example.com\n", "l.txt"), upload("b@example.com\n", "l.txt")
    importing.entry_import_analyze_start(imp=stuck)
    importing.entry_import_analyze_start(imp=running)
    hours = dnc_tasks.ANALYZE_MAX_SECONDS / 3600 + 1
    _age(stuck, hours, analyzed_at=now() - timedelta(hours=hours))
    assert importing.entry_imports_sweep() == 1
    stuck.refresh_from_db()
    running.refresh_from_db()
    assert stuck.status == ImportStatus.FAILED and "did not finish" in stuck.message
    assert running.status == ImportStatus.ANALYZING
