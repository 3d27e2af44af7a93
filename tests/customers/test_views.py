from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from activity.models import Activity
from customers.columns import PREFERENCE_KEY
from customers.filters import customers_filtered
from customers.models import Customer, CustomField
from donotcontact.models import Entry
from tags.models import CustomerTag, Tag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _user_ids(response) -> list[str]:
    return [c.user_id for c in response.context["page"].rows]


def test_list_newest_first_with_keyset_pages(viewer_client, monkeypatch):
    monkeypatch.setattr("customers.selectors.PAGE_SIZE", 3)
    customers = CustomerFactory.create_batch(7)
    newest_first = [c.user_id for c in reversed(customers)]
    first = viewer_client.get("/customers/")
    assert _user_ids(first) == newest_first[:3]
    assert first.context["page"].total == 7
    assert not first.context["page"].total_is_estimate
    second = viewer_client.get(f"/customers/?after={first.context['page'].next_cursor}")
    assert _user_ids(second) == newest_first[3:6]
    third = viewer_client.get(f"/customers/?after={second.context['page'].next_cursor}")
    assert _user_ids(third) == newest_first[6:]
    assert third.context["page"].next_cursor is None
    assert b'rel="next"' in first.content


@pytest.mark.parametrize(
    "sort", ["created", "-created", "name", "-name", "last_seen", "-last_seen"]
)
def test_every_sort_pages_through_everyone_once_in_order(viewer_client, monkeypatch, sort):
    monkeypatch.setattr("customers.selectors.PAGE_SIZE", 4)
    names = ["bob", "Alice", "alice", "", "Zed", "carol", "Bob", "dave", "", "erin"]
    for i, name in enumerate(names):
        # Two hours with three customers each, their minutes out of creation order: "last
        # seen" sorts go hour by hour along an index, then by the time within the hour.
        seen = (
            datetime(2024, 1, 1 + i % 2, 10 + i % 2, (i * 17) % 60, tzinfo=UTC) if i % 3 else None
        )
        CustomerFactory(name=name, last_seen=seen)
    seen_ids, after = [], ""
    for _ in range(10):
        response = viewer_client.get("/customers/", {"sort": sort, "after": after})
        seen_ids += [c.pk for c in response.context["page"].rows]
        after = response.context["page"].next_cursor
        if not after:
            break
    everyone = list(Customer.objects.all())
    assert sorted(seen_ids) == sorted(c.pk for c in everyone)  # nobody twice, nobody missed
    key = sort.lstrip("-")
    desc = sort.startswith("-")
    if key == "created":
        expected = sorted(everyone, key=lambda c: c.pk, reverse=desc)
    elif key == "name":
        expected = sorted(everyone, key=lambda c: (c.name.upper(), c.pk), reverse=desc)
    else:
        with_value = sorted(
            (c for c in everyone if c.last_seen), key=lambda c: (c.last_seen, c.pk), reverse=desc
        )
        without = sorted((c for c in everyone if not c.last_seen), key=lambda c: c.pk, reverse=desc)
        expected = with_value + without  # never-seen customers always last
    assert seen_ids == [c.pk for c in expected]


def test_garbage_cursor_and_sort_fall_back_to_the_first_page(viewer_client):
    CustomerFactory.create_batch(2)
    for params in ({"after": "x"}, {"after": '["a", "b"]', "sort": "name"}, {"sort": "bogus"}):
        response = viewer_client.get("/customers/", params)
        assert response.status_code == 200
        assert len(response.context["page"].rows) == 2


def test_search_by_user_id_email_and_name(viewer_client):
    CustomerFactory(user_id="abc-1", email="zed@example.com", name="Quinn Zed")
    CustomerFactory(user_id="xyz-2", email="amy@example.com", name="Amy Lee")
    for q in ("abc", "ZED@", "quinn"):
        assert _user_ids(viewer_client.get("/customers/", {"q": q})) == ["abc-1"]


def test_quick_filters(viewer_client, marketer):
    vip = Tag.objects.create(name="VIP")
    a = CustomerFactory(user_type="test", country="DE", last_seen=datetime(2024, 3, 5, tzinfo=UTC))
    b = CustomerFactory(country="FR", last_seen=datetime(2024, 6, 1, tzinfo=UTC))
    CustomerTag.objects.create(customer=b, tag=vip)
    assert _user_ids(viewer_client.get("/customers/", {"tag": vip.pk})) == [b.user_id]
    assert _user_ids(viewer_client.get("/customers/", {"user_type": "test"})) == [a.user_id]
    assert _user_ids(viewer_client.get("/customers/", {"country": "DE"})) == [a.user_id]
    # Any case, as segments compare text; an empty country never matches.
    assert _user_ids(viewer_client.get("/customers/", {"country": " de "})) == [a.user_id]
    window = {"last_seen_from": "2024-03-05", "last_seen_to": "2024-03-05"}
    assert _user_ids(viewer_client.get("/customers/", window)) == [a.user_id]
    assert _user_ids(viewer_client.get("/customers/", {"created_to": "2000-01-01"})) == []


def test_last_seen_days_start_in_the_members_time_zone_between_whole_utc_hours():
    # 2024-03-05 starts at 2024-03-04 18:30 UTC in India, in the middle of a UTC hour.
    inside = CustomerFactory(last_seen=datetime(2024, 3, 4, 18, 45, tzinfo=UTC))
    CustomerFactory(last_seen=datetime(2024, 3, 4, 18, 15, tzinfo=UTC))  # 23:45 the day before
    last = CustomerFactory(last_seen=datetime(2024, 3, 5, 18, 29, tzinfo=UTC))  # 23:59 there
    CustomerFactory(last_seen=datetime(2024, 3, 5, 18, 30, tzinfo=UTC))  # the next day
    with timezone.override("Asia/Kolkata"):
        _, qs = customers_filtered({"last_seen_from": "2024-03-05", "last_seen_to": "2024-03-05"})
        assert sorted(c.pk for c in qs) == [inside.pk, last.pk]


def test_bad_filter_values_show_an_error_not_everyone(viewer_client):
    CustomerFactory()
    response = viewer_client.get("/customers/", {"created_from": "not-a-date", "tag": "999"})
    assert response.status_code == 200
    assert response.context["page"].rows == []
    assert response.context["filter"].errors


def test_htmx_gets_only_the_results(viewer_client):
    CustomerFactory(user_id="one")
    response = viewer_client.get("/customers/", HTTP_HX_REQUEST="true")
    assert b'id="results"' in response.content
    assert b"<html" not in response.content


def test_large_tables_show_an_estimate(viewer_client, monkeypatch):
    monkeypatch.setattr("customers.selectors.EXACT_COUNT_LIMIT", 0)
    CustomerFactory.create_batch(3)
    page = viewer_client.get("/customers/").context["page"]
    assert page.total_is_estimate
    assert b"About" in viewer_client.get("/customers/").content


def test_column_choice_is_remembered_per_member(viewer_client, viewer, marketer_client):
    CustomField.objects.create(name="plan", label="Plan", type="text")
    CustomerFactory(custom={"plan": "gold"}, city="Lyon")
    viewer_client.post("/customers/columns/", {"columns": ["city", "custom.plan", "nope"]})
    viewer.refresh_from_db()
    assert viewer.preferences[PREFERENCE_KEY] == ["city", "custom.plan"]
    response = viewer_client.get("/customers/")
    assert [c.label for c in response.context["columns"]] == ["City", "Plan"]
    assert b"gold" in response.content and b"Lyon" in response.content
    other = marketer_client.get("/customers/")
    assert [c.key for c in other.context["columns"]][0] == "name"  # the default set


def test_bulk_tag_selected_creates_tags_on_the_fly(marketer_client, marketer):
    a, b, c = CustomerFactory.create_batch(3)
    response = marketer_client.post(
        "/customers/bulk/", {"ids": [a.pk, b.pk], "action": "tag", "tags": "Spring, vip"}
    )
    assert response.status_code == 302
    assert set(Tag.objects.values_list("name", flat=True)) == {"Spring", "vip"}
    assert CustomerTag.objects.filter(customer__in=[a, b]).count() == 4
    assignment = CustomerTag.objects.filter(customer=a).first()
    assert assignment.added_by == marketer and assignment.source == "ui"
    entry = Activity.objects.get(action="customers.tagged")
    assert entry.changes["assignments"] == 4 and entry.member == marketer


def test_bulk_all_matching_filter_and_untag(marketer_client):
    de = CustomerFactory.create_batch(3, country="DE")
    fr = CustomerFactory(country="FR")
    marketer_client.post(
        "/customers/bulk/", {"all": "on", "filter": "country=DE", "action": "tag", "tags": "x"}
    )
    assert set(CustomerTag.objects.values_list("customer_id", flat=True)) == {c.pk for c in de}
    marketer_client.post(
        "/customers/bulk/", {"ids": [de[0].pk, fr.pk], "action": "untag", "tags": "X"}
    )
    assert CustomerTag.objects.count() == 2


def test_bulk_needs_a_selection(marketer_client):
    response = marketer_client.post("/customers/bulk/", {"action": "tag", "tags": "x"}, follow=True)
    assert b"Select at least one customer" in response.content
    assert not Tag.objects.exists()


def test_bulk_export_is_formula_escaped(marketer_client):
    CustomField.objects.create(name="plan", label="Plan", type="text")
    CustomField.objects.create(name="vip", label="VIP", type="boolean")
    c = CustomerFactory(user_id="u1", name="=HYPERLINK(1)", custom={"plan": "+1", "vip": True})
    CustomerTag.objects.create(customer=c, tag=Tag.objects.create(name="@home"))
    response = marketer_client.post("/customers/bulk/", {"ids": [c.pk], "action": "export"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, row = rows
    record = dict(zip(header, row, strict=True))
    assert record["id"] == "u1"
    assert record["name"] == "'=HYPERLINK(1)"
    assert record["custom.plan"] == "'+1"
    assert record["custom.vip"] == "true"
    assert record["tags"] == "'@home"


def test_bulk_export_can_leave_out_suppressed_customers(marketer_client):
    kept = CustomerFactory(user_id="kept", email="kept@example.com")
    listed = CustomerFactory(user_id="listed", email="listed@example.com")
    Entry.objects.create(contact="listed@example.com", channel="email")
    ids = [kept.pk, listed.pk]

    def exported(**extra):
        data = {"ids": ids, "action": "export", **extra}
        response = marketer_client.post("/customers/bulk/", data)
        rows = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
        return sorted(row["id"] for row in rows)

    assert exported() == ["kept", "listed"]
    assert exported(leave_out="email") == ["kept"]
    assert exported(leave_out="sms") == ["kept", "listed"]  # the entry is for Email only
    refused = marketer_client.post(
        "/customers/bulk/", {"ids": ids, "action": "export", "leave_out": "fax"}, follow=True
    )
    assert "Unknown channel" in refused.content.decode()


def test_bulk_delete_confirms_then_erases(marketer_client):
    keep = CustomerFactory(country="FR")
    CustomerFactory.create_batch(2, country="DE")
    data = {"all": "on", "filter": "country=DE", "action": "delete"}
    confirm = marketer_client.post("/customers/bulk/", data)
    assert confirm.status_code == 200 and b"Erase 2 customers" in confirm.content
    assert Customer.objects.count() == 3
    marketer_client.post("/customers/bulk/", {**data, "confirm": "yes"})
    assert list(Customer.objects.all()) == [keep]
    assert Activity.objects.get(action="customers.erased").count == 2


def test_viewer_cannot_act_in_bulk(viewer_client):
    c = CustomerFactory()
    response = viewer_client.post("/customers/bulk/", {"ids": [c.pk], "action": "delete"})
    assert response.status_code == 403


def test_add_a_test_customer(marketer_client, marketer):
    CustomField.objects.create(name="score", label="Score", type="number")
    response = marketer_client.post(
        "/customers/new/",
        {
            "user_id": "  tester-1 ",
            "email": "QA@Example.com",
            "phone": "+1 415 555 2671",
            "user_type": "test",
            "custom.score": "4.5",
        },
    )
    customer = Customer.objects.get(user_id="tester-1")
    assert response.status_code == 302
    assert customer.email == "qa@example.com"
    assert customer.phone == "+14155552671"
    assert customer.user_type == "test"
    assert customer.custom == {"score": 4.5}
    entry = Activity.objects.get(action="customer.created")
    assert entry.target_id == customer.pk and entry.member == marketer
    assert "email" in entry.fields and "qa@example.com" not in str(entry.changes)


def test_add_customer_errors_stay_on_the_form(marketer_client):
    CustomerFactory(user_id="taken")
    CustomField.objects.create(name="score", label="Score", type="number")
    response = marketer_client.post(
        "/customers/new/",
        {"user_id": "taken", "phone": "12", "user_type": "live", "custom.score": "lots"},
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "phone" in form.errors and "custom.score" in form.errors
    response = marketer_client.post("/customers/new/", {"user_id": "taken", "user_type": "live"})
    assert "already exists" in str(response.context["form"].errors)
    assert Customer.objects.count() == 1


def test_edit_changes_only_what_was_changed(marketer_client):
    CustomField.objects.create(name="since", label="Since", type="date")
    CustomField.objects.create(name="plan", label="Plan", type="text")
    c = CustomerFactory(
        name="Ann", city="Oslo", custom={"since": "2024-01-02T10:30:00Z", "plan": "gold"}
    )
    page = marketer_client.get(f"/customers/{c.pk}/edit/")
    data = {k: v for k, v in page.context["form"].initial.items()}
    data.update({"name": "Anne", "custom.plan": "", "user_type": "live"})
    response = marketer_client.post(f"/customers/{c.pk}/edit/", data)
    assert response.status_code == 302
    c.refresh_from_db()
    assert c.name == "Anne" and c.city == "Oslo"
    assert c.custom == {"since": "2024-01-02T10:30:00Z"}  # untouched date kept its time
    entry = Activity.objects.get(action="customer.updated")
    assert sorted(entry.fields) == ["custom.plan", "name"]


def test_edit_rejects_bad_values(marketer_client):
    CustomField.objects.create(name="since", label="Since", type="date")
    c = CustomerFactory()
    response = marketer_client.post(
        f"/customers/{c.pk}/edit/",
        {
            "timezone": "Mars/Base",
            "email": "nope",
            "custom.since": "31/02/2024",
            "user_type": "live",
        },
    )
    errors = response.context["form"].errors
    assert {"timezone", "email", "custom.since"} <= set(errors)


def test_customer_page_shows_profile_custom_and_tags(viewer_client):
    CustomField.objects.create(name="vip", label="VIP", type="boolean")
    c = CustomerFactory(custom={"vip": True}, phone="+14155552671")
    CustomerTag.objects.create(customer=c, tag=Tag.objects.create(name="gold"))
    response = viewer_client.get(f"/customers/{c.pk}/")
    body = response.content.decode()
    assert "+14155552671" in body and "gold" in body and "Yes" in body
    assert "Erase customer" not in body  # viewers cannot


def test_tags_add_and_remove_in_place(marketer_client):
    c = CustomerFactory()
    response = marketer_client.post(
        f"/customers/{c.pk}/tags/", {"tags": "new one, Gold"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and b'id="tags"' in response.content
    assert b"<html" not in response.content
    assert set(c.customer_tags.values_list("tag__name", flat=True)) == {"new one", "Gold"}
    gold = Tag.objects.get(name="Gold")
    marketer_client.post(f"/customers/{c.pk}/tags/{gold.pk}/remove/", HTTP_HX_REQUEST="true")
    assert list(c.customer_tags.values_list("tag__name", flat=True)) == ["new one"]
    too_long = marketer_client.post(
        f"/customers/{c.pk}/tags/", {"tags": "x" * 101}, HTTP_HX_REQUEST="true"
    )
    assert b"at most 100" in too_long.content


def test_erase_removes_the_customer_and_scrubs_the_log(marketer_client):
    c = CustomerFactory(user_id="secret-person")
    marketer_client.post(f"/customers/{c.pk}/tags/", {"tags": "vip"})
    assert marketer_client.get(f"/customers/{c.pk}/delete/").status_code == 200
    response = marketer_client.post(f"/customers/{c.pk}/delete/")
    assert response.status_code == 302
    assert not Customer.objects.filter(pk=c.pk).exists()
    assert not CustomerTag.objects.exists()
    assert not Activity.objects.filter(target_label="secret-person").exists()
    assert Activity.objects.filter(action="customer.erased", target_id=c.pk).exists()
