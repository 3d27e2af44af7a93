from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from activity.models import Activity
from tags.models import CustomerTag, Tag
from tests.factories import CustomerFactory, TagFactory

pytestmark = pytest.mark.django_db

LIST = "/settings/tags/"
CREATE = "/settings/tags/new/"


def _tag(tag, *customers, **kwargs):
    for customer in customers:
        CustomerTag.objects.create(customer=customer, tag=tag, **kwargs)


def test_list_shows_counts_and_links_to_the_customers(viewer_client):
    vip, churned, empty = TagFactory(name="vip"), TagFactory(name="Churned"), TagFactory(name="new")
    a, b, c = CustomerFactory.create_batch(3)
    _tag(vip, a, b, c)
    _tag(churned, a)
    response = viewer_client.get(LIST)
    assert response.status_code == 200
    assert [(t.name, t.customers) for t in response.context["result"].tags] == [
        ("Churned", 1),
        ("new", 0),
        ("vip", 3),
    ]
    html = response.content.decode()
    assert f'href="/customers/?tag={vip.pk}"' in html
    assert f'href="/customers/?tag={empty.pk}"' in html


def test_viewer_sees_no_write_controls(viewer_client, marketer_client):
    tag = TagFactory(name="vip")
    viewer_page = viewer_client.get(LIST).content.decode()
    assert reverse("tag-edit", args=[tag.pk]) not in viewer_page
    assert CREATE not in viewer_page
    marketer_page = marketer_client.get(LIST).content.decode()
    assert reverse("tag-edit", args=[tag.pk]) in marketer_page
    assert CREATE in marketer_page


def test_search_by_name(viewer_client):
    TagFactory(name="VIP gold")
    TagFactory(name="vip silver")
    TagFactory(name="churned")
    names = [t.name for t in viewer_client.get(LIST, {"q": "vip"}).context["result"].tags]
    assert names == ["VIP gold", "vip silver"]
    response = viewer_client.get(LIST, {"q": "nothing"})
    assert "No tag matches “nothing”." in response.content.decode()


def test_htmx_search_returns_the_rows_only(viewer_client):
    TagFactory(name="vip")
    TagFactory(name="churned")
    response = viewer_client.get(LIST, {"q": "chu"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'id="tag-rows"' in html and "<html" not in html
    assert "churned" in html and "vip" not in html
    full = viewer_client.get(LIST, {"q": "chu"})
    assert b"<html" in full.content


def test_long_lists_are_cut_and_say_so(viewer_client, monkeypatch):
    monkeypatch.setattr("tags.selectors.LIST_LIMIT", 2)
    TagFactory.create_batch(3)
    result = viewer_client.get(LIST).context["result"]
    assert (len(result.tags), result.total, result.truncated) == (2, 3, True)


def test_create(marketer_client, marketer):
    response = marketer_client.post(CREATE, {"name": "  Big   spender "}, follow=True)
    tag = Tag.objects.get()
    assert tag.name == "Big spender" and tag.created_by == marketer
    assert "Tag “Big spender” created." in response.content.decode()
    assert Activity.objects.get(action="tag.created").target_id == tag.pk


def test_duplicate_name_is_a_form_error(marketer_client):
    TagFactory(name="VIP")
    response = marketer_client.post(CREATE, {"name": "vip"})
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == ["A tag named “vip” already exists."]
    assert "A tag named “vip” already exists." in response.content.decode()
    assert Tag.objects.count() == 1


def test_blank_name_is_a_form_error(marketer_client):
    response = marketer_client.post(CREATE, {"name": "   "})
    assert response.status_code == 200 and "name" in response.context["form"].errors
    assert not Tag.objects.exists()


def test_rename(marketer_client):
    tag = TagFactory(name="vip")
    customer = CustomerFactory()
    _tag(tag, customer)
    url = reverse("tag-edit", args=[tag.pk])
    page = marketer_client.get(url)
    assert b'value="vip"' in page.content and page.context["customers"] == 1
    response = marketer_client.post(url, {"name": "VIP customers"}, follow=True)
    tag.refresh_from_db()
    assert tag.name == "VIP customers"
    assert "Tag “vip” renamed to “VIP customers”." in response.content.decode()
    assert CustomerTag.objects.get().tag == tag


def test_rename_to_a_taken_name_is_a_form_error(marketer_client):
    TagFactory(name="vip")
    tag = TagFactory(name="gold")
    response = marketer_client.post(reverse("tag-edit", args=[tag.pk]), {"name": "VIP"})
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == ["A tag named “VIP” already exists."]
    tag.refresh_from_db()
    assert tag.name == "gold"


def test_delete_shows_the_count_then_deletes(marketer_client):
    tag = TagFactory(name="vip")
    keep = TagFactory(name="gold")
    a, b = CustomerFactory.create_batch(2)
    _tag(tag, a, b)
    _tag(keep, a)
    url = reverse("tag-delete", args=[tag.pk])

    page = marketer_client.get(url)
    assert b"<html" in page.content
    assert "removed from <strong>2</strong> customers" in page.content.decode()
    partial = marketer_client.get(url, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content
    assert "removed from <strong>2</strong> customers" in partial.content.decode()
    assert Tag.objects.filter(pk=tag.pk).exists()  # looking does not delete

    response = marketer_client.post(url, follow=True)
    assert "Tag “vip” deleted and removed from 2 customers." in response.content.decode()
    assert not Tag.objects.filter(pk=tag.pk).exists()
    assert list(CustomerTag.objects.values_list("tag__name", flat=True)) == ["gold"]


def test_merge_form_offers_the_other_tags(marketer_client):
    source = TagFactory(name="vip")
    TagFactory(name="gold")
    TagFactory(name="Silver")
    url = reverse("tag-merge", args=[source.pk])
    page = marketer_client.get(url)
    choices = [t.name for t in page.context["form"].fields["target"].queryset]
    assert choices == ["gold", "Silver"]
    partial = marketer_client.get(url, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b'name="target"' in partial.content


def test_merge_keeps_assignments(marketer_client, admin):
    source, target = TagFactory(name="vip"), TagFactory(name="VIP customers")
    only_source, both, only_target = CustomerFactory.create_batch(3)
    early = datetime(2024, 1, 1, tzinfo=UTC)
    late = datetime(2024, 6, 1, tzinfo=UTC)
    _tag(source, only_source, added_at=early, added_by=admin, source="import")
    _tag(source, both, added_at=early)
    _tag(target, both, added_at=late)
    _tag(target, only_target, added_at=late)

    response = marketer_client.post(
        reverse("tag-merge", args=[source.pk]), {"target": target.pk}, follow=True
    )
    assert "“vip” merged into “VIP customers”: 2 customers moved." in response.content.decode()
    assert not Tag.objects.filter(pk=source.pk).exists()
    rows = {
        ct.customer_id: ct
        for ct in CustomerTag.objects.filter(tag=target).select_related("added_by")
    }
    assert set(rows) == {only_source.pk, both.pk, only_target.pk}
    moved = rows[only_source.pk]
    assert (moved.added_at, moved.added_by, moved.source) == (early, admin, "import")
    assert rows[both.pk].added_at == early  # the older assignment wins
    assert rows[only_target.pk].added_at == late
    entry = Activity.objects.get(action="tag.merged")
    assert entry.target_id == target.pk and entry.changes["merged"] == "vip"


def test_merge_into_itself_or_nothing_is_refused(marketer_client):
    source = TagFactory(name="vip")
    url = reverse("tag-merge", args=[source.pk])
    for data in ({"target": source.pk}, {"target": ""}, {"target": "999999999"}):
        response = marketer_client.post(url, data)
        assert response.status_code == 200 and "target" in response.context["form"].errors
    assert Tag.objects.filter(pk=source.pk).exists()
    page = marketer_client.get(url)
    assert "There is no other tag to merge into yet." in page.content.decode()


def test_missing_tag_is_not_found(marketer_client):
    for name in ("tag-edit", "tag-delete", "tag-merge"):
        assert marketer_client.get(reverse(name, args=[999999999])).status_code == 404


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("tag-create", "post"),
        ("tag-edit", "get"),
        ("tag-edit", "post"),
        ("tag-delete", "get"),
        ("tag-delete", "post"),
        ("tag-merge", "get"),
        ("tag-merge", "post"),
    ],
)
def test_viewers_may_not_write(viewer_client, name, method):
    tag, other = TagFactory(name="vip"), TagFactory(name="gold")
    url = reverse(name) if name == "tag-create" else reverse(name, args=[tag.pk])
    response = getattr(viewer_client, method)(url, {"name": "hacked", "target": other.pk})
    assert response.status_code == 403
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["gold", "vip"]


def test_list_requires_sign_in(client):
    response = client.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_reloading_the_create_url_goes_back_to_the_list(marketer_client):
    response = marketer_client.get(CREATE)
    assert response.status_code == 302 and response["Location"] == LIST
