"""The export pages (exports/views.py): the form from the Customers list and from a segment,
the streamed download, the background build's redirect, the Exports page and its polling, the
download link's permissions, and the old bulk export URL kept for scripts."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from activity.models import Activity
from activity.services import Actor
from exports.models import Export
from exports.tasks import build_export
from members.roles import Role
from segments.membership import segment_build
from segments.services import segment_create
from tests.exports.conftest import xlsx_rows
from tests.factories import CustomerFactory, MemberFactory

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
NEW = "/exports/new/"


def body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body(response).decode())))


def test_list_button_opens_the_export_form_for_the_selection(marketer_client):
    people = CustomerFactory.create_batch(3)
    page = marketer_client.get(reverse("customer-list")).content.decode()
    assert f'formaction="{NEW}"' in page and ">Export…</button>" in page

    ids = [people[0].pk, people[2].pk]
    response = marketer_client.post(NEW, {"ids": ids, "action": "export", "filter": "sort=name"})
    html = response.content.decode()
    assert response.status_code == 200 and "2 selected customers" in html
    for pk in ids:
        assert f'<input type="hidden" name="ids" value="{pk}">' in html
    assert 'name="columns" value="email" checked' in html  # today's columns ticked
    assert 'name="columns" value="entered_at"' not in html  # only for segments
    assert 'name="format" value="csv" checked' in html


def test_form_streams_the_chosen_columns_in_order(marketer_client):
    a, b, _ = (CustomerFactory(user_id=f"u{i}", country=c) for i, c in enumerate("ABC"))
    response = marketer_client.post(
        NEW, {"ids": [a.pk, b.pk], "format": "csv", "columns": ["country", "user_id"]}
    )
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="customers-')
    assert csv_rows(response) == [["country", "id"], ["A", "u0"], ["B", "u1"]]
    assert Activity.objects.get(action="customers.exported").count == 2


def test_form_streams_xlsx_of_all_matching_the_filter(marketer_client):
    CustomerFactory(user_id="de1", country="DE")
    CustomerFactory(user_id="fr1", country="FR")
    response = marketer_client.post(
        NEW, {"all": "on", "filter": "country=DE", "format": "xlsx", "columns": ["user_id"]}
    )
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert response["Content-Disposition"].endswith('.xlsx"')
    assert xlsx_rows(body(response)) == [["id"], ["de1"]]


def test_form_needs_a_column(marketer_client):
    c = CustomerFactory()
    response = marketer_client.post(NEW, {"ids": [c.pk], "format": "csv"})
    assert response.status_code == 200 and b"Choose at least one column." in response.content


def test_form_without_a_selection_goes_back_to_the_list(marketer_client):
    response = marketer_client.post(NEW, {"action": "export", "filter": "country=DE"}, follow=True)
    assert response.redirect_chain[-1][0] == "/customers/?country=DE"
    assert b"Select at least one customer" in response.content


def test_get_without_a_source_exports_everyone(marketer_client):
    response = marketer_client.get(NEW)
    assert response.status_code == 200 and b"All customers" in response.content


def test_segment_page_links_to_the_export_form(marketer_client):
    CustomerFactory(user_id="de1", country="DE")
    segment = segment_create(
        name="Germans",
        rules={
            "type": "group",
            "match": "all",
            "children": [
                {"type": "attribute", "field": "country", "operator": "is", "value": "DE"}
            ],
        },
        actor=Actor.system("tests"),
        tz="UTC",
    )
    segment_build(segment.pk)
    detail = marketer_client.get(reverse("segment-detail", args=[segment.pk])).content.decode()
    assert f'href="{NEW}?segment={segment.pk}"' in detail
    assert reverse("segment-export", args=[segment.pk]) in detail  # the CSV link stays

    form = marketer_client.get(NEW, {"segment": segment.pk}).content.decode()
    assert "Segment “Germans” (1)" in form
    assert 'name="columns" value="entered_at" checked' in form
    assert f'<input type="hidden" name="segment" value="{segment.pk}">' in form

    response = marketer_client.post(
        NEW, {"segment": segment.pk, "format": "csv", "columns": ["user_id", "country"]}
    )
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="segment-{segment.pk}-'
    )
    assert csv_rows(response) == [["id", "country"], ["de1", "DE"]]
    assert Activity.objects.get(action="segment.exported").target_id == segment.pk


def test_unknown_segment_is_404(marketer_client):
    assert marketer_client.get(NEW, {"segment": 987654}).status_code == 404


# --- the background path and the Exports page ------------------------------------------------


@pytest.fixture
def built(marketer_client, background, sent, django_capture_on_commit_callbacks):
    """A background export of three customers, made by the marketer and built."""
    people = CustomerFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            NEW,
            {"ids": [c.pk for c in people], "format": "xlsx", "columns": ["user_id", "email"]},
        )
    assert response.status_code == 302 and response["Location"] == reverse("export-list")
    export = Export.objects.get()
    assert sent == [("build_export", (export.pk,))]
    return export


def test_large_export_waits_on_the_exports_page_while_it_runs(marketer_client, built):
    Export.objects.filter(pk=built.pk).update(status="running", progress=1, expected_rows=3)
    page = marketer_client.get(reverse("export-list")).content.decode()
    assert "3 selected customers" in page
    assert 'hx-trigger="every 2s"' in page and 'aria-valuenow="33"' in page
    assert reverse("export-download", args=[built.pk]) not in page

    poll = marketer_client.get(reverse("export-list"), **HX).content.decode()
    assert poll.lstrip().startswith('<div id="exports"') and "<html" not in poll

    build_export.fn(built.pk)
    done = marketer_client.get(reverse("export-list"), **HX).content.decode()
    assert "every 2s" not in done  # polling stops once nothing is running
    assert reverse("export-download", args=[built.pk]) in done


def test_download_by_its_maker_and_by_an_admin(marketer_client, admin_client, built):
    build_export.fn(built.pk)
    url = reverse("export-download", args=[built.pk])
    for client in (marketer_client, admin_client):
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith('attachment; filename="customers-')
        rows = xlsx_rows(body(response))
        assert rows[0] == ["id", "email"] and len(rows) == 4


def test_another_marketer_cannot_see_or_download(client, built):
    build_export.fn(built.pk)
    other = MemberFactory(role=Role.MARKETER, email="other@test.example")
    client.force_login(other)
    assert client.get(reverse("export-download", args=[built.pk])).status_code == 404
    page = client.get(reverse("export-list")).content.decode()
    assert "No exports yet" in page


def test_download_is_404_until_ready_and_after_expiry(marketer_client, built, exports_dir):
    url = reverse("export-download", args=[built.pk])
    assert marketer_client.get(url).status_code == 404  # queued
    build_export.fn(built.pk)
    (exports_dir / Export.objects.get().file_path).unlink()
    assert marketer_client.get(url).status_code == 404  # the file is gone


def test_viewers_may_not_export(viewer_client):
    c = CustomerFactory()
    assert viewer_client.get(NEW).status_code == 403
    data = {"ids": [c.pk], "format": "csv", "columns": ["user_id"]}
    assert viewer_client.post(NEW, data).status_code == 403
    assert viewer_client.get(reverse("export-list")).status_code == 403
    assert viewer_client.get(reverse("export-download", args=[1])).status_code == 403


def test_sidebar_lists_exports_for_marketers(marketer_client, viewer_client):
    link = f'href="{reverse("export-list")}"'
    assert link in marketer_client.get(reverse("customer-list")).content.decode()
    assert link not in viewer_client.get(reverse("customer-list")).content.decode()


# --- the bulk action's URL, kept for scripts -------------------------------------------------


def test_bulk_export_without_a_format_is_todays_csv(marketer_client):
    c = CustomerFactory(user_id="u1")
    response = marketer_client.post("/customers/bulk/", {"ids": [c.pk], "action": "export"})
    rows = csv_rows(response)
    assert rows[0][:3] == ["id", "name", "first_name"] and rows[1][0] == "u1"


def test_bulk_export_with_a_format_uses_the_chosen_columns(marketer_client):
    c = CustomerFactory(user_id="u1", country="PT")
    response = marketer_client.post(
        "/customers/bulk/",
        {"ids": [c.pk], "action": "export", "format": "csv", "columns": ["country", "user_id"]},
    )
    assert csv_rows(response) == [["country", "id"], ["PT", "u1"]]
