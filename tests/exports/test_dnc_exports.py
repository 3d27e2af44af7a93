"""Leaving out customers on the Do Not Contact list for a channel: in customer exports
(selection, filter, everyone) and segment member exports, streamed and built in the
background, as CSV and XLSX; the option stored on the export and said in its description; the
bulk CSV (customers/export.py) and the segment members CSV (segments/export.py) too."""

from __future__ import annotations

import csv
import io

import pytest

from activity.models import Activity
from activity.services import Actor
from customers.custom_fields import custom_field_specs
from customers.export import columns_pick, customers_csv, export_columns, without_suppressed
from customers.models import Customer
from donotcontact.models import Entry
from exports.models import Export
from exports.services import export_request
from exports.sources import (
    source_count_upto,
    source_estimate,
    source_for_segment,
    source_for_selection,
    source_leaving_out,
    source_rows,
)
from exports.tasks import build_export
from segments.export import members_csv
from segments.membership import segment_build
from segments.models import Membership
from segments.services import segment_create
from tags.models import Source as ActorSource
from tests.exports.conftest import xlsx_rows
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
NEW = "/exports/new/"


@pytest.fixture
def listed() -> dict[str, Customer]:
    """Five Germans and a Frenchman; some of them on the list."""
    people = {
        "ann": CustomerFactory(user_id="ann", country="DE", email="ann@x.io", phone="+491111"),
        "bob": CustomerFactory(user_id="bob", country="DE", email="bob@x.io", phone="+492222"),
        "cat": CustomerFactory(user_id="cat", country="DE", email="cat@x.io", phone="+493333"),
        "dan": CustomerFactory(user_id="dan", country="DE", email="", phone=""),
        "eve": CustomerFactory(user_id="eve", country="DE", email="eve@x.io", phone="+495555"),
        "fox": CustomerFactory(user_id="fox", country="FR", email="fox@x.io", phone=""),
    }
    Entry.objects.create(contact="ann@x.io", channel="email")
    Entry.objects.create(contact="+492222", channel="sms")
    Entry.objects.create(contact="+493333", channel="")  # every phone channel
    Entry.objects.create(contact="eve@x.io", channel="email", sender="Acme")  # one sender only
    Entry.objects.create(contact="fox@x.io", channel="email")
    return people


EXPECTED = {
    "": ["ann", "bob", "cat", "dan", "eve", "fox"],
    "email": ["bob", "cat", "dan", "eve"],  # eve's entry is for one sender only
    "sms": ["ann", "dan", "eve", "fox"],
    "whatsapp": ["ann", "bob", "dan", "eve", "fox"],
    "push": ["ann", "bob", "dan", "eve", "fox"],
}


def user_ids(source, batch: int = 2000) -> list[str]:
    columns = columns_pick(["user_id"], export_columns({}, segment=True))
    return [row[0] for row in source_rows(source, columns, batch=batch)]


def germans():
    rules = {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [{"type": "attribute", "field": "country", "operator": "is", "value": "DE"}],
    }
    segment = segment_create(name="Germans", rules=rules, actor=SYSTEM, tz="UTC")
    segment_build(segment.pk)
    segment.refresh_from_db()
    return segment


@pytest.mark.parametrize(("channel", "expected"), EXPECTED.items())
def test_customer_exports_leave_out_the_listed(listed, channel, expected):
    everyone = source_for_selection(ids=[], all_matching=True, filter_query="")
    source = source_leaving_out(everyone, channel)
    assert user_ids(source, batch=2) == expected  # across keyset batches
    assert source_count_upto(source, 100) == len(expected)
    assert source_estimate(source) == (len(expected), False)
    ticked = source_for_selection(
        ids=[listed["ann"].pk, listed["bob"].pk], all_matching=False, filter_query=""
    )
    assert user_ids(source_leaving_out(ticked, channel)) == [
        u for u in expected if u in ("ann", "bob")
    ]


@pytest.mark.parametrize(("channel", "expected"), EXPECTED.items())
def test_segment_member_exports_leave_out_the_listed(listed, channel, expected):
    segment = germans()
    source = source_leaving_out(source_for_segment(segment), channel)
    assert user_ids(source, batch=2) == [u for u in expected if u != "fox"]


def test_a_filter_source_and_the_description(listed):
    filtered = source_for_selection(ids=[], all_matching=True, filter_query="country=DE")
    source = source_leaving_out(filtered, "sms")
    assert source.query == {**filtered.query, "leave_out": "sms"}
    assert source.description == (
        "Customers matching country = DE, leaving out those on the Do Not Contact list for SMS"
    )
    assert user_ids(source) == ["ann", "dan", "eve"]
    assert source_leaving_out(filtered, "") is filtered
    with pytest.raises(ValueError):
        source_leaving_out(filtered, "fax")


def test_the_segment_estimate_is_marked_an_upper_bound(listed):
    segment = germans()
    assert source_estimate(source_for_segment(segment)) == (5, False)
    assert source_estimate(source_leaving_out(source_for_segment(segment), "email")) == (5, True)


def test_streamed_csv_and_activity(listed, marketer):
    source = source_leaving_out(
        source_for_selection(ids=[], all_matching=True, filter_query=""), "email"
    )
    requested = export_request(
        actor=Actor(ActorSource.UI, member=marketer),
        source=source,
        fmt="csv",
        column_keys=["user_id", "email"],
    )
    rows = list(csv.reader(io.StringIO("".join(requested.streamed.content))))
    assert rows == [
        ["id", "email"],
        ["bob", "bob@x.io"],
        ["cat", "cat@x.io"],
        ["dan", ""],
        ["eve", "eve@x.io"],
    ]
    entry = Activity.objects.get(action="customers.exported")
    assert entry.count == 4 and entry.changes["left_out_for"] == "email"


def test_streamed_xlsx_of_a_segment(listed, marketer):
    segment = germans()
    source = source_leaving_out(source_for_segment(segment), "sms")
    requested = export_request(
        actor=Actor(ActorSource.UI, member=marketer),
        source=source,
        fmt="xlsx",
        column_keys=["user_id"],
    )
    assert xlsx_rows(requested.streamed.content.read()) == [["id"], ["ann"], ["dan"], ["eve"]]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_background_build_applies_the_stored_option(
    listed, marketer, settings, sent, exports_dir, fmt
):
    settings.EXPORTS_STREAM_MAX_ROWS = 2
    segment = germans()
    source = source_leaving_out(source_for_segment(segment), "email")
    requested = export_request(
        actor=Actor(ActorSource.UI, member=marketer),
        source=source,
        fmt=fmt,
        column_keys=["user_id"],
    )
    export = requested.export
    assert export.query["leave_out"] == "email"
    assert export.description.endswith("leaving out those on the Do Not Contact list for Email")
    # An entry added after the request counts: the job reads the list when it runs. One for
    # another channel changes nothing.
    Entry.objects.create(contact="eve@x.io", channel="email")
    Entry.objects.create(contact="+491111", channel="sms")
    build_export.fn(export.pk)
    export.refresh_from_db()
    assert (export.status, export.row_count) == ("ready", 3)
    data = (exports_dir / export.file_path).read_bytes()
    rows = xlsx_rows(data) if fmt == "xlsx" else list(csv.reader(io.StringIO(data.decode())))
    assert rows == [["id"], ["bob"], ["cat"], ["dan"]]


# --- the form -------------------------------------------------------------------------------


def test_the_form_offers_the_option_with_nobody_left_out_by_default(marketer_client, listed):
    html = marketer_client.get(NEW).content.decode()
    assert 'name="leave_out"' in html
    assert '<option value="" selected>no channel: export everyone</option>' in html
    assert '<option value="sms">SMS</option>' in html


def test_the_form_streams_without_the_listed(marketer_client, listed):
    response = marketer_client.post(
        NEW,
        {"all": "on", "filter": "", "format": "csv", "columns": ["user_id"], "leave_out": "sms"},
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [["id"], ["ann"], ["dan"], ["eve"], ["fox"]]


def test_the_form_for_a_segment_in_xlsx(marketer_client, listed):
    segment = germans()
    response = marketer_client.post(
        NEW, {"segment": segment.pk, "format": "xlsx", "columns": ["user_id"], "leave_out": "email"}
    )
    assert xlsx_rows(b"".join(response.streaming_content)) == [
        ["id"],
        ["bob"],
        ["cat"],
        ["dan"],
        ["eve"],
    ]


def test_the_form_refuses_an_unknown_channel(marketer_client, listed):
    response = marketer_client.post(
        NEW,
        {"all": "on", "filter": "", "format": "csv", "columns": ["user_id"], "leave_out": "fax"},
    )
    assert response.status_code == 200
    assert "Choose a channel from the list." in response.content.decode()
    assert not Export.objects.exists()


def test_viewers_may_not_export(viewer_client, listed):
    response = viewer_client.post(
        NEW,
        {"all": "on", "filter": "", "format": "csv", "columns": ["user_id"], "leave_out": "sms"},
    )
    assert response.status_code == 403


# --- the fixed-column CSVs ------------------------------------------------------------------


def test_the_bulk_csv_leaves_out_the_listed(listed):
    lines = list(
        csv.reader(
            io.StringIO(
                "".join(
                    customers_csv(Customer.objects.all(), custom_field_specs(), leave_out="email")
                )
            )
        )
    )
    assert [row[0] for row in lines[1:]] == ["bob", "cat", "dan", "eve"]
    everyone = list(csv.reader(io.StringIO("".join(customers_csv(Customer.objects.all(), {})))))
    assert len(everyone) == 7


def test_the_segment_members_csv_leaves_out_the_listed(listed):
    segment = germans()
    rows = list(csv.reader(io.StringIO("".join(members_csv(segment, batch=2, leave_out="sms")))))
    assert [row[0] for row in rows[1:]] == ["ann", "dan", "eve"]
    assert len(list(members_csv(segment))) == 6
    with pytest.raises(ValueError):
        members_csv(segment, leave_out="fax")


def test_without_suppressed_is_one_query_per_batch(listed, django_assert_num_queries):
    members = Membership.objects.filter(segment=germans())
    with django_assert_num_queries(1):
        assert len(list(without_suppressed(members, "email", column="customer_id"))) == 4
