from __future__ import annotations

import pytest

from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_list_newest_first_with_keyset_pages(viewer_client, settings, monkeypatch):
    monkeypatch.setattr("customers.selectors.PAGE_SIZE", 3)
    customers = CustomerFactory.create_batch(7)
    first = viewer_client.get("/customers/")
    rows = [c.user_id for c in first.context["page"].rows]
    assert rows == [c.user_id for c in reversed(customers)][:3]
    assert first.context["page"].total == 7
    cursor = first.context["page"].next_cursor
    second = viewer_client.get(f"/customers/?before={cursor}")
    assert [c.user_id for c in second.context["page"].rows] == [
        c.user_id for c in reversed(customers)
    ][3:6]
    third = viewer_client.get(f"/customers/?before={second.context['page'].next_cursor}")
    assert len(third.context["page"].rows) == 1
    assert third.context["page"].next_cursor is None


def test_search_by_user_id_email_and_name(viewer_client):
    CustomerFactory(user_id="abc-1", email="zed@example.com", name="Quinn Zed")
    CustomerFactory(user_id="xyz-2", email="amy@example.com", name="Amy Lee")
    for q in ("abc", "ZED@", "quinn"):
        page = viewer_client.get("/customers/", {"q": q}).context["page"]
        assert [c.user_id for c in page.rows] == ["abc-1"], q


def test_htmx_search_returns_fragment(viewer_client):
    CustomerFactory(user_id="frag-1")
    response = viewer_client.get("/customers/", {"q": "frag"}, HTTP_HX_REQUEST="true")
    assert b'id="results"' in response.content and b"<html" not in response.content


def test_bad_cursor_is_ignored(viewer_client):
    assert viewer_client.get("/customers/?before=nope").status_code == 200


def test_detail_and_404(viewer_client):
    customer = CustomerFactory(user_id="detail-1")
    assert b"detail-1" in viewer_client.get(f"/customers/{customer.pk}/").content
    assert viewer_client.get("/customers/999999999/").status_code == 404


def test_palette_finds_pages_actions_and_customers_by_role(admin_client, viewer_client):
    CustomerFactory(user_id="vip-42", email="vip@example.com")
    admin = admin_client.get("/palette/", {"q": "memb"})
    assert [e.label for _, e in admin.context["entries"]] == ["Members", "New member"]
    viewer = viewer_client.get("/palette/", {"q": "memb"})
    assert viewer.context["entries"] == []
    by_id = viewer_client.get("/palette/", {"q": "vip-42"})
    assert [c.user_id for c in by_id.context["customers"]] == ["vip-42"]
    by_email = viewer_client.get("/palette/", {"q": "vip@ex"})
    assert [c.user_id for c in by_email.context["customers"]] == ["vip-42"]


def test_palette_offers_actions(admin_client):
    labels = [e.label for _, e in admin_client.get("/palette/", {"q": "new"}).context["entries"]]
    assert "New member" in labels and "New API token" in labels
