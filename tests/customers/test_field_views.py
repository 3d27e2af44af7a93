from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from activity.models import Activity
from customers import field_selectors
from customers.models import CustomField
from tests.factories import CustomerFactory, CustomFieldFactory

pytestmark = pytest.mark.django_db

LIST = "/settings/custom-fields/"


def _stats_url(field):
    return reverse("custom-field-stats", args=[field.pk])


@pytest.fixture(autouse=True)
def _fresh_stats(monkeypatch):
    # Each test sees freshly computed figures; the caching test turns this off.
    monkeypatch.setattr(field_selectors, "STATS_TTL", 0)


def test_create_generates_a_fixed_name_and_shows_it(admin_client, admin):
    response = admin_client.post(LIST, {"label": "  Plan  type ", "type": "text"}, follow=True)
    field = CustomField.objects.get()
    assert (field.name, field.label, field.type) == ("plan_type", "Plan type", "text")
    assert field.created_by == admin
    assert "Its name is custom.plan_type" in response.content.decode()
    assert b"<code>custom.plan_type</code>" in response.content
    entry = Activity.objects.get(action="custom_field.created")
    assert entry.target_id == field.pk and entry.source == "ui" and entry.member == admin


def test_each_type_can_be_created(admin_client):
    for label, type_ in [("Signed up", "date"), ("Score", "number"), ("Opted in", "boolean")]:
        assert admin_client.post(LIST, {"label": label, "type": type_}).status_code == 302
    assert dict(CustomField.objects.values_list("name", "type")) == {
        "signed_up": "date",
        "score": "number",
        "opted_in": "boolean",
    }


def test_duplicate_label_is_a_form_error(admin_client):
    CustomFieldFactory(label="Plan", name="plan")
    response = admin_client.post(LIST, {"label": "plan", "type": "number"})
    assert response.status_code == 200
    assert "A custom field labelled “plan” already exists." in response.content.decode()
    assert 'class="notice error"' in response.content.decode()
    assert CustomField.objects.count() == 1


def test_missing_label_and_unknown_type_are_refused(admin_client):
    response = admin_client.post(LIST, {"label": "", "type": "colour"})
    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"label", "type"}
    assert not CustomField.objects.exists()


def test_list_shows_live_fields_only(admin_client):
    CustomFieldFactory(label="Plan", name="plan")
    CustomFieldFactory(label="Old", name="old", deleted_at=timezone.now())
    response = admin_client.get(LIST)
    assert [f.label for f in response.context["fields"]] == ["Plan"]
    assert b"custom.old" not in response.content
    # figures load lazily, one request per row
    assert f'hx-get="{_stats_url(CustomField.objects.get(name="plan"))}"'.encode() in (
        response.content
    )


def test_rename_keeps_the_name(admin_client):
    field = CustomFieldFactory(label="Plan", name="plan")
    url = reverse("custom-field-edit", args=[field.pk])
    page = admin_client.get(url)
    assert b'value="Plan"' in page.content and b"custom.plan" in page.content
    response = admin_client.post(url, {"label": "Subscription plan"})
    assert response.status_code == 302 and response["Location"] == LIST
    field.refresh_from_db()
    assert (field.label, field.name) == ("Subscription plan", "plan")
    assert Activity.objects.get(action="custom_field.renamed").changes == {
        "label": ["Plan", "Subscription plan"]
    }


def test_rename_to_a_taken_label_is_a_form_error(admin_client):
    CustomFieldFactory(label="Plan", name="plan")
    other = CustomFieldFactory(label="Tier", name="tier")
    response = admin_client.post(reverse("custom-field-edit", args=[other.pk]), {"label": "PLAN"})
    assert response.status_code == 200
    assert "already exists" in response.context["form"].errors["label"][0]
    other.refresh_from_db()
    assert other.label == "Tier"


def test_deleted_field_is_not_found(admin_client):
    field = CustomFieldFactory(deleted_at=timezone.now())
    for name in ("custom-field-edit", "custom-field-delete", "custom-field-stats"):
        assert admin_client.get(reverse(name, args=[field.pk])).status_code == 404


def test_delete_shows_how_many_customers_hold_a_value_then_deletes(admin_client):
    field = CustomFieldFactory(label="Plan", name="plan")
    CustomerFactory(custom={"plan": "gold"})
    CustomerFactory(custom={"plan": "silver"})
    CustomerFactory(custom={"other": 1})
    url = reverse("custom-field-delete", args=[field.pk])

    page = admin_client.get(url)
    assert "Values are removed from <strong>2</strong> customers" in page.content.decode()
    assert b"<html" in page.content

    partial = admin_client.get(url, HTTP_HX_REQUEST="true")
    assert "Values are removed from <strong>2</strong> customers" in partial.content.decode()
    assert b"<html" not in partial.content

    field.refresh_from_db()
    assert field.deleted_at is None  # looking does not delete

    response = admin_client.post(url, follow=True)
    field.refresh_from_db()
    assert field.deleted_at is not None
    assert "Custom field “Plan” deleted" in response.content.decode()
    assert list(response.context["fields"]) == []
    assert Activity.objects.filter(action="custom_field.deleted", target_id=field.pk).exists()


def test_stats_count_holders_and_split_text_values(admin_client):
    field = CustomFieldFactory(label="Interests", name="interests", type="text")
    for value in ["golf, tennis", "golf", "tennis,chess", "golf,golf", " golf , ", "surf"]:
        CustomerFactory(custom={"interests": value})
    CustomerFactory(custom={})
    stats = field_selectors.custom_field_stats(field)
    assert stats.holders == 6
    # a value counts once per customer; blanks between commas are not values
    assert [(t.value, t.customers) for t in stats.top] == [
        ("golf", 4),
        ("tennis", 2),
        ("chess", 1),
        ("surf", 1),
    ]


def test_stats_keep_five_values(admin_client):
    field = CustomFieldFactory(name="colour", type="text")
    for i, colour in enumerate(["red", "blue", "green", "gold", "pink", "teal"]):
        for _ in range(6 - i):
            CustomerFactory(custom={"colour": colour})
    top = field_selectors.custom_field_stats(field).top
    assert [t.value for t in top] == ["red", "blue", "green", "gold", "pink"]


def test_stats_for_typed_fields_read_as_on_a_profile(admin_client):
    score = CustomFieldFactory(name="score", type="number")
    opted = CustomFieldFactory(name="opted_in", type="boolean")
    signed = CustomFieldFactory(name="signed_up", type="date")
    for value in (3, 3, 4.5):
        CustomerFactory(custom={"score": value})
    for value in (True, True, False):
        CustomerFactory(custom={"opted_in": value})
    CustomerFactory(custom={"signed_up": "2024-05-01T00:00:00Z"})
    CustomerFactory(custom={"signed_up": "2024-05-01T00:00:00Z"})
    CustomerFactory(custom={"signed_up": "2024-05-02T09:30:00Z"})
    top = lambda f: [(t.value, t.customers) for t in field_selectors.custom_field_stats(f).top]  # noqa: E731
    assert top(score) == [("3", 2), ("4.5", 1)]
    assert top(opted) == [("Yes", 2), ("No", 1)]
    assert top(signed) == [("2024-05-01", 2), ("2024-05-02 09:30:00Z", 1)]


def test_stats_are_cached(admin_client, monkeypatch):
    monkeypatch.setattr(field_selectors, "STATS_TTL", 60)
    field = CustomFieldFactory(name="plan")
    CustomerFactory(custom={"plan": "gold"})
    try:
        assert field_selectors.custom_field_stats(field).holders == 1
        CustomerFactory(custom={"plan": "gold"})
        assert field_selectors.custom_field_stats(field).holders == 1  # cached
        field_selectors.custom_field_stats_forget(field)
        assert field_selectors.custom_field_stats(field).holders == 2
    finally:
        field_selectors.custom_field_stats_forget(field)


def test_stats_partial_for_htmx_and_field_page_without(admin_client):
    field = CustomFieldFactory(label="Plan", name="plan")
    CustomerFactory(custom={"plan": "gold, silver"})
    CustomerFactory(custom={"plan": "gold"})
    partial = admin_client.get(_stats_url(field), HTTP_HX_REQUEST="true")
    text = partial.content.decode()
    assert b"<html" not in partial.content
    assert "<strong>2</strong> customers" in text
    assert "gold</span> <b>2</b>" in text and "silver</span> <b>1</b>" in text

    page = admin_client.get(_stats_url(field))
    assert b"<html" in page.content and b"<strong>2</strong> customers" in page.content
    assert page.context["form"].initial == {"label": "Plan"}


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("custom-field-list", "get"),
        ("custom-field-list", "post"),
        ("custom-field-edit", "get"),
        ("custom-field-edit", "post"),
        ("custom-field-delete", "get"),
        ("custom-field-delete", "post"),
        ("custom-field-stats", "get"),
    ],
)
def test_only_admins(marketer_client, viewer_client, name, method):
    field = CustomFieldFactory(label="Plan", name="plan")
    url = reverse(name, args=[] if name == "custom-field-list" else [field.pk])
    data = {"label": "Hacked", "type": "text"}
    for client in (marketer_client, viewer_client):
        assert getattr(client, method)(url, data).status_code == 403
    field.refresh_from_db()
    assert field.label == "Plan" and field.deleted_at is None
    assert CustomField.objects.count() == 1
