"""Exports (exports/services.py, sources.py, writers.py, tasks.py and the column registry in
customers/export.py): chosen columns in order, formula escaping in CSV and XLSX, each source's
exact customers, the background build (and its re-run), failures and expiry."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from activity.models import Activity
from activity.services import Actor
from customers.custom_fields import custom_field_specs
from customers.export import columns_pick, default_column_keys, export_columns, export_header
from customers.models import CustomField
from exports.models import Export, ExportSource, ExportStatus
from exports.services import export_build, export_request, exports_expire
from exports.sources import (
    Source,
    SourceGone,
    source_count_upto,
    source_for_segment,
    source_for_selection,
    source_rows,
)
from exports.tasks import build_export, expire_exports
from segments.membership import segment_build
from segments.models import Membership, Segment
from segments.services import segment_create
from tags.models import CustomerTag, Tag
from tags.models import Source as ActorSource
from tests.exports.conftest import xlsx_rows
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")


def german_segment(name: str = "Germans") -> Segment:
    rules = {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [{"type": "attribute", "field": "country", "operator": "is", "value": "DE"}],
    }
    segment = segment_create(name=name, rules=rules, actor=SYSTEM, tz="UTC")
    segment_build(segment.pk)
    segment.refresh_from_db()
    return segment


def user_ids(source: Source, batch: int = 2000) -> list[str]:
    columns = columns_pick(["user_id"], export_columns({}, segment=True))
    return [row[0] for row in source_rows(source, columns, batch=batch)]


def streamed_csv(requested) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(requested.streamed.content))))


# --- columns ---------------------------------------------------------------------------------


def test_default_columns_are_todays_export_header():
    CustomField.objects.create(name="plan", label="Plan", type="text")
    custom = custom_field_specs()
    keys = default_column_keys(custom)
    assert keys[0] == "user_id" and keys[-4:] == [
        "first_seen",
        "last_seen",
        "created_at",
        "updated_at",
    ]
    assert "custom.plan" in keys and "entered_at" not in keys
    assert export_header(custom)[0] == "id"  # the user ID's header, as always
    assert "entered_at" in export_columns(custom, segment=True)


def test_chosen_columns_come_out_in_the_order_chosen():
    CustomerFactory(user_id="u1", email="u1@example.com", country="FR")
    source = source_for_selection(ids=[], all_matching=True, filter_query="")
    requested = export_request(
        actor=SYSTEM,
        source=source,
        fmt="csv",
        column_keys=["country", "email", "nonsense", "user_id", "country"],
    )
    assert streamed_csv(requested) == [["country", "email", "id"], ["FR", "u1@example.com", "u1"]]


# --- formula escaping ------------------------------------------------------------------------


@pytest.fixture
def risky():
    CustomField.objects.create(name="plan", label="Plan", type="text")
    CustomField.objects.create(name="vip", label="VIP", type="boolean")
    c = CustomerFactory(
        user_id="@u1", name="=HYPERLINK(1)", city="-2", custom={"plan": "+1", "vip": True}
    )
    CustomerTag.objects.create(customer=c, tag=Tag.objects.create(name="@home"))
    CustomerTag.objects.create(customer=c, tag=Tag.objects.create(name="b"))
    return c


RISKY_KEYS = ["user_id", "name", "city", "custom.plan", "custom.vip", "tags"]
RISKY_ROWS = [
    ["id", "name", "city", "custom.plan", "custom.vip", "tags"],
    ["'@u1", "'=HYPERLINK(1)", "'-2", "'+1", "true", "'@home, b"],
]


def test_csv_cells_are_formula_escaped(risky):
    source = source_for_selection(ids=[risky.pk], all_matching=False, filter_query="")
    requested = export_request(actor=SYSTEM, source=source, fmt="csv", column_keys=RISKY_KEYS)
    assert streamed_csv(requested) == RISKY_ROWS


def test_xlsx_cells_are_formula_escaped_text(risky):
    source = source_for_selection(ids=[risky.pk], all_matching=False, filter_query="")
    requested = export_request(actor=SYSTEM, source=source, fmt="xlsx", column_keys=RISKY_KEYS)
    assert requested.streamed.filename.endswith(".xlsx")
    assert xlsx_rows(requested.streamed.content.read()) == RISKY_ROWS


def test_xlsx_drops_characters_xml_cannot_hold():
    c = CustomerFactory(user_id="u1", name="bell\x07 here")
    source = source_for_selection(ids=[c.pk], all_matching=False, filter_query="")
    requested = export_request(actor=SYSTEM, source=source, fmt="xlsx", column_keys=["name"])
    assert xlsx_rows(requested.streamed.content.read()) == [["name"], ["bell here"]]


def test_dates_are_iso_text(risky):
    source = source_for_selection(ids=[risky.pk], all_matching=False, filter_query="")
    requested = export_request(actor=SYSTEM, source=source, fmt="xlsx", column_keys=["created_at"])
    assert xlsx_rows(requested.streamed.content.read())[1] == [risky.created_at.isoformat()]


# --- sources ---------------------------------------------------------------------------------


def test_selection_gives_exactly_the_selected_customers():
    people = [CustomerFactory(user_id=f"u{i}") for i in range(5)]
    source = source_for_selection(
        ids=[people[3].pk, people[1].pk, people[3].pk], all_matching=False, filter_query=""
    )
    assert source.kind == ExportSource.SELECTION and source.description == "2 selected customers"
    assert user_ids(source) == ["u1", "u3"]


def test_filter_gives_exactly_the_matching_customers_across_batches():
    for i in range(7):
        CustomerFactory(user_id=f"de{i}", country="DE")
    CustomerFactory(user_id="fr", country="FR")
    source = source_for_selection(ids=[], all_matching=True, filter_query="country=DE&sort=name")
    assert source.kind == ExportSource.FILTER
    assert source.description == "Customers matching country = DE"
    assert user_ids(source, batch=3) == [f"de{i}" for i in range(7)]
    assert source_count_upto(source, 3) == 4  # counts no further than the limit + 1


def test_filter_description_names_the_tag():
    tag = Tag.objects.create(name="VIP")
    source = source_for_selection(ids=[], all_matching=True, filter_query=f"tag={tag.pk}&q=an")
    assert source.description == "Customers matching search = an, tag = VIP"


def test_whole_list_without_a_filter():
    CustomerFactory.create_batch(3)
    source = source_for_selection(ids=[], all_matching=True, filter_query="sort=name")
    assert (source.kind, source.description) == (ExportSource.ALL, "All customers")
    assert len(user_ids(source, batch=2)) == 3


def test_segment_gives_exactly_its_members_with_entered_at():
    germans = [CustomerFactory(user_id=f"de{i}", country="DE") for i in range(5)]
    CustomerFactory(user_id="fr", country="FR")
    segment = german_segment()
    source = source_for_segment(segment)
    assert source.description == "Segment “Germans” (5)"
    assert user_ids(source, batch=2) == [c.user_id for c in germans]
    columns = columns_pick(["user_id", "entered_at", "tags"], export_columns({}, segment=True))
    entered = Membership.objects.get(segment=segment, customer=germans[0]).entered_at
    assert next(source_rows(source, columns)) == ["de0", entered.isoformat(), ""]


def test_a_deleted_segment_is_gone():
    segment = german_segment()
    source = source_for_segment(segment)
    Segment.objects.filter(pk=segment.pk).delete()
    with pytest.raises(SourceGone):
        source_rows(source, [])


# --- small sets stream, large ones build in the background -----------------------------------


def test_small_set_streams_and_records_activity(marketer):
    people = CustomerFactory.create_batch(2)
    source = source_for_selection(ids=[c.pk for c in people], all_matching=False, filter_query="")
    requested = export_request(
        actor=Actor(ActorSource.UI, member=marketer),
        source=source,
        fmt="csv",
        column_keys=["email"],
    )
    assert requested.export is None and len(streamed_csv(requested)) == 3
    entry = Activity.objects.get(action="customers.exported")
    assert entry.count == 2 and entry.member == marketer


@pytest.mark.usefixtures("background")
def test_large_set_builds_in_the_background(
    marketer, sent, exports_dir, django_capture_on_commit_callbacks
):
    for i in range(5):
        CustomerFactory(user_id=f"u{i}", country="DE", name=f"=n{i}")
    source = source_for_selection(ids=[], all_matching=True, filter_query="country=DE")
    with django_capture_on_commit_callbacks(execute=True):
        requested = export_request(
            actor=Actor(ActorSource.UI, member=marketer),
            source=source,
            fmt="csv",
            column_keys=["name", "user_id"],
        )
    export = requested.export
    assert requested.streamed is None
    assert sent == [("build_export", (export.pk,))]
    assert (export.status, export.member, export.expected_rows) == ("queued", marketer, 5)
    assert export.query["filter"] == "country=DE" and export.columns == ["name", "user_id"]
    assert Activity.objects.get(action="customers.exported").count == 5

    build_export.fn(export.pk)
    export.refresh_from_db()
    assert (export.status, export.row_count, export.progress) == ("ready", 5, 5)
    path = exports_dir / export.file_path
    first = path.read_bytes()
    assert export.size == len(first)
    assert first.decode().splitlines() == ["name,id", *(f"'=n{i},u{i}" for i in range(5))]
    assert export.expires_at == export.finished_at + timedelta(days=7)

    build_export.fn(export.pk)  # a retried message writes the same file again
    export.refresh_from_db()
    assert export.status == "ready" and path.read_bytes() == first
    assert sorted(p.name for p in exports_dir.iterdir()) == [export.file_path]  # no leftovers


@pytest.mark.usefixtures("background")
def test_background_xlsx_of_a_segment(marketer, sent, exports_dir):
    for i in range(3):
        CustomerFactory(user_id=f"de{i}", country="DE", city="+x")
    segment = german_segment()
    requested = export_request(
        actor=Actor(ActorSource.UI, member=marketer),
        source=source_for_segment(segment),
        fmt="xlsx",
        column_keys=["user_id", "city"],
    )
    export = requested.export
    assert export.source == "segment" and export.description == "Segment “Germans” (3)"
    assert Activity.objects.get(action="segment.exported").target_id == segment.pk
    build_export.fn(export.pk)
    first = xlsx_rows((exports_dir / Export.objects.get().file_path).read_bytes())
    assert first == [["id", "city"], *([f"de{i}", "'+x"] for i in range(3))]
    build_export.fn(export.pk)
    again = xlsx_rows((exports_dir / Export.objects.get().file_path).read_bytes())
    assert again == first


@pytest.mark.usefixtures("background")
def test_a_filter_reads_its_dates_in_the_members_time_zone(marketer, sent):
    # 23:30 UTC on 1 May is already 2 May in Tokyo.
    late = datetime(2026, 5, 1, 23, 30, tzinfo=UTC)
    CustomerFactory.create_batch(3, created_at=late)
    with timezone.override("Asia/Tokyo"):
        source = source_for_selection(
            ids=[], all_matching=True, filter_query="created_from=2026-05-02"
        )
    export = export_request(actor=SYSTEM, source=source, fmt="csv", column_keys=["user_id"]).export
    assert export.query["tz"] == "Asia/Tokyo"
    build_export.fn(export.pk)  # the worker runs in UTC
    export.refresh_from_db()
    assert export.row_count == 3


def test_build_fails_when_the_segment_was_deleted(sent):
    segment = german_segment()
    export = Export.objects.create(
        source="segment",
        description="x",
        query={"segment": segment.pk},
        format="csv",
        columns=["user_id"],
    )
    Segment.objects.filter(pk=segment.pk).delete()
    build_export.fn(export.pk)  # nothing to retry: no exception
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED and "deleted" in export.error


def test_build_failure_is_recorded_and_retried(monkeypatch, exports_dir):
    export = Export.objects.create(source="all", description="x", format="csv", columns=["x"])

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("exports.services.write_export", broken)
    with pytest.raises(RuntimeError):
        build_export.fn(export.pk)
    export.refresh_from_db()
    assert (export.status, export.error) == ("failed", "disk full")
    assert list(exports_dir.iterdir()) == []  # the temporary file went too


def test_build_of_a_missing_export_does_nothing():
    assert export_build(987654) == "gone"


# --- expiry ----------------------------------------------------------------------------------


def test_expiry_removes_files_of_old_exports(exports_dir):
    exports_dir.mkdir(parents=True)
    now = timezone.now()
    old = Export.objects.create(
        source="all",
        description="old",
        format="csv",
        status="ready",
        file_path="export-1.csv",
        expires_at=now - timedelta(minutes=1),
    )
    fresh = Export.objects.create(
        source="all",
        description="fresh",
        format="csv",
        status="ready",
        expires_at=now + timedelta(days=1),
    )
    for export in (old, fresh):
        export.file_path = f"export-{export.pk}.csv"
        export.save()
        (exports_dir / export.file_path).write_text("id\n")
    (exports_dir / f"export-{old.pk}.csv.abc.part").write_text("")  # a killed build's leftover

    expire_exports.fn()

    assert sorted(p.name for p in exports_dir.iterdir()) == [fresh.file_path]
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.status, old.file_path) == ("expired", "")
    assert fresh.status == "ready"
    assert exports_expire() == 0  # nothing left to do


@pytest.mark.parametrize("hidden", ["\x01", "\x01\x1f", "\x0b"])
def test_xlsx_escapes_a_formula_behind_dropped_characters(hidden):
    # The control characters go (XML can't hold them); the formula they hid must not come
    # out live.
    c = CustomerFactory(user_id="u1", name=f'{hidden}=HYPERLINK("http://x.example")')
    source = source_for_selection(ids=[c.pk], all_matching=False, filter_query="")
    requested = export_request(actor=SYSTEM, source=source, fmt="xlsx", column_keys=["name"])
    data = requested.streamed.content.read()
    assert xlsx_rows(data) == [["name"], ['\'=HYPERLINK("http://x.example")']]
    sheet = load_workbook(io.BytesIO(data)).active
    assert all(cell.data_type == "s" for row in sheet.iter_rows() for cell in row)
