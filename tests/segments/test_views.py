"""The segment pages (segments/views.py) and the rules in words (segments/describe.py): list,
search and sort, a segment's page and its polled status, members, duplicate, delete (refused
while used), the CSV export, and the customer card with its explanation. Every view for
every role, with and without HX-Request where a partial exists."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from activity.models import Activity
from activity.services import Actor
from donotcontact.models import Entry
from members.roles import Role
from segments.charts import sparkline
from segments.describe import DescribeContext, annotate, condition_text, describe, summary
from segments.explain import explain
from segments.export import members_csv
from segments.fields import Registry
from segments.membership import segment_build
from segments.models import Membership, Segment, SegmentSize, SegmentStatus
from segments.selectors import encode_cursor
from segments.services import segment_create
from tags.models import CustomerTag, Tag
from tests.factories import CustomerFactory
from workbench.navigation import palette_entries, sidebar_for

ACTOR = Actor.system("tests")
HX = {"HTTP_HX_REQUEST": "true"}


def group(*children: dict, match: str = "all", negate: bool = False) -> dict:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def country(value: str, operator: str = "is") -> dict:
    return {"type": "attribute", "field": "country", "operator": operator, "value": value}


def make_segment(name: str, rules: dict, *, build: bool = True, **kwargs: Any) -> Segment:
    segment = segment_create(name=name, rules=rules, actor=ACTOR, tz="UTC", **kwargs)
    if build:
        segment_build(segment.pk)
        segment.refresh_from_db()
    return segment


@pytest.fixture
def germans(db):
    """Three customers in Germany, one in Portugal, and a built segment of the Germans."""
    people = [
        CustomerFactory(user_id="de-1", country="DE", first_name="Anna", last_name="Adler"),
        CustomerFactory(user_id="de-2", country="DE", first_name="Bernd", last_name="Bauer"),
        CustomerFactory(user_id="de-3", country="DE", first_name="Clara", last_name="Cramer"),
        CustomerFactory(user_id="pt-1", country="PT", first_name="Duarte", last_name="Dias"),
    ]
    segment = make_segment("Germans", group(country("DE")), description="Everyone in Germany")
    return segment, people


def _client(client, member):
    client.force_login(member)
    return client


# --- the list -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
def test_list_for_every_role(client, cast, germans, role):
    segment, _ = germans
    response = _client(client, cast[role]).get(reverse("segment-list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert reverse("segment-detail", args=[segment.pk]) in html
    assert "Everyone in Germany" in html
    # Predefined segments exist from the first migration and are marked as such.
    assert "Active Mobile Users" in html and ">predefined<" in html
    can_edit = role != Role.VIEWER
    assert (reverse("segment-new") in html) is can_edit
    assert (reverse("segment-duplicate", args=[segment.pk]) in html) is can_edit
    assert (reverse("segment-delete", args=[segment.pk]) in html) is can_edit


def test_list_requires_sign_in(client, db):
    response = client.get(reverse("segment-list"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get(reverse("segment-list"), **HX).status_code == 401


def test_list_htmx_renders_only_the_rows(viewer_client, germans):
    response = viewer_client.get(reverse("segment-list"), {"q": "germ"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="segment-rows"' in html
    assert "Germans" in html and "Active Mobile Users" not in html


def test_list_search_matches_name_and_description(viewer_client, germans):
    by_description = viewer_client.get(reverse("segment-list"), {"q": "everyone in"})
    assert [r["segment"].name for r in by_description.context["rows"]] == ["Germans"]
    nothing = viewer_client.get(reverse("segment-list"), {"q": "nobody-at-all"})
    assert nothing.context["rows"] == []
    assert "No segment matches" in nothing.content.decode()


def _names(response) -> list[str]:
    return [r["segment"].name for r in response.context["rows"]]


def test_list_sorts_by_every_column(viewer_client, db):
    CustomerFactory.create_batch(3, country="DE")
    CustomerFactory(country="FR")
    big = make_segment("B big", group(country("DE")), description="zz last")
    small = make_segment("A small", group(country("FR")), description="aa first")
    reader = make_segment(
        "C reader",
        group({"type": "segment", "operator": "in", "segment": big.pk}),
        description="mm",
    )
    Segment.objects.filter(pk=small.pk).update(
        created_at=timezone.now() - timedelta(days=3), updated_at=timezone.now() + timedelta(1)
    )
    ours = {big.name, small.name, reader.name}

    def order(sort: str) -> list[str]:
        response = viewer_client.get(reverse("segment-list"), {"sort": sort})
        return [n for n in _names(response) if n in ours]

    assert order("name") == ["A small", "B big", "C reader"]
    assert order("-name") == ["C reader", "B big", "A small"]
    # 1 member, then 3 and 3 (ties in id order, reversed when descending).
    assert order("size") == ["A small", "B big", "C reader"]
    assert order("-size") == ["C reader", "B big", "A small"]
    assert order("description") == ["A small", "C reader", "B big"]
    assert order("-description") == ["B big", "C reader", "A small"]
    assert order("used")[-1] == "B big"  # the only one another segment reads
    assert order("-used")[0] == "B big"
    assert order("created")[0] == "A small"
    assert order("-created")[-1] == "A small"
    assert order("updated")[-1] == "A small"
    assert order("-updated")[0] == "A small"
    # An unknown order falls back to the name.
    assert order("drop table") == ["A small", "B big", "C reader"]


def test_list_headers_toggle_direction_and_keep_the_search(viewer_client, germans):
    response = viewer_client.get(reverse("segment-list"), {"q": "ger", "sort": "size"})
    headers = {h["key"]: h for h in response.context["headers"]}
    assert set(headers) == {"name", "description", "size", "used", "created", "updated"}
    assert headers["size"]["order"] == "ascending"
    assert "sort=-size" in headers["size"]["url"] and "q=ger" in headers["size"]["url"]
    assert "sort=name" in headers["name"]["url"] and "q=ger" in headers["name"]["url"]
    assert 'aria-sort="ascending"' in response.content.decode()
    # The search form carries the chosen order along.
    assert 'name="sort" value="size" form="segment-search"' in response.content.decode()


def test_list_shows_used_by_computing_and_failed(viewer_client, germans):
    segment, _ = germans
    reader = make_segment(
        "Reads Germans", group({"type": "segment", "operator": "in", "segment": segment.pk})
    )
    computing = make_segment("Still computing", group(country("FR")), build=False)
    Segment.objects.filter(pk=computing.pk).update(build_progress=42)
    failed = make_segment("Broken", group(country("ES")), build=False)
    Segment.objects.filter(pk=failed.pk).update(status=SegmentStatus.FAILED, build_error="boom")
    response = viewer_client.get(reverse("segment-list"))
    html = response.content.decode()
    rows = {r["segment"].name: r for r in response.context["rows"]}
    assert [u.pk for u in rows["Germans"]["used_by"]] == [reader.pk]
    assert "computing…" in html and 'aria-valuenow="42"' in html
    assert ">failed<" in html and 'title="boom"' in html
    # While a segment is being built the rows poll themselves, with the same search/order.
    assert 'hx-trigger="every 2s"' in html


def test_list_shows_the_webhook_endpoints_that_name_a_segment(client, cast, germans):
    from webhooks.models import Endpoint

    segment, _ = germans
    make_segment("French", group(country("FR")))
    endpoint = Endpoint.objects.create(
        url="https://hooks.example.com/a",
        description="CRM sync",
        all_segments=False,
        segment_ids=[segment.pk],
        secret="whsec_c2VjcmV0",
    )
    # An endpoint for every segment names none of them.
    Endpoint.objects.create(url="https://hooks.example.com/b", secret="whsec_c2VjcmV0")
    link = reverse("webhook-detail", args=[endpoint.pk])

    client.force_login(cast[Role.VIEWER])
    response = client.get(reverse("segment-list"), {"sort": "-used"})
    rows = {r["segment"].name: r for r in response.context["rows"]}
    assert [e.label for e in rows["Germans"]["webhooks"]] == ["CRM sync"]
    assert rows["French"]["webhooks"] == []
    assert response.context["rows"][0]["segment"].pk == segment.pk  # the most used first
    html = response.content.decode()
    assert "CRM sync" in html and link not in html  # only Admins open endpoints

    client.force_login(cast[Role.ADMIN])
    assert link in client.get(reverse("segment-list")).content.decode()


def test_list_does_not_poll_when_all_are_ready(viewer_client, germans):
    Segment.objects.update(status=SegmentStatus.READY)
    html = viewer_client.get(reverse("segment-list")).content.decode()
    assert "every 2s" not in html


def test_list_sparkline_from_size_history(viewer_client, germans):
    segment, _ = germans
    today = timezone.localdate()
    for days, count in ((3, 1), (2, 5), (1, 2)):
        SegmentSize.objects.create(segment=segment, day=today - timedelta(days), member_count=count)
    # Older than the window: not drawn.
    SegmentSize.objects.create(segment=segment, day=today - timedelta(90), member_count=999)
    response = viewer_client.get(reverse("segment-list"))
    spark = next(r["spark"] for r in response.context["rows"] if r["segment"] == segment)
    # Today's build wrote a point too (3 members): four points in all, newest last.
    assert spark.line.count(",") == 4
    assert "999" not in spark.label and spark.label.startswith("1 on")
    assert "<svg" in response.content.decode() and "spark-line" in response.content.decode()


def test_sparkline_geometry():
    class Size:
        def __init__(self, day, count):
            self.day, self.member_count = day, count

    today = timezone.localdate()
    spark = sparkline([Size(today - timedelta(2), 10), Size(today - timedelta(1), 20)], 100, 20)
    (x0, y0), (x1, y1) = [tuple(map(float, p.split(","))) for p in spark.line.split()]
    assert x0 < x1 and y0 > y1  # time to the right, more members higher up
    assert 0 <= y1 < y0 <= 20 and (spark.end_x, spark.end_y) == (x1, y1)
    assert sparkline([], 100, 20) is None
    flat = sparkline([Size(today, 7)], 100, 20)
    assert flat.line.count(",") == 2  # one day: drawn as a flat line


# --- a segment's page -----------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
def test_detail_for_every_role(client, cast, germans, role):
    segment, people = germans
    response = _client(client, cast[role]).get(reverse("segment-detail", args=[segment.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Germans" in html and "Everyone in Germany" in html
    assert "Country is “DE”" in html  # the rules in words
    assert "Ready" in html
    for c in people[:3]:
        assert reverse("customer-detail", args=[c.pk]) in html
    assert reverse("customer-detail", args=[people[3].pk]) not in html
    can_edit = role != Role.VIEWER
    for name in ("segment-edit", "segment-export", "segment-delete", "segment-duplicate"):
        assert (reverse(name, args=[segment.pk]) in html) is can_edit


def test_detail_404_for_unknown_segment(viewer_client, db):
    assert viewer_client.get(reverse("segment-detail", args=[987654])).status_code == 404


def test_detail_shows_build_time_in_the_members_timezone(client, viewer, germans):
    segment, _ = germans
    viewer.timezone = "Asia/Tokyo"
    viewer.save()
    Segment.objects.filter(pk=segment.pk).update(built_at=datetime(2026, 1, 2, 23, 30, tzinfo=UTC))
    html = _client(client, viewer).get(reverse("segment-detail", args=[segment.pk]))
    assert "3 Jan 2026, 08:30 JST" in html.content.decode()


def test_detail_status_polls_while_computing(viewer_client, germans):
    segment, _ = germans
    Segment.objects.filter(pk=segment.pk).update(status=SegmentStatus.COMPUTING, build_progress=30)
    url = reverse("segment-detail", args=[segment.pk])
    page = viewer_client.get(url).content.decode()
    assert 'id="segment-status"' in page and 'hx-trigger="every 2s"' in page
    assert 'aria-valuenow="30"' in page
    poll = viewer_client.get(url, HTTP_HX_TARGET="segment-status", **HX)
    html = poll.content.decode()
    assert "<html" not in html and 'id="segment-status"' in html and "every 2s" in html
    assert "Members" in html and "Rules" not in html
    assert "HX-Trigger" not in poll.headers
    # The build finishes: the status stops polling and tells the members list to reload.
    Segment.objects.filter(pk=segment.pk).update(status=SegmentStatus.READY, build_progress=100)
    done = viewer_client.get(url, HTTP_HX_TARGET="segment-status", **HX)
    assert "every 2s" not in done.content.decode() and "Ready" in done.content.decode()
    assert json.loads(done.headers["HX-Trigger"]) == {"segment-built": {}}


def test_detail_shows_a_failed_build(viewer_client, germans):
    segment, _ = germans
    Segment.objects.filter(pk=segment.pk).update(
        status=SegmentStatus.FAILED, build_error="statement timeout"
    )
    html = viewer_client.get(reverse("segment-detail", args=[segment.pk])).content.decode()
    assert "Failed" in html and "statement timeout" in html and "every 2s" not in html


def test_detail_members_search_and_htmx_partial(viewer_client, germans):
    segment, people = germans
    url = reverse("segment-detail", args=[segment.pk])
    response = viewer_client.get(url, {"q": "de-2"}, **HX)
    html = response.content.decode()
    assert "<html" not in html and 'id="members"' in html
    assert [c.user_id for c, _ in response.context["members"]] == ["de-2"]
    # The list reloads itself with the same search when a build finishes.
    assert 'hx-trigger="segment-built from:body"' in html and "q=de-2" in html
    full = viewer_client.get(url, {"q": "Clara"})
    assert [c.user_id for c, _ in full.context["members"]] == ["de-3"]
    assert "<html" in full.content.decode()


def test_detail_members_keyset_pages(viewer_client, db):
    customers = CustomerFactory.create_batch(53, country="NL")
    segment = make_segment("Dutch", group(country("NL")))
    url = reverse("segment-detail", args=[segment.pk])
    first = viewer_client.get(url)
    shown = [c.pk for c, entered in first.context["members"]]
    assert shown == [c.pk for c in customers[:50]]
    assert all(entered is not None for _, entered in first.context["members"])
    next_url = first.context["next_url"]
    assert next_url and "cursor=" in next_url and "Next page" in first.content.decode()
    second = viewer_client.get(next_url, **HX)
    assert [c.pk for c, _ in second.context["members"]] == [c.pk for c in customers[50:]]
    assert second.context["next_url"] == "" and second.context["paged"]
    # A mangled cursor starts again from the first page.
    again = viewer_client.get(url, {"cursor": "not-a-cursor"})
    assert [c.pk for c, _ in again.context["members"]][:1] == [customers[0].pk]
    past = viewer_client.get(url, {"cursor": encode_cursor(customers[-1].pk)})
    assert past.context["members"] == []


def test_detail_lists_segments_that_use_it(viewer_client, germans):
    segment, _ = germans
    reader = make_segment(
        "Not German", group({"type": "segment", "operator": "not_in", "segment": segment.pk})
    )
    html = viewer_client.get(reverse("segment-detail", args=[segment.pk])).content.decode()
    assert "Not German" in html and reverse("segment-detail", args=[reader.pk]) in html
    reader_page = viewer_client.get(reverse("segment-detail", args=[reader.pk])).content.decode()
    assert "is not in the segment “Germans”" in reader_page


# --- duplicate ------------------------------------------------------------------------------


def test_duplicate_is_for_marketers(viewer_client, germans):
    segment, _ = germans
    url = reverse("segment-duplicate", args=[segment.pk])
    assert viewer_client.post(url).status_code == 403
    assert Segment.objects.filter(name__startswith="Copy of").count() == 0


@pytest.mark.parametrize("role", [Role.MARKETER, Role.ADMIN])
def test_duplicate_creates_a_copy_and_opens_it(client, cast, germans, role):
    segment, _ = germans
    c = _client(client, cast[role])
    response = c.post(reverse("segment-duplicate", args=[segment.pk]), follow=True)
    copy = Segment.objects.get(name="Copy of Germans")
    assert response.redirect_chain[-1][0] == reverse("segment-detail", args=[copy.pk])
    assert copy.rules == segment.rules and copy.description == segment.description
    assert copy.status == SegmentStatus.COMPUTING
    assert "Duplicated as “Copy of Germans”" in response.content.decode()
    c.post(reverse("segment-duplicate", args=[segment.pk]))
    assert Segment.objects.filter(name="Copy of Germans (2)").exists()


def test_duplicate_only_by_post(marketer_client, germans):
    segment, _ = germans
    assert marketer_client.get(reverse("segment-duplicate", args=[segment.pk])).status_code == 405


def test_duplicate_reports_rules_that_no_longer_validate(marketer_client, db):
    Tag.objects.create(name="VIP")
    segment = make_segment(
        "VIPs", group({"type": "tag", "operator": "has_any", "tags": ["VIP"]}), build=False
    )
    Tag.objects.all().delete()
    response = marketer_client.post(reverse("segment-duplicate", args=[segment.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("segment-detail", args=[segment.pk])
    assert "could not be duplicated" in response.content.decode()
    assert not Segment.objects.filter(name__startswith="Copy of").exists()


# --- delete ---------------------------------------------------------------------------------


def test_delete_is_for_marketers(viewer_client, germans):
    segment, _ = germans
    url = reverse("segment-delete", args=[segment.pk])
    assert viewer_client.get(url).status_code == 403
    assert viewer_client.post(url).status_code == 403
    assert Segment.objects.filter(pk=segment.pk).exists()


def test_delete_confirm_page_and_partial(marketer_client, germans):
    segment, _ = germans
    url = reverse("segment-delete", args=[segment.pk])
    page = marketer_client.get(url).content.decode()
    assert "<html" in page and "Delete “Germans”?" in page and "Delete segment" in page
    partial = marketer_client.get(url, **HX).content.decode()
    assert "<html" not in partial and "Delete “Germans”?" in partial


@pytest.mark.parametrize("role", [Role.MARKETER, Role.ADMIN])
def test_delete_removes_the_segment(client, cast, germans, role):
    segment, _ = germans
    response = _client(client, cast[role]).post(
        reverse("segment-delete", args=[segment.pk]), follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("segment-list")
    assert "Segment “Germans” deleted." in response.content.decode()
    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert not Membership.objects.filter(segment_id=segment.pk).exists()


def test_delete_refused_while_another_segment_uses_it(marketer_client, germans):
    segment, _ = germans
    make_segment("Reads it", group({"type": "segment", "operator": "in", "segment": segment.pk}))
    url = reverse("segment-delete", args=[segment.pk])
    confirm = marketer_client.get(url).content.decode()
    assert "cannot be deleted yet" in confirm and "Reads it" in confirm
    assert "Delete segment</button>" not in confirm
    response = marketer_client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == url
    html = response.content.decode()
    assert "was not deleted" in html and "“Reads it”" in html
    assert Segment.objects.filter(pk=segment.pk).exists()


# --- export ---------------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_export_is_for_marketers(viewer_client, germans):
    segment, _ = germans
    assert viewer_client.get(reverse("segment-export", args=[segment.pk])).status_code == 403


@pytest.mark.parametrize("role", [Role.MARKETER, Role.ADMIN])
def test_export_streams_the_members(client, cast, germans, role):
    segment, people = germans
    response = _client(client, cast[role]).get(reverse("segment-export", args=[segment.pk]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="segment-{segment.pk}-' in response["Content-Disposition"]
    rows = _csv(response)
    assert rows[0] == [
        "user_id",
        "name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "country",
        "entered_at",
    ]
    assert [r[0] for r in rows[1:]] == ["de-1", "de-2", "de-3"]
    first = rows[1]
    assert first[1:5] == ["Anna Adler", "Anna", "Adler", "de-1@example.com"]
    assert first[6] == "DE" and first[7].startswith(str(timezone.now().year))
    assert Activity.objects.filter(action="segment.exported", target_id=segment.pk).exists()


def test_export_can_leave_out_suppressed_members(marketer_client, germans):
    segment, _ = germans
    Entry.objects.create(contact="de-2@example.com", channel="email")
    url = reverse("segment-export", args=[segment.pk])
    rows = _csv(marketer_client.get(url, {"leave_out": "email"}))
    assert [r[0] for r in rows[1:]] == ["de-1", "de-3"]
    rows = _csv(marketer_client.get(url, {"leave_out": "sms"}))
    assert [r[0] for r in rows[1:]] == ["de-1", "de-2", "de-3"]
    refused = marketer_client.get(url, {"leave_out": "fax"})
    assert refused.status_code == 400 and b"Unknown channel" in refused.content


def test_export_escapes_formulas(marketer_client, db):
    CustomerFactory(
        user_id="=HYPERLINK(1)",
        country="DE",
        first_name="+cmd",
        last_name="-2",
        name="@SUM(A1)",
        phone="+351 912 345 678",
    )
    segment = make_segment("Formulas", group(country("DE")))
    rows = _csv(marketer_client.get(reverse("segment-export", args=[segment.pk])))
    user_id, name, first, last, email, phone, *_ = rows[1]
    assert user_id == "'=HYPERLINK(1)"
    assert (name, first, last) == ("'@SUM(A1)", "'+cmd", "'-2")
    assert phone == "'+351 912 345 678"
    assert email == "'=HYPERLINK(1)@example.com"


def test_export_reads_in_keyset_batches(db):
    people = CustomerFactory.create_batch(5, country="SE")
    segment = make_segment("Swedes", group(country("SE")))
    lines = list(members_csv(segment, batch=2))
    assert len(lines) == 6  # header + every member once, across three batches
    assert [line.split(",")[0] for line in lines[1:]] == [c.user_id for c in people]


def test_export_of_an_empty_segment_is_just_the_header(marketer_client, db):
    segment = make_segment("Nobody", group(country("AQ")))
    rows = _csv(marketer_client.get(reverse("segment-export", args=[segment.pk])))
    assert len(rows) == 1


# --- the customer card and the explanation --------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
def test_customer_card_for_every_role(client, cast, germans, role):
    segment, people = germans
    c = _client(client, cast[role])
    url = reverse("customer-segments", args=[people[0].pk])
    partial = c.get(url, **HX)
    html = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in html
    assert 'id="customer-segments"' in html
    assert reverse("segment-detail", args=[segment.pk]) in html and "since" in html
    # Every segment can be asked about, through the explanation's URL.
    assert reverse("customer-segment-explain", args=[people[0].pk, segment.pk]) in html
    page = c.get(url)
    assert page.status_code == 200 and "<html" in page.content.decode()


def test_customer_card_for_a_customer_in_no_segment(viewer_client, germans):
    _, people = germans
    response = viewer_client.get(reverse("customer-segments", args=[people[3].pk]), **HX)
    html = response.content.decode()
    assert "Not in any segment." in html
    assert [s.name for s, _ in response.context["memberships"]] == []


def test_customer_card_requires_sign_in_and_a_customer(client, viewer, germans):
    _, people = germans
    url = reverse("customer-segments", args=[people[0].pk])
    assert client.get(url).status_code == 302
    assert client.get(url, **HX).status_code == 401
    client.force_login(viewer)
    assert client.get(reverse("customer-segments", args=[999999])).status_code == 404


def test_customer_page_loads_the_card(viewer_client, germans):
    _, people = germans
    html = viewer_client.get(reverse("customer-detail", args=[people[0].pk])).content.decode()
    url = reverse("customer-segments", args=[people[0].pk])
    assert f'hx-get="{url}"' in html and 'hx-trigger="load"' in html
    assert f'href="{url}"' in html  # reachable without JavaScript too


def test_customer_card_without_javascript_goes_to_the_explanation(viewer_client, germans):
    segment, people = germans
    url = reverse("customer-segments", args=[people[0].pk])
    response = viewer_client.get(url, {"why": segment.pk})
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "customer-segment-explain", args=[people[0].pk, segment.pk]
    )
    assert viewer_client.get(url, {"why": "nope"}).status_code == 404


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
def test_explain_a_member(client, cast, germans, role):
    segment, people = germans
    url = reverse("customer-segment-explain", args=[people[0].pk, segment.pk])
    response = _client(client, cast[role]).get(url, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Is a member" in html and "the rules hold" in html
    assert "Country is “DE”" in html and "seen:</span> “DE”" in html
    assert "✓" in html and "✗" not in html
    line = response.context["explained"]
    assert line.held is True and line.children[0].held is True


def test_explain_a_non_member(viewer_client, germans):
    segment, people = germans
    url = reverse("customer-segment-explain", args=[people[3].pk, segment.pk])
    html = viewer_client.get(url, **HX).content.decode()
    assert "Is not a member" in html and "the rules do not hold" in html
    assert "seen:</span> “PT”" in html and "✗" in html


def test_explain_full_page_without_htmx(viewer_client, germans):
    segment, people = germans
    url = reverse("customer-segment-explain", args=[people[0].pk, segment.pk])
    html = viewer_client.get(url).content.decode()
    assert "<html" in html and "Is a member" in html
    assert 'id="customer-segments"' in html  # the card, with this segment chosen
    assert f'value="{segment.pk}" data-url="{url}" selected' in html


def test_explain_says_when_membership_is_being_updated(viewer_client, germans):
    segment, people = germans
    # Changed behind incremental evaluation's back: stored membership lags the rules.
    type(people[0]).objects.filter(pk=people[0].pk).update(country="FR")
    type(people[3]).objects.filter(pk=people[3].pk).update(country="DE")
    leaving = viewer_client.get(
        reverse("customer-segment-explain", args=[people[0].pk, segment.pk]), **HX
    ).content.decode()
    assert "Is a member" in leaving and "no longer matches" in leaving
    assert "being updated" in leaving
    joining = viewer_client.get(
        reverse("customer-segment-explain", args=[people[3].pk, segment.pk]), **HX
    ).content.decode()
    assert "Is not a member" in joining and "yet but matches" in joining


def test_explain_404s(viewer_client, germans):
    segment, people = germans
    missing_segment = reverse("customer-segment-explain", args=[people[0].pk, 999999])
    missing_customer = reverse("customer-segment-explain", args=[999999, segment.pk])
    assert viewer_client.get(missing_segment).status_code == 404
    assert viewer_client.get(missing_customer).status_code == 404


def test_explain_nested_groups_events_and_tags(viewer_client, db):
    vip = Tag.objects.create(name="VIP")
    customer = CustomerFactory(country="DE")
    CustomerTag.objects.create(customer=customer, tag=vip)
    rules = group(
        country("DE"),
        group(
            {
                "type": "event",
                "name": "purchase",
                "count": {"operator": "gte", "value": 3},
                "time": {"operator": "within_last", "value": 30, "unit": "days"},
            },
            {"type": "tag", "operator": "has_any", "tags": ["VIP"]},
            match="any",
        ),
    )
    segment = make_segment("Nested", rules)
    url = reverse("customer-segment-explain", args=[customer.pk, segment.pk])
    html = viewer_client.get(url, **HX).content.decode()
    assert "All of" in html and "Any of" in html
    assert "purchase at least 3 times in the last 30 days" in html
    assert "seen:</span> 0 matching events" in html
    assert "has the tag VIP" in html


# --- the rules in words ---------------------------------------------------------------------


@pytest.fixture
def words(db) -> DescribeContext:
    return DescribeContext(registry=Registry.load(), segment_names={7: "Big spenders"})


@pytest.mark.parametrize(
    ("node", "text"),
    [
        (country("DE"), "Country is “DE”"),
        (country("DE", "is_not"), "Country is not “DE”"),
        ({"type": "attribute", "field": "city", "operator": "is_empty"}, "City is empty"),
        (
            {"type": "attribute", "field": "city", "operator": "starts_with", "value": "Lo"},
            "City starts with “Lo”",
        ),
        (
            {"type": "attribute", "field": "user_type", "operator": "is", "value": "test"},
            "User type is “Test”",
        ),
        (
            {
                "type": "attribute",
                "field": "last_seen",
                "operator": "was_within",
                "value": 7,
                "unit": "days",
            },
            "Last seen was within the last 7 days",
        ),
        (
            {
                "type": "attribute",
                "field": "last_seen",
                "operator": "was_more_than",
                "value": 1,
                "unit": "weeks",
            },
            "Last seen was more than 1 week ago",
        ),
        (
            {
                "type": "attribute",
                "field": "created_at",
                "operator": "before",
                "value": "2024-05-01",
            },
            "Created is before 1 May 2024",
        ),
        (
            {
                "type": "attribute",
                "field": "created_at",
                "operator": "since",
                "value": "2024-05-01T07:30:00Z",
            },
            "Created is on or after 1 May 2024, 07:30 UTC",
        ),
        (
            {"type": "attribute", "field": "custom.gone", "operator": "is", "value": "x"},
            "gone (a deleted field) is “x”",
        ),
        (
            {
                "type": "event",
                "name": "purchase",
                "count": {"operator": "gte", "value": 3},
                "time": {"operator": "within_last", "value": 30, "unit": "days"},
                "properties": [],
            },
            "purchase at least 3 times in the last 30 days",
        ),
        (
            {
                "type": "event",
                "name": "app-launch",
                "count": {"operator": "lt", "value": 1},
                "time": {"operator": "within_last", "value": 30, "unit": "days"},
                "properties": [],
            },
            "no app-launch in the last 30 days",
        ),
        (
            {
                "type": "event",
                "name": "purchase",
                "count": {"operator": "eq", "value": 2},
                "time": {"operator": "between_last", "value": [7, 30], "unit": "days"},
                "properties": [{"key": "amount", "operator": "gt", "value": 100}],
            },
            "purchase exactly twice between 7 and 30 days ago where amount is more than 100",
        ),
        (
            {
                "type": "event",
                "name": "login",
                "count": {"operator": "gte", "value": 1},
                "time": {"operator": "any_time"},
                "properties": [{"key": "plan", "operator": "is", "value": "pro"}],
            },
            "login at least once where plan is “pro”",
        ),
        ({"type": "tag", "operator": "has_any", "tags": ["VIP"]}, "has the tag VIP"),
        (
            {"type": "tag", "operator": "has_all", "tags": ["VIP", "EU"]},
            "has all of the tags VIP, EU",
        ),
        (
            {
                "type": "tag",
                "operator": "has_none",
                "tags": ["VIP"],
                "within": {"value": 7, "unit": "days"},
            },
            "does not have the tag VIP (added in the last 7 days)",
        ),
        (
            {"type": "segment", "operator": "in", "segment": 7},
            "is in the segment “Big spenders”",
        ),
        (
            {"type": "segment", "operator": "not_in", "segment": 8},
            "is not in the segment #8 (a deleted segment)",
        ),
    ],
)
def test_condition_in_words(words, node, text):
    assert condition_text(node, words) == text


def test_groups_in_words(words):
    tree = group(
        country("DE"),
        group(
            {"type": "tag", "operator": "has_any", "tags": ["VIP"]},
            country("FR"),
            match="any",
        ),
        group(country("PT"), match="any", negate=True),
        group(country("ES"), negate=True),
    )
    line = describe(tree, words)
    assert line.is_group and line.text == "All of"
    assert [c.text for c in line.children] == ["Country is “DE”", "Any of", "None of", "Not all of"]
    assert line.children[1].children[0].node == "children[1].children[0]"
    assert summary(tree, words) == (
        "All of: Country is “DE”; Any of (has the tag VIP; Country is “FR”); "
        "None of (Country is “PT”); Not all of (Country is “ES”)"
    )


def test_annotated_explanation_in_words(germans):
    segment, people = germans
    result = explain(segment, people[3].pk)
    line = annotate(result["rules"], DescribeContext.load(segment.rules))
    assert line.held is False
    (only,) = line.children
    assert (only.text, only.held, only.seen) == ("Country is “DE”", False, "“PT”")


def test_seen_values_in_words(db):
    from segments.describe import seen_text

    ctx = DescribeContext(registry=Registry.load())
    event = {"type": "event", "name": "purchase"}
    assert seen_text(event, 0, ctx) == "0 matching events"
    assert seen_text(event, 1, ctx) == "1 matching event"
    assert seen_text({"type": "tag", "tags": ["A", "B"]}, "A", ctx) == "has A"
    assert seen_text({"type": "tag", "tags": ["A", "B"]}, "", ctx) == "has none of them"
    assert seen_text({"type": "tag", "tags": ["A"]}, "", ctx) == "does not have it"
    assert seen_text({"type": "segment"}, True, ctx) == "is in it"
    assert seen_text({"type": "attribute", "field": "city"}, None, ctx) == "no value"
    seen_time = seen_text(
        {"type": "attribute", "field": "last_seen"}, "2026-11-20 10:52:00+00", ctx
    )
    assert seen_time == "20 Nov 2026, 10:52 UTC"


# --- navigation -----------------------------------------------------------------------------


def test_navigation_lists_segments(cast):
    for role in (Role.VIEWER, Role.MARKETER, Role.ADMIN):
        top = sidebar_for(cast[role])[0][1]
        assert [e.label for e in top][:2] == ["Customers", "Segments"]
        assert top[1].url == reverse("segment-list")
    actions = {
        role: [e.label for kind, e in palette_entries(cast[role]) if kind == "Action"]
        for role in cast
    }
    assert "New segment" in actions[Role.MARKETER] and "New segment" in actions[Role.ADMIN]
    assert "New segment" not in actions[Role.VIEWER]
