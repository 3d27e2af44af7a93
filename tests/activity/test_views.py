from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.template.loader import render_to_string

from activity import selectors
from activity.actions import action_label
from activity.models import Activity
from activity.selectors import activity_for_customer
from activity.services import Actor, activity_record
from customers.services import customer_erase
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

URL = "/settings/activity/"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _entry(action="customer.updated", target_type="customer", at=None, **kwargs):
    kwargs.setdefault("actor_label", "someone@test.example")
    kwargs.setdefault("source", "ui")
    return Activity.objects.create(action=action, target_type=target_type, at=at or T0, **kwargs)


def _actions(response):
    return [e.action for e in response.context["page"].entries]


def test_newest_first_in_plain_words(marketer_client, marketer):
    customer = CustomerFactory(user_id="u-1")
    actor = Actor("ui", member=marketer)
    activity_record(
        actor,
        "customer.updated",
        target_type="customer",
        target_id=customer.pk,
        target_label="u-1",
        fields=["city", "email"],
        changes={"city": "Porto"},
    )
    activity_record(
        actor,
        "customers.tagged",
        target_type="customer",
        fields=["tags"],
        changes={"tags": ["vip", "gold"], "assignments": 1204},
        count=1204,
    )
    response = marketer_client.get(URL)
    assert _actions(response) == ["customers.tagged", "customer.updated"]
    html = response.content.decode()
    assert "Tagged customers" in html and "Updated customer" in html
    assert "1,204 customers" in html
    assert "city, email" in html  # fields changed
    assert "<dt>city</dt><dd>Porto</dd>" in html  # a non-personal value
    assert "<dt>tags</dt><dd>vip, gold</dd>" in html
    assert f'<a class="mono" href="/customers/{customer.pk}/">u-1</a>' in html
    assert "marketer@test.example" in html and "Workbench" in html


def test_action_labels():
    assert action_label("customer.updated") == "Updated customer"
    assert action_label("customers.tagged") == "Tagged customers"
    assert action_label("custom_field.renamed") == "Renamed custom field"
    assert action_label("segment.rebuilt") == "Rebuilt segment"  # not listed yet


def test_renames_read_old_to_new(marketer_client):
    _entry(
        "tag.renamed",
        "tag",
        target_id=1,
        target_label="VIP",
        fields=["name"],
        changes={"name": ["vip", "VIP"]},
    )
    _entry("custom_field.created", "custom_field", target_id=2, target_label="Plan")
    html = marketer_client.get(URL).content.decode()
    assert "<dd>vip → VIP</dd>" in html
    assert "Tag “VIP”" in html and "Custom field “Plan”" in html


def test_times_in_the_members_timezone(marketer_client, marketer):
    marketer.timezone = "Asia/Tokyo"
    marketer.save()
    _entry(at=datetime(2024, 1, 1, 0, 30, tzinfo=UTC))
    html = marketer_client.get(URL).content.decode()
    assert "1 Jan 2024, 09:30" in html


def test_filters(marketer_client):
    _entry("customer.updated", "customer", source="api")
    _entry("tag.created", "tag", source="ui", at=T0 + timedelta(seconds=1))
    _entry("customers.tagged", "customer", source="import", at=T0 + timedelta(seconds=2))
    _entry("custom_field.created", "custom_field", source="system", at=T0 + timedelta(seconds=3))
    assert _actions(marketer_client.get(URL, {"source": "import"})) == ["customers.tagged"]
    assert _actions(marketer_client.get(URL, {"target_type": "customer"})) == [
        "customers.tagged",
        "customer.updated",
    ]
    assert _actions(marketer_client.get(URL, {"action": "tag.created"})) == ["tag.created"]
    both = marketer_client.get(URL, {"target_type": "customer", "source": "api"})
    assert _actions(both) == ["customer.updated"]
    # unknown values filter nothing
    assert len(_actions(marketer_client.get(URL, {"source": "fax", "action": "x; drop"}))) == 4


def test_keyset_pages_keep_filters_and_break_ties(marketer_client, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    # three entries share one instant: the id orders them
    entries = [_entry(at=T0) for _ in range(3)] + [
        _entry(at=T0 + timedelta(minutes=i)) for i in (1, 2)
    ]
    _entry("tag.created", "tag", at=T0 + timedelta(minutes=5))  # filtered out
    newest_first = [e.pk for e in sorted(entries, key=lambda e: (e.at, e.pk), reverse=True)]

    seen = []
    params = {"action": "customer.updated"}
    for _ in range(5):
        response = marketer_client.get(URL, params)
        page = response.context["page"]
        seen += [e.pk for e in page.entries]
        if not page.next_cursor:
            break
        assert f"action=customer.updated&amp;before={page.next_cursor}" in (
            response.content.decode()
        )
        params = {"action": "customer.updated", "before": page.next_cursor}
    assert seen == newest_first


def test_cursor_round_trip_and_bad_cursors(marketer_client):
    entry = _entry(at=datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC))
    assert selectors.cursor_parse(selectors.cursor_for(entry)) == (entry.at, entry.pk)
    for bad in ("nope", "1.2.3", "", "99999999999999999999999.1"):
        assert selectors.cursor_parse(bad) is None
        assert marketer_client.get(URL, {"before": bad}).status_code == 200


def test_erased_customers_are_labelled_so(marketer_client, admin):
    customer = CustomerFactory(user_id="gone-1")
    kept = CustomerFactory(user_id="kept-1")
    _entry(target_id=customer.pk, target_label="gone-1")
    _entry(target_id=kept.pk, target_label="", at=T0 + timedelta(seconds=1))  # logged unlabelled
    customer_erase(customer=customer, actor=Actor("ui", member=admin))
    html = marketer_client.get(URL).content.decode()
    assert "gone-1" not in html
    assert html.count("erased customer") == 2  # the update and the erasure itself
    assert "Erased customer" in html
    assert f'href="/customers/{kept.pk}/">customer #{kept.pk}</a>' in html


def test_htmx_gets_the_results_only(marketer_client):
    _entry()
    partial = marketer_client.get(URL, {"source": "ui"}, HTTP_HX_REQUEST="true")
    assert b'id="results"' in partial.content and b"<html" not in partial.content
    assert b"<select" not in partial.content
    full = marketer_client.get(URL)
    assert b"<html" in full.content and b'name="target_type"' in full.content


def test_empty_states(marketer_client):
    assert "No activity yet." in marketer_client.get(URL).content.decode()
    filtered = marketer_client.get(URL, {"source": "api"}).content.decode()
    assert "No activity matches these filters." in filtered


def test_viewers_may_not_read_the_log(viewer_client, admin_client):
    assert viewer_client.get(URL).status_code == 403
    assert admin_client.get(URL).status_code == 200


def test_history_of_one_customer_for_the_customer_page(marketer):
    customer, other = CustomerFactory(user_id="hist-1"), CustomerFactory()
    for i in range(3):
        _entry(target_id=customer.pk, target_label="hist-1", at=T0 + timedelta(minutes=i))
    _entry(target_id=other.pk, target_label=other.user_id)
    _entry("tag.created", "tag", target_id=customer.pk, target_label="same id, other type")
    entries = activity_for_customer(customer.pk, limit=2)
    assert [e.at for e in entries] == [T0 + timedelta(minutes=2), T0 + timedelta(minutes=1)]
    assert len(activity_for_customer(customer.pk)) == 3
    html = render_to_string("activity/_entries.html", {"entries": entries})
    assert html.count("Updated customer") == 2 and "hist-1" in html
    assert "No activity yet." in render_to_string("activity/_entries.html", {"entries": []})
