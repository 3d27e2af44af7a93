"""The customer CSV import pipeline (imports/pipeline.py, merge.py, rows.py, services.py,
report.py): the import rules, the files it takes and refuses, tags, dry runs, segments,
checkpoints and re-runs, slots, cancelling, imports racing each other, and the error report.

Every import here runs in the test's own process, as the worker would run it."""

from __future__ import annotations

import csv
import io
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from activity.models import Activity
from customers.models import Customer, CustomField
from customers.services import custom_field_create
from imports import pipeline, services
from imports.merge import MergePlan
from imports.models import Import, ImportChange, ImportPhase, ImportStatus, StagedRow
from imports.reader import FileRejected
from imports.report import report_csv
from imports.staging import staging_drop, staging_ensure, staging_exists
from segments.incremental import pending_drain
from segments.membership import segment_build
from segments.models import PendingCustomer, Transition
from segments.services import segment_create
from tags.models import CustomerTag, Tag
from tags.services import tags_ensure
from tests import concurrency
from tests.factories import CustomerFactory
from tests.imports.conftest import (
    SYSTEM,
    changes,
    counts,
    created_logged,
    csv_text,
    customer,
    customers,
    files_in,
    make_import,
    queue_import,
    rerun,
    tag_names,
    undo_log_size,
    upload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def fields(db):
    """One custom field of each type."""
    return {
        t: custom_field_create(label=label, type=t, actor=SYSTEM)
        for t, label in [
            ("text", "Plan"),
            ("number", "Lifetime value"),
            ("date", "Signed up"),
            ("boolean", "Beta"),
        ]
    }


def assert_adds_up(imp: Import, data_rows: int) -> None:
    imp.refresh_from_db()
    assert imp.total_rows == data_rows
    assert imp.created + imp.updated + imp.unchanged + imp.failed == data_rows


def report(imp: Import) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(report_csv(imp)))))


def problems(imp: Import) -> dict[int, list[tuple[str, str]]]:
    """Row number → [(column, reason)] from the error report."""
    found: dict[int, list[tuple[str, str]]] = {}
    for line in report(imp)[1:]:
        found.setdefault(int(line[0]), []).append((line[1], line[2]))
    return found


def nothing_written() -> None:
    assert not Customer.objects.exists()
    assert not ImportChange.objects.exists()
    assert not CustomerTag.objects.exists()


# --- the rules ---------------------------------------------------------------------------------


def test_new_existing_and_unchanged_customers_and_failed_rows_add_up_to_the_data_rows(
    imports_dir, django_capture_on_commit_callbacks
):
    CustomerFactory(user_id="old", name="Old", email="old@example.com", country="PT")
    CustomerFactory(user_id="same", name="Same", email="same@example.com", country="PT")
    data = csv_text(
        "id,name,email,country",
        "new,New,new@example.com,DE",
        "old,Older,old@example.com,PT",
        "same,Same,same@example.com,PT",
        "bad,Bad,not-an-address,DE",
    )

    with django_capture_on_commit_callbacks(execute=True):
        imp = make_import(data)

    assert (imp.status, imp.message) == (ImportStatus.COMPLETED_WITH_ERRORS, "")
    assert counts(imp) == {
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "failed": 1,
        "tagged": 0,
        "total": 4,
    }
    assert_adds_up(imp, 4)
    people = customers()
    assert set(people) == {"new", "old", "same"}
    assert (people["new"]["name"], people["new"]["country"]) == ("New", "DE")
    assert people["old"]["name"] == "Older"
    assert changes(imp) == {
        "new": (True, None),
        "old": (False, {"name": ["Old", "Older"]}),
    }
    assert problems(imp) == {5: [("email", "“not-an-address” is not a valid e-mail address.")]}
    assert not files_in(imports_dir)  # the file went with the finish
    # Only failed rows stay staged, for the report.
    assert list(StagedRow.objects.filter(import_id=imp.pk).values_list("row_no", flat=True)) == [5]
    assert Activity.objects.filter(action="import.completed_with_errors").count() == 1


def test_a_file_without_problems_completes():
    imp = make_import(csv_text("id,name", "a,Ann", "b,Bob"))
    assert (imp.status, imp.phase, imp.progress) == (ImportStatus.COMPLETED, "done", 100)
    assert_adds_up(imp, 2)
    assert (imp.created, imp.failed) == (2, 0)
    assert not staging_exists(imp.pk)  # its partition of staged rows went with the finish


def _partition(imp) -> str:
    return f"imports_stagedrow_{imp.pk}"


def test_each_import_stages_into_its_own_partition_kept_only_for_its_failed_rows():
    bad = make_import(csv_text("id,email", "a,nope", "b,b@x.io"), dry_run=True)
    good = make_import(csv_text("id,email", "c,c@x.io"))
    assert (staging_exists(bad.pk), staging_exists(good.pk)) == (True, False)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, row_no FROM imports_stagedrow ORDER BY import_id"
        )
        assert cursor.fetchall() == [(f"imports_stagedrow_{bad.pk}", 2)]
        # Autovacuum stays away from a partition while its import runs, and may reclaim one
        # kept for a report.
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [_partition(bad)])
        assert cursor.fetchone() == (None,)
    staging_ensure(good.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [_partition(good)])
        assert cursor.fetchone() == (["autovacuum_enabled=off"],)
    staging_drop(good.pk)
    services.import_start(imp=bad, actor=SYSTEM)  # the import after its dry run stages afresh
    assert not staging_exists(bad.pk)


def test_an_empty_cell_leaves_the_value_as_it_is(fields):
    CustomerFactory(user_id="u1", name="Ann", city="Oslo", custom={"plan": "gold"})
    imp = make_import(
        csv_text("id,name,city,plan", "u1,,Bergen,", "u2,  ,,"), {"plan": "custom.plan"}
    )
    people = customers()
    assert (people["u1"]["name"], people["u1"]["city"], people["u1"]["custom"]) == (
        "Ann",
        "Bergen",
        {"plan": "gold"},
    )
    assert (people["u2"]["name"], people["u2"]["city"], people["u2"]["custom"]) == ("", "", {})
    assert (imp.created, imp.updated) == (1, 1)


def test_values_overwrite_unless_their_column_only_fills_empty_values(fields):
    CustomerFactory(user_id="full", city="Oslo", country="NO", custom={"plan": "gold"})
    CustomerFactory(user_id="empty", city="", country="", custom={})
    data = csv_text("id,City,Country,Plan", "full,Bergen,SE,free", "empty,Bergen,SE,free")

    imp = make_import(
        data,
        {"City": "city", "Country": "country", "Plan": "custom.plan"},
        fill_empty=["City", "Plan"],
    )

    people = customers()
    # Filled only where empty: City and Plan. Overwritten: Country.
    assert (people["full"]["city"], people["full"]["country"], people["full"]["custom"]) == (
        "Oslo",
        "SE",
        {"plan": "gold"},
    )
    assert (people["empty"]["city"], people["empty"]["country"], people["empty"]["custom"]) == (
        "Bergen",
        "SE",
        {"plan": "free"},
    )
    assert imp.options["fill_empty"] == ["City", "Plan"]
    assert changes(imp) == {
        "full": (False, {"country": ["NO", "SE"]}),
        "empty": (
            False,
            {"city": ["", "Bergen"], "country": ["", "SE"], "custom.plan": [None, "free"]},
        ),
    }


def test_a_row_that_only_fills_values_the_customer_has_is_unchanged(fields):
    CustomerFactory(user_id="u1", city="Oslo", custom={"plan": "gold"})
    imp = make_import(
        csv_text("id,City,Plan", "u1,Bergen,free"),
        {"Plan": "custom.plan"},
        fill_empty=["City", "Plan"],
    )
    assert (imp.created, imp.updated, imp.unchanged) == (0, 0, 1)
    assert not ImportChange.objects.exists()


def test_typed_custom_fields_read_lenient_text(fields):
    data = csv_text(
        "id,Plan,Lifetime value,Signed up,Beta",
        "a,gold,3.5,2024-05-01,yes",
        "b, silver ,1 200,2024-05-01T09:30:00+02:00,No",
        "c,,42,,1",
    )
    imp = make_import(data)
    assert imp.mapping == [
        "id",
        "custom.plan",
        "custom.lifetime_value",
        "custom.signed_up",
        "custom.beta",
    ]
    assert imp.status == ImportStatus.COMPLETED
    people = customers()
    assert people["a"]["custom"] == {
        "plan": "gold",
        "lifetime_value": 3.5,
        "signed_up": "2024-05-01T00:00:00Z",
        "beta": True,
    }
    assert people["b"]["custom"] == {
        "plan": "silver",
        "lifetime_value": 1200,
        "signed_up": "2024-05-01T07:30:00Z",
        "beta": False,
    }
    assert people["c"]["custom"] == {"lifetime_value": 42, "beta": True}


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("Signed up", "31/02/2024", "is not a date"),
        ("Signed up", "2024-02-30", "is not a date"),
        ("Lifetime value", "lots", "“lots” is not a number."),
        ("Lifetime value", "1e16", "Must be between -10^15 and 10^15."),
        ("Beta", "maybe", "“maybe” is not yes/no"),
        ("phone", "12", "“12” is not a valid phone number."),
        ("email", "ann@", "“ann@” is not a valid e-mail address."),
        ("timezone", "Mars/Olympus", "is not an IANA time zone"),
        ("user_type", "robot", "Must be “live” or “test”."),
    ],
)
def test_a_bad_value_fails_its_row_naming_the_column(fields, header, value, reason):
    data = csv_text(f"id,name,{header}", "good,Good,", f"bad,Bad,{value}")
    imp = make_import(data)
    assert imp.status == ImportStatus.COMPLETED_WITH_ERRORS
    assert set(customers()) == {"good"}
    assert_adds_up(imp, 2)
    [(column, message)] = problems(imp)[3]
    assert column == header
    assert reason in message


def test_a_row_reports_every_problem_it_has(fields):
    imp = make_import(csv_text("id,email,Beta", "a,nope,maybe"))
    assert problems(imp) == {
        2: [
            ("email", "“nope” is not a valid e-mail address."),
            ("Beta", "“maybe” is not yes/no; use true or false."),
        ]
    }
    assert imp.failed == 1


def test_user_ids_are_required_and_stripped():
    data = csv_text("id,name", "  u1 ,Padded", ",No ID", "   ,Blank ID", "u2,Plain")
    imp = make_import(data)
    assert set(customers()) == {"u1", "u2"}
    assert customer("u1").name == "Padded"
    assert problems(imp) == {
        3: [("id", "A user ID is required.")],
        4: [("id", "A user ID is required.")],
    }
    assert_adds_up(imp, 4)


def test_a_user_id_repeated_in_the_file_takes_the_last_row():
    data = csv_text("id,name", "u1,First", "u2,Other", "u1 ,Second", "u1,Last")
    imp = make_import(data)
    assert customer("u1").name == "Last"
    assert (imp.created, imp.failed) == (2, 2)
    assert_adds_up(imp, 4)
    found = problems(imp)
    assert set(found) == {2, 4}
    for row in (2, 4):
        [(column, reason)] = found[row]
        assert column == "id"
        assert reason == "Duplicate user ID “u1”: row 5 later in the file was imported instead."


def test_rows_with_too_many_or_too_few_values_fail_and_blank_lines_are_skipped():
    data = "id,name,city\nu1,Ann,Oslo\n\nu2,Bob\nu3,Cy,Rome,extra\n,,\nu4,Di,Bergen\n"
    imp = make_import(data)
    assert set(customers()) == {"u1", "u4"}
    found = problems(imp)
    assert found[4] == [("", "Expected 3 values, found 2.")]
    assert found[5] == [("", "Expected 3 values, found 4.")]
    # Blank lines (and a row of empty cells) are not rows; their numbers are used up.
    assert set(found) == {4, 5}
    assert_adds_up(imp, 4)


def test_a_200_kb_value_fails_its_row_and_the_others_import():
    data = csv_text("id,name", "a,Ann", f"b,{'x' * 200_000}", "c,Cy")
    imp = make_import(data)
    assert set(customers()) == {"a", "c"}
    [(column, reason)] = problems(imp)[3]
    assert (column, reason) == ("name", "At most 255 characters (got 200000).")
    assert_adds_up(imp, 3)


def test_a_nul_byte_in_a_cell_fails_its_row():
    data = b"id,name\na,A\x00nn\nb\x00,Bob\nc,Cy\n"
    imp = make_import(data)
    assert set(customers()) == {"c"}
    assert problems(imp) == {
        2: [("name", "Must not contain NUL characters.")],
        3: [("id", "Must not contain control characters.")],
    }
    # The report shows the NUL as U+FFFD (PostgreSQL's JSON cannot hold NUL).
    assert report(imp)[1][3:] == ["a", "A\ufffdnn"]


def test_invalid_utf8_bytes_fail_their_row_with_the_reason():
    data = b"id,name\na,Jos\xc3\xa9\nb,B\xffob\nc,Ren\xc3\xa9e\n"
    imp = make_import(data)
    assert imp.encoding == "utf-8"
    assert {k: v["name"] for k, v in customers().items()} == {"a": "José", "c": "Renée"}
    assert problems(imp) == {3: [("", "Row 3 contains bytes that are not valid UTF-8.")]}
    assert report(imp)[1][3] == "b"


def test_the_report_shows_undecodable_bytes_as_the_replacement_character():
    imp = make_import(b"id,name\na,Jos\xc3\xa9\nb,B\xffob\n")
    assert report(imp)[1][3:] == ["b", "B\ufffdob"]


def test_a_malformed_quote_fails_its_row_only():
    imp = make_import(b'id,name\na,Ann\nb,"Bo"b\nc,Cy\n')
    assert set(customers()) == {"a", "c"}
    assert set(problems(imp)) == {3}
    column, reason = problems(imp)[3][0]
    assert column == "" and reason.startswith("Row 3 could not be read")
    assert_adds_up(imp, 3)


def test_an_unreadable_row_is_reported_once():
    imp = make_import(b'id,name\na,Ann\nb,"Bo"b\nc,Cy\n')
    assert len(problems(imp)[3]) == 1


# --- the files it reads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter"),
    [
        ("\ufeffid,name,city\nu1,José,Zürich\n".encode(), "utf-8-sig", ","),
        ("id,name,city\nu1,José,Zürich\n".encode("utf-16"), "utf-16", ","),
        ("id,name,city\nu1,José,Zürich\n".encode("utf-16-le"), "utf-16-le", ","),
        ("id,name,city\r\nu1,José,Zürich\r\n".encode("cp1252"), "cp1252", ","),
        ("id;name;city\nu1;José;Zürich\n".encode(), "utf-8", ";"),
        ("id\tname\tcity\r\nu1\tJosé\tZürich\r\n".encode(), "utf-8", "\t"),
    ],
    ids=["bom", "utf16", "utf16-no-bom", "cp1252-crlf", "semicolon", "tab-crlf"],
)
def test_encodings_and_delimiters(data, encoding, delimiter):
    imp = make_import(data)
    assert (imp.encoding, imp.delimiter, imp.headers) == (
        encoding,
        delimiter,
        ["id", "name", "city"],
    )
    assert imp.status == ImportStatus.COMPLETED
    assert (customer("u1").name, customer("u1").city) == ("José", "Zürich")


def test_quoted_values_keep_their_newlines_and_delimiters():
    data = 'id,name,city\r\nu1,"Smith, Ann","Oslo\r\nNorway"\r\nu2,"Say ""hi""",Rome\r\n'
    imp = make_import(data)
    assert imp.status == ImportStatus.COMPLETED
    assert (customer("u1").name, customer("u1").city) == ("Smith, Ann", "Oslo\r\nNorway")
    assert customer("u2").name == 'Say "hi"'
    assert_adds_up(imp, 2)


def test_an_unterminated_quote_in_the_last_row_fails_the_import_and_writes_no_customer(
    settings, imports_dir, django_capture_on_commit_callbacks
):
    settings.IMPORTS_CHUNK_ROWS = 10  # several chunks are staged before the broken row
    # More rows than the upload's preview reads, so the upload itself does not see it.
    rows = [f"u{i:03d},Name {i}" for i in range(80)]
    data = csv_text("id,name", *rows, 'u999,"never closed')

    with django_capture_on_commit_callbacks(execute=True):
        imp = make_import(data, tags=["Imported"])

    assert imp.status == ImportStatus.FAILED
    assert imp.message == (
        "Row 82 has a quote that is never closed, so everything after it would be read as one "
        "value. Close the quote (or remove it) and upload the file again."
    )
    nothing_written()
    assert not files_in(imports_dir)
    assert not StagedRow.objects.filter(import_id=imp.pk).exists()


REJECTED = [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "This looks like a PNG image"),
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "an Excel workbook (.xlsx) or a ZIP archive"),
    (b"", "The file is empty."),
    (
        (",".join(["id", *(f"c{i}" for i in range(99))]) + "\nu1" + "," * 99 + "\n").encode(),
        "The file has 100 columns; at most 99 are allowed.",
    ),
    (b"id,name,Name\nu1,a,b\n", "Each column needs a different header."),
    (b"id,,name\nu1,a,b\n", "Column 2 has no header."),
    (b"id,=SUM(A1),name\nu1,a,b\n", "looks like a spreadsheet formula"),
    (b"\n\nid,name\n", "The first row is empty"),
]


@pytest.mark.parametrize(("data", "reason"), REJECTED)
def test_a_file_that_is_not_an_importable_csv_is_refused_at_upload_and_nothing_is_kept(
    imports_dir, data, reason
):
    with pytest.raises(FileRejected) as refused:
        upload(data, name="people.csv")
    assert reason in refused.value.message
    assert not Import.objects.exists()
    assert not files_in(imports_dir)


def test_a_file_over_the_size_limit_is_refused_at_upload(settings, imports_dir):
    settings.IMPORTS_MAX_BYTES = 1000
    data = csv_text("id,name", *(f"u{i},Name {i}" for i in range(200)))
    with pytest.raises(FileRejected) as refused:
        upload(data)
    assert "too large" in refused.value.message
    assert not Import.objects.exists()
    assert not files_in(imports_dir)


def test_a_file_without_a_user_id_column_cannot_be_configured(imports_dir):
    imp = upload(csv_text("name,email", "Ann,ann@example.com"))
    assert "id" not in imp.mapping
    with pytest.raises(services.ImportInvalid) as refused:
        services.import_configure(imp=imp, mapping=imp.mapping)
    assert refused.value.field == "mapping"
    assert refused.value.message == "Map one column to the user ID (id); it is required."
    services.import_discard(imp)
    assert not Import.objects.exists()
    assert not files_in(imports_dir)


# --- segments --------------------------------------------------------------------------------


def country_segment(code: str):
    rules = {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [{"type": "attribute", "field": "country", "operator": "is", "value": code}],
    }
    segment = segment_create(name=f"In {code}", rules=rules, actor=SYSTEM, tz="UTC")
    segment_build(segment.pk)
    return segment


def transitions(segment) -> set[tuple[str, str]]:
    return set(Transition.objects.filter(segment_id=segment.pk).values_list("user_id", "kind"))


def test_the_same_file_twice_changes_nothing_the_second_time():
    germans = country_segment("DE")
    data = csv_text("id,name,country", "a,Ann,DE", "b,Bob,PT", "c,Cy,DE")
    first = make_import(data, tags=["Newsletter"])
    pending_drain()
    assert transitions(germans) == {("a", "entered"), ("c", "entered")}
    before = (customers(), Transition.objects.count(), CustomerTag.objects.count())

    second = make_import(data, tags=["Newsletter"])

    assert (first.created, second.created, second.updated, second.unchanged) == (3, 0, 0, 3)
    assert second.tagged == 0 and second.status == ImportStatus.COMPLETED
    assert not ImportChange.objects.filter(import_id=second.pk).exists()
    assert not PendingCustomer.objects.exists()  # nobody marked for evaluation
    pending_drain()
    assert (customers(), Transition.objects.count(), CustomerTag.objects.count()) == before


def test_a_changed_value_marks_the_customer_and_moves_them_between_segments():
    germans, french = country_segment("DE"), country_segment("FR")
    make_import(csv_text("id,country", "a,DE", "b,DE"))
    pending_drain()
    assert transitions(germans) == {("a", "entered"), ("b", "entered")}

    imp = make_import(csv_text("id,country", "a,FR", "b,DE"))

    assert (imp.updated, imp.unchanged) == (1, 1)
    assert set(PendingCustomer.objects.values_list("customer_id", flat=True)) == {customer("a").pk}
    pending_drain()
    assert transitions(germans) == {("a", "entered"), ("b", "entered"), ("a", "exited")}
    assert transitions(french) == {("a", "entered")}


# --- new custom fields, dry runs -------------------------------------------------------------


def test_a_new_custom_field_is_created_when_the_import_starts():
    data = csv_text("id,Score", "a,3.5", "b,7")
    imp = make_import(data, {"Score": "new.number"})
    field = CustomField.objects.get()
    assert (field.name, field.label, field.type) == ("score", "Score", "number")
    assert imp.mapping == ["id", "custom.score"]
    assert {k: v["custom"] for k, v in customers().items()} == {
        "a": {"score": 3.5},
        "b": {"score": 7},
    }


def test_a_dry_run_writes_nothing_and_counts_what_the_import_then_does(fields):
    CustomerFactory(user_id="old", name="Old", custom={"plan": "gold"})
    CustomerFactory(user_id="same", name="Same", custom={})
    tags_before = set(Tag.objects.values_list("name", flat=True))
    data = csv_text(
        "id,name,Plan,Score",
        "new,New,free,1",
        "old,Old,gold,2",  # a value for the new field: an update
        "same,Same,,",
        "bad,Bad,,nope",
        "new,Newer,free,1",
    )
    mapping = {"Plan": "custom.plan", "Score": "new.number"}

    dry = make_import(data, mapping, tags=["Spring"], dry_run=True)

    assert (dry.status, dry.dry_run) == (ImportStatus.COMPLETED_WITH_ERRORS, True)
    dry_counts = (dry.created, dry.updated, dry.unchanged, dry.failed)
    assert dry_counts == (1, 1, 1, 2)
    assert set(customers()) == {"old", "same"}
    assert customer("old").custom == {"plan": "gold"}
    assert set(Tag.objects.values_list("name", flat=True)) == tags_before
    assert not CustomerTag.objects.exists()
    assert not CustomField.objects.filter(name="score").exists()
    assert not ImportChange.objects.exists()
    assert dry.mapping[3] == "new.number"  # still to be created
    assert pipeline.import_file(dry).exists()  # kept for the import it previews
    assert not Activity.objects.filter(target_type="import").exists()

    real = rerun(dry)

    assert (real.dry_run, real.status) == (False, ImportStatus.COMPLETED_WITH_ERRORS)
    assert (real.created, real.updated, real.unchanged, real.failed) == dry_counts
    assert CustomField.objects.filter(name="score", type="number").exists()
    assert customer("old").custom == {"plan": "gold", "score": 2}
    assert customer("new").name == "Newer"
    assert real.tagged == 3


# --- tags ------------------------------------------------------------------------------------


def test_the_default_tag_and_existing_tags_go_on_every_imported_customer():
    vip = tags_ensure(["VIP"], SYSTEM)[0]
    CustomerFactory(user_id="old", name="Old")
    CustomerFactory(user_id="same", name="Same")
    CustomerFactory(user_id="untouched")
    imp = upload(csv_text("id,name", "new,New", "old,Older", "same,Same", "bad\x00,Bad"))
    [default] = imp.options["tags"]
    assert default.startswith("Import ")
    services.import_configure(imp=imp, mapping=imp.mapping, tags=[default, "vip"])
    services.import_start(imp=imp, actor=SYSTEM)
    pipeline.import_run(imp.pk)
    imp.refresh_from_db()

    assert (imp.created, imp.updated, imp.unchanged, imp.failed, imp.tagged) == (1, 1, 1, 1, 3)
    assert Tag.objects.filter(name="VIP").count() == 1  # found, not created again
    assert imp.tag_ids == [Tag.objects.get(name=default).pk, vip.pk]
    for user_id in ("new", "old", "same"):
        assert tag_names(user_id) == {default, "VIP"}
    assert tag_names("untouched") == set()
    assignments = CustomerTag.objects.all()
    assert assignments.count() == 6
    assert {(a.added_by_import_id, a.source) for a in assignments} == {(imp.pk, "import")}


def test_a_tag_the_customer_already_had_keeps_its_assignment():
    vip = tags_ensure(["VIP"], SYSTEM)[0]
    old = CustomerFactory(user_id="old")
    CustomerTag.objects.create(customer=old, tag=vip, source="ui")
    imp = make_import(csv_text("id,name", "old,Old", "new,New"), tags=["VIP"])
    assert imp.tagged == 1
    kept = CustomerTag.objects.get(customer=old)
    assert (kept.source, kept.added_by_import_id) == ("ui", None)


# --- checkpoints and re-runs -----------------------------------------------------------------


class Interrupted(Exception):
    pass


def interrupt(phase: str, after: int):
    """A progress callback that stops the run at its ``after``-th checkpoint in ``phase``."""
    seen = 0

    def progress(imp: Import) -> None:
        nonlocal seen
        if imp.phase == phase and not imp.finished:
            seen += 1
            if seen == after:
                raise Interrupted

    return progress


def seed() -> None:
    custom_field_create(label="Plan", type="text", actor=SYSTEM)
    for i in range(1, 6):
        CustomerFactory(user_id=f"u{i:02d}", name=f"Before {i}", country="PT", custom={})


TWENTY = csv_text(
    "id,name,country,Plan",
    *(
        f"u{i:02d},Name {i},{'DE' if i % 2 else 'PT'},{'gold' if i % 3 else ''}"
        for i in range(1, 19)
    ),
    "u03,Repeated,FR,silver",
    "u99,Bad,DE,,extra",
)


def state(imp: Import) -> dict:
    c = counts(imp)
    return {
        "customers": customers(),
        "counts": c,
        "changes": changes(imp),
        "tags": sorted(
            (user_id, tag, "this import" if by == imp.pk else by)
            for user_id, tag, by in CustomerTag.objects.values_list(
                "customer__user_id", "tag__name", "added_by_import_id"
            )
        ),
        "report": report(imp),
        "status": imp.status,
    }


def reference_state() -> dict:
    """The outcome of an uninterrupted import of TWENTY, rolled back afterwards."""
    with transaction.atomic():
        imp = make_import(TWENTY, tags=["Batch"])
        expected = state(imp)
        transaction.set_rollback(True)
    return expected


@pytest.mark.parametrize("phase", [ImportPhase.STAGE, ImportPhase.APPLY])
def test_an_interrupted_import_resumes_to_the_same_result(settings, phase):
    settings.IMPORTS_CHUNK_ROWS = 3
    seed()
    expected = reference_state()
    assert expected["counts"]["created"] == 13 and expected["counts"]["failed"] == 2

    imp = queue_import(TWENTY, tags=["Batch"])
    with pytest.raises(Interrupted):
        pipeline.import_run(imp.pk, progress=interrupt(phase, after=2))
    imp.refresh_from_db()
    assert (imp.status, imp.phase) == (ImportStatus.RUNNING, phase)
    if phase == ImportPhase.STAGE:
        assert (imp.staged_through, imp.rows_read) == (7, 6)
        assert not ImportChange.objects.exists()
        assert set(customers()) == {f"u{i:02d}" for i in range(1, 6)}
    else:
        assert imp.applied_through == 6
        assert undo_log_size(imp)

    assert pipeline.import_run(imp.pk) is not None

    assert state(imp) == expected
    assert StagedRow.objects.filter(import_id=imp.pk).count() == 2  # the failed rows


def test_rows_checked_in_a_process_pool_stage_exactly_as_in_process(settings):
    """Big files have their rows checked by spawned processes; the result is the same."""
    settings.IMPORTS_CHUNK_ROWS = 4
    seed()
    expected = reference_state()
    settings.IMPORTS_PARALLEL_FROM_ROWS = 0
    settings.IMPORTS_STAGE_PROCESSES = 2
    settings.IMPORTS_MERGE_CONNECTIONS = 1
    imp = make_import(TWENTY, tags=["Batch"])
    assert state(imp) == expected


@pytest.mark.parametrize(
    "data",
    [
        # A quote inside an unquoted value (row 7) throws off the count of quotes the pieces
        # are cut by: from that piece on the file is read in order.
        TWENTY.replace("Name 6,", 'Name "6,'),
        # Lines ended by CR alone: no piece can be cut at a line feed.
        TWENTY.replace("\n", "\r"),
    ],
    ids=["quote-in-unquoted-value", "cr-line-ends"],
)
def test_a_file_the_pool_cannot_cut_stages_as_read_in_order(settings, monkeypatch, data):
    from imports import reader

    monkeypatch.setattr(reader, "TEXT_CHUNK_CHARS", 40)  # pieces of a row or two
    monkeypatch.setattr(reader, "_MAX_UNCUT_CHARS", 100)
    seed()
    with transaction.atomic():
        expected = state(make_import(data, tags=["Batch"]))
        transaction.set_rollback(True)
    settings.IMPORTS_PARALLEL_FROM_ROWS = 0
    settings.IMPORTS_STAGE_PROCESSES = 2
    settings.IMPORTS_MERGE_CONNECTIONS = 1
    imp = make_import(data, tags=["Batch"])
    assert state(imp) == expected
    assert imp.failed >= 2  # the repeated and the malformed rows, as read in order


@pytest.mark.django_db(transaction=True)
def test_chunks_merged_on_two_connections_give_the_sequential_result(settings):
    """Big imports merge chunks on several connections; the outcome is the same, and a
    second run finds every chunk merged."""
    settings.IMPORTS_CHUNK_ROWS = 3
    seed()
    expected = reference_state()
    settings.IMPORTS_PARALLEL_FROM_ROWS = 0
    settings.IMPORTS_STAGE_PROCESSES = 1
    settings.IMPORTS_MERGE_CONNECTIONS = 2
    imp = make_import(TWENTY, tags=["Batch"])
    assert state(imp) == expected
    assert pipeline.import_run(imp.pk) is None
    assert state(imp) == expected


def test_running_a_finished_import_again_does_nothing():
    imp = make_import(csv_text("id,name", "a,Ann"))
    before = (state(imp), ImportChange.objects.count(), Activity.objects.count())
    assert pipeline.import_run(imp.pk) is None
    assert (state(imp), ImportChange.objects.count(), Activity.objects.count()) == before


def test_a_redelivered_chunk_stops_and_changes_nothing(settings):
    settings.IMPORTS_CHUNK_ROWS = 3
    seed()
    imp = queue_import(TWENTY, tags=["Batch"])
    with pytest.raises(Interrupted):
        pipeline.import_run(imp.pk, progress=interrupt(ImportPhase.APPLY, after=2))
    imp.refresh_from_db()
    assert imp.applied_through == 6
    before = state(imp)
    plan = MergePlan.build(imp.headers, imp.mapping, imp.options["fill_empty"])

    for lo, hi in ((0, 3), (3, 6)):
        with pytest.raises(pipeline.Stop):
            pipeline._merge_chunk(imp, plan, lo, hi)

    assert state(imp) == before
    imp.refresh_from_db()
    assert imp.applied_through == 6
    assert pipeline.import_run(imp.pk).status == ImportStatus.COMPLETED_WITH_ERRORS


def test_another_runner_holding_the_import_makes_a_run_return_none():
    imp = queue_import(csv_text("id,name", "a,Ann"))
    with other_session() as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [pipeline.RUNNER_LOCK, imp.pk])
        assert pipeline.import_run(imp.pk) is None
    imp.refresh_from_db()
    assert imp.status == ImportStatus.QUEUED


# --- slots and the sweep ---------------------------------------------------------------------


@contextmanager
def other_session():
    """A second database session (another worker), outside the test's transaction."""
    db = connection.settings_dict
    params = {"dbname": db["NAME"], "host": db["HOST"], "port": db["PORT"], "user": db["USER"]}
    if db["PASSWORD"]:
        params["password"] = db["PASSWORD"]
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        yield conn


def test_a_queued_import_waits_while_every_slot_is_taken(
    settings, sent, django_capture_on_commit_callbacks
):
    settings.IMPORTS_MAX_RUNNING = 1
    first = queue_import(csv_text("id,name", "a,Ann"), name="first.csv")
    second = queue_import(csv_text("id,name", "b,Bob"), name="second.csv")
    Import.objects.filter(pk=first.pk).update(status=ImportStatus.RUNNING)

    assert pipeline.import_run(second.pk) is None
    second.refresh_from_db()
    assert (second.status, second.started_at) == (ImportStatus.QUEUED, None)
    assert not Customer.objects.exists()

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.import_run(first.pk).status == ImportStatus.COMPLETED
    # The finished import hands its slot to the next queued one.
    assert ("run_import", (second.pk,)) in sent
    assert pipeline.import_run(second.pk).status == ImportStatus.COMPLETED
    assert set(customers()) == {"a", "b"}


def running_import(*, minutes_ago: int = 60) -> Import:
    imp = queue_import(csv_text("id,name", "a,Ann"))
    Import.objects.filter(pk=imp.pk).update(
        status=ImportStatus.RUNNING,
        heartbeat_at=timezone.now() - timedelta(minutes=minutes_ago),
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
    )
    imp.refresh_from_db()
    return imp


def test_the_sweep_resumes_a_stale_import_then_fails_it_after_the_last_attempt(
    settings, sent, django_capture_on_commit_callbacks
):
    settings.IMPORTS_MAX_ATTEMPTS = 3
    imp = running_import()
    for attempt in (1, 2):
        sent.clear()
        with django_capture_on_commit_callbacks(execute=True):
            assert services.imports_sweep() == {"resumed": 1, "failed": 0, "discarded": 0}
        imp.refresh_from_db()
        assert (imp.status, imp.attempts) == (ImportStatus.RUNNING, attempt)
        assert imp.heartbeat_at > timezone.now() - timedelta(minutes=1)
        assert ("run_import", (imp.pk,)) in sent
        # The resumed worker died too.
        Import.objects.filter(pk=imp.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    assert services.imports_sweep() == {"resumed": 0, "failed": 1, "discarded": 0}
    imp.refresh_from_db()
    assert (imp.status, imp.attempts) == (ImportStatus.FAILED, 3)
    assert imp.message.startswith(
        "The worker running this import stopped 3 times without finishing"
    )
    assert imp.finished_at is not None


def test_the_sweep_leaves_a_fresh_or_locked_import_alone(sent):
    fresh = running_import(minutes_ago=0)
    stale = running_import()
    with other_session() as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [pipeline.RUNNER_LOCK, stale.pk])
        assert services.imports_sweep() == {"resumed": 0, "failed": 0, "discarded": 0}
    for imp in (fresh, stale):
        imp.refresh_from_db()
        assert (imp.status, imp.attempts) == (ImportStatus.RUNNING, 0)


def test_an_error_counts_an_attempt_and_the_last_one_fails_the_import(settings):
    settings.IMPORTS_MAX_ATTEMPTS = 2
    imp = running_import()
    pipeline.import_error(imp.pk, RuntimeError("disk full"))
    imp.refresh_from_db()
    assert (imp.status, imp.attempts) == (ImportStatus.RUNNING, 1)
    pipeline.import_error(imp.pk, RuntimeError("disk full"))
    imp.refresh_from_db()
    assert (imp.status, imp.message) == (
        ImportStatus.FAILED,
        "The import stopped on an error: disk full",
    )


# --- cancel ----------------------------------------------------------------------------------


def test_cancelling_a_queued_import_cancels_it_at_once(
    imports_dir, django_capture_on_commit_callbacks
):
    imp = queue_import(csv_text("id,name", "a,Ann"))
    with django_capture_on_commit_callbacks(execute=True):
        imp = services.import_cancel(imp=imp, actor=SYSTEM)
    assert (imp.status, imp.message) == (ImportStatus.CANCELLED, "Cancelled before it started.")
    assert not files_in(imports_dir)
    assert pipeline.import_run(imp.pk) is None
    nothing_written()
    with pytest.raises(services.ImportInvalid):
        services.import_cancel(imp=imp, actor=SYSTEM)


@pytest.mark.parametrize(("phase", "written"), [(ImportPhase.STAGE, 0), (ImportPhase.APPLY, 2)])
def test_cancelling_a_running_import_stops_it_at_the_next_checkpoint(settings, phase, written):
    settings.IMPORTS_CHUNK_ROWS = 3
    imp = queue_import(csv_text("id,name", *(f"u{i:02d},N{i}" for i in range(20))))
    asked: list[Import] = []

    def progress(current: Import) -> None:
        if current.phase == phase and not asked:
            asked.append(services.import_cancel(imp=current, actor=SYSTEM))

    result = pipeline.import_run(imp.pk, progress=progress)

    assert asked[0].status == ImportStatus.RUNNING and asked[0].cancel_requested
    assert (result.status, result.message) == (ImportStatus.CANCELLED, "Cancelled.")
    assert Customer.objects.count() == result.created == written
    assert undo_log_size(imp) == written
    assert result.can_undo == bool(written)


# --- imports racing each other ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_overlapping_user_ids_at_once_both_complete(settings):
    settings.IMPORTS_CHUNK_ROWS = 50
    CustomerFactory(user_id="c0000", name="existing")
    ids = [f"c{i:04d}" for i in range(300)]
    left = csv_text("id,name,city", *(f"{u},Left {u},L" for u in ids[:200]))
    right = csv_text("id,name,city", *(f"{u},Right {u},R" for u in reversed(ids[100:])))
    a = queue_import(left, name="left.csv")
    b = queue_import(right, name="right.csv")

    outcomes = concurrency.race(
        lambda: pipeline.import_run(a.pk), lambda: pipeline.import_run(b.pk)
    )

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, b.status) == (ImportStatus.COMPLETED, ImportStatus.COMPLETED)
    assert_adds_up(a, 200)
    assert_adds_up(b, 200)
    people = customers()
    assert sorted(people) == ids  # each exactly once (user_id is unique, and all are here)
    assert a.created + b.created == 299
    for user_id, row in people.items():
        n = int(user_id[1:])
        allowed = []
        if n < 200:
            allowed.append((f"Left {user_id}", "L"))
        if n >= 100:
            allowed.append((f"Right {user_id}", "R"))
        assert (row["name"], row["city"]) in allowed
    assert len(created_logged()) == 299


@pytest.mark.django_db(transaction=True)
def test_a_user_id_created_by_another_writer_during_the_merge_is_updated_once(monkeypatch):
    """The merge inserts new customers without conflict checks first; when another writer
    creates one of them meanwhile, it rolls back to its savepoint and merges with the checks."""
    imp = queue_import(csv_text("id,name", "a,Ann", "x,From the file", "b,Bob"))
    fallbacks = []
    optimistic = pipeline._apply_optimistic

    def spy(*args):
        got = optimistic(*args)
        fallbacks.append(got is None)
        return got

    monkeypatch.setattr(pipeline, "_apply_optimistic", spy)
    inserted = threading.Event()

    def writer():
        with transaction.atomic():
            CustomerFactory(user_id="x", name="Written meanwhile")
            inserted.set()
            time.sleep(2)  # the import's insert of "x" waits for this commit, then conflicts

    def importer():
        assert inserted.wait(10)
        return pipeline.import_run(imp.pk)

    outcomes = concurrency.race(writer, importer)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert fallbacks == [True]
    done = counts(imp)
    assert (done["created"], done["updated"], done["failed"]) == (2, 1, 0)
    assert {u: row["name"] for u, row in customers().items()} == {
        "a": "Ann",
        "b": "Bob",
        "x": "From the file",
    }


# --- the error report ------------------------------------------------------------------------


def test_the_error_report_lists_each_problem_with_the_row_escaping_formulas(fields):
    data = csv_text(
        "id,name,email,Beta",
        "a,=HYPERLINK(x),nope,maybe",
        "b,Bob,b@example.com,yes",
        "c,+1 cmd,,",
        "b,@Bob,b@example.com,no",
        "d,-2,,,y",
    )
    imp = make_import(data)

    lines = report(imp)

    assert lines == [
        ["row", "column", "reason", "id", "name", "email", "Beta"],
        [
            "2",
            "email",
            "“nope” is not a valid e-mail address.",
            "a",
            "'=HYPERLINK(x)",
            "nope",
            "maybe",
        ],
        [
            "2",
            "Beta",
            "“maybe” is not yes/no; use true or false.",
            "a",
            "'=HYPERLINK(x)",
            "nope",
            "maybe",
        ],
        [
            "3",
            "id",
            "Duplicate user ID “b”: row 5 later in the file was imported instead.",
            "b",
            "",
            "",
            "",
        ],
        ["6", "", "Expected 4 values, found 5.", "d", "'-2", "", "", "y"],
    ]
    assert imp.failed == 3
    assert customer("b").name == "@Bob"
    assert customer("c").name == "+1 cmd"


def test_the_sweep_discards_uploads_abandoned_in_the_wizard():
    draft = services.import_upload(chunks=[b"id,name\na,Ann\n"], file_name="left.csv", actor=SYSTEM)
    dry = make_import(csv_text("id,name", "b,Bo"), dry_run=True)
    assert pipeline.import_file(dry).is_file()

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        result = services.imports_sweep()

    assert result["discarded"] == 1
    assert not Import.objects.filter(pk=draft.pk).exists()
    dry.refresh_from_db()
    assert dry.file_path == "" and dry.status == ImportStatus.COMPLETED
    with pytest.raises(services.ImportInvalid, match="upload it again"):
        services.import_start(imp=dry, actor=SYSTEM)


def test_a_new_field_whose_label_was_taken_meanwhile_fails_the_import_clearly():
    imp = queue_import(csv_text("id,Score", "a,3"), mapping=["id", "new.number"])
    custom_field_create(label="Score", type="text", actor=SYSTEM)

    pipeline.import_run(imp.pk)

    imp.refresh_from_db()
    assert imp.status == ImportStatus.FAILED
    assert "Score" in imp.message and "already exists" in imp.message
    assert not Customer.objects.exists()
