"""The Do Not Contact condition in the segment builder: picked from the lists, drawn with a
channel select and optional sender and account, read back from the form into the same rules
(with and without htmx), problems placed on the condition, and the preview's reachable counts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from donotcontact.models import Entry
from segments.builder_draft import draft_apply, draft_check
from segments.builder_form import Catalog, draft_from_form, draft_rules
from segments.models import Segment
from segments.services import segment_rules_clean
from tests.factories import CustomerFactory
from tests.segments.test_builder import (
    BUILDER,
    NEW,
    element_text,
    form_data,
    group,
    htmx,
    make,
    querydict,
)

pytestmark = pytest.mark.django_db

BASE = {"r.kind": "group", "r.match": "all", "name": "Reachable", "timezone": "UTC"}


def dnc_form(op="is", channel="", sender="", account="") -> dict[str, str]:
    return {
        **BASE,
        "r.c0.kind": "do_not_contact",
        "r.c0.op": op,
        "r.c0.channel": channel,
        "r.c0.sender": sender,
        "r.c0.account": account,
    }


def test_the_picker_offers_the_condition_and_picking_draws_it():
    catalog = Catalog.load()
    draft = group({"type": "pick"})
    draft_apply(draft, "pick:r.c0:do_not_contact:any", catalog)
    assert draft["children"][0] == {
        "type": "do_not_contact",
        "operator": "is",
        "channel": None,
        "sender": None,
        "account": None,
    }
    assert draft_check(draft, catalog.registry).held_back == set()
    tree, _ = draft_rules(draft)
    assert segment_rules_clean(tree, "UTC")["children"] == [
        {"type": "do_not_contact", "operator": "is", "channel": None}
    ]
    # Something not on offer leaves the placeholder alone.
    other = group({"type": "pick"})
    draft_apply(other, "pick:r.c0:do_not_contact:fax", catalog)
    assert other["children"][0] == {"type": "pick"}


@pytest.mark.parametrize("with_htmx", [True, False])
def test_picking_through_the_endpoint(marketer_client, with_htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if with_htmx else {}
    added = marketer_client.post(BUILDER, {**BASE, "action": "add:r"}, **headers).content.decode()
    assert 'value="pick:r.c0:do_not_contact:any"' in added
    assert 'value="pick:r.c0:do_not_contact:sms"' in added
    picked_sms = marketer_client.post(
        BUILDER, {**BASE, "r.c0.kind": "pick", "action": "pick:r.c0:do_not_contact:sms"}, **headers
    ).content.decode()
    assert '<option value="sms" selected>SMS</option>' in picked_sms
    picked = marketer_client.post(
        BUILDER, {**BASE, "r.c0.kind": "pick", "action": "pick:r.c0:do_not_contact:any"}, **headers
    ).content.decode()
    assert 'name="r.c0.kind" value="do_not_contact"' in picked
    assert '<option value="" selected>any channel</option>' in picked
    assert '<option value="sms">SMS</option>' in picked
    assert 'name="r.c0.sender"' in picked and 'placeholder="any sender"' in picked
    assert ("<html" in picked) is not with_htmx


@pytest.mark.parametrize(
    "node",
    [
        {"type": "do_not_contact", "operator": "is_not", "channel": "email"},
        {"type": "do_not_contact", "operator": "is", "channel": None},
        {
            "type": "do_not_contact",
            "operator": "is",
            "channel": "whatsapp",
            "sender": "Acme",
            "account": "eu-1",
        },
    ],
)
def test_the_edit_form_round_trip_keeps_the_rules(marketer_client, node):
    segment = make("DNC", group(node))
    html = marketer_client.get(reverse("segment-edit", args=[segment.pk])).content.decode()
    data = form_data(html)
    catalog = Catalog.load(exclude_segment=segment.pk)
    draft = draft_from_form(querydict(data), catalog)
    tree, _ = draft_rules(draft, draft_check(draft, catalog.registry).held_back)
    assert segment_rules_clean(tree, "UTC", segment.pk) == segment.rules
    assert segment.rules["children"] == [node]


def test_the_preview_shows_the_count_and_reachable_counts(marketer_client):
    ann = CustomerFactory(user_id="ann", email="ann@x.io", phone="+4711111111")
    CustomerFactory(user_id="bob", email="bob@x.io", phone="")
    CustomerFactory(user_id="cat", email="cat@x.io", phone="+4733333333")
    Entry.objects.create(contact="bob@x.io", channel="email")
    Entry.objects.create(contact="+4733333333", channel="sms")
    data = dnc_form("is_not", "email")

    partial = htmx(marketer_client, data, HTTP_HX_TRIGGER="segment-form").content.decode()
    assert partial.lstrip().startswith('<aside id="preview"')
    assert 'data-count="2"' in partial  # ann and cat
    assert f'href="/customers/{ann.pk}/"' in partial
    # The reachable counts come after the count: the preview asks for them once shown.
    assert 'id="preview-reach"' not in partial
    assert """hx-vals='{"action": "details"}'""" in partial and 'hx-trigger="load"' in partial
    counts = htmx(marketer_client, {**data, "action": "details"}).content.decode()
    reach = element_text(counts, "preview-reach")
    assert reach == "Email 2 SMS 1 WhatsApp 2 Viber 2 RCS 2 Voice 2 Push 0"

    page = marketer_client.post(BUILDER, data).content.decode()  # without htmx: the page
    assert "<html" in page and element_text(page, "preview-reach") == reach


def test_reachable_counts_of_rules_no_longer_complete_are_left_to_the_next_preview(
    marketer_client,
):
    broken = {**dnc_form("is", "fax"), "action": "details"}
    assert htmx(marketer_client, broken).content.decode() == ""


def test_problems_land_on_the_condition(marketer_client):
    html = htmx(
        marketer_client, dnc_form("is", "fax", sender="x" * 101), HTTP_HX_TRIGGER="segment-form"
    ).content.decode()
    status = element_text(html, "st-r-c0")
    assert "channel" in status
    assert "Fix the problems marked in the rules" in html


def test_create_saves_the_condition(marketer_client):
    response = marketer_client.post(
        NEW, {**dnc_form("is", "sms", sender=" Acme "), "action": "save"}
    )
    assert response.status_code == 302
    segment = Segment.objects.get(name="Reachable")
    assert segment.rules["children"] == [
        {"type": "do_not_contact", "operator": "is", "channel": "sms", "sender": "Acme"}
    ]
    detail = marketer_client.get(reverse("segment-detail", args=[segment.pk])).content.decode()
    assert "is on the Do Not Contact list for SMS (sender “Acme”)" in detail


def test_viewers_may_not_preview_it(viewer_client):
    assert viewer_client.post(BUILDER, dnc_form(), HTTP_HX_REQUEST="true").status_code == 403
    assert viewer_client.post(NEW, {**dnc_form(), "action": "save"}).status_code == 403
    assert not Segment.objects.filter(name="Reachable").exists()
