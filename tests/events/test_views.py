"""Configuration → Events and the customer page's timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from activity.services import Actor
from events.ingest import events_ingest
from events.selectors import TIMELINE_PAGE
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _send(user_id: str, names: list[str], properties: dict | None = None) -> None:
    events = [
        {
            "user_id": user_id,
            "name": name,
            "timestamp": (NOW - timedelta(minutes=i)).isoformat(),
            "properties": properties or {},
        }
        for i, name in enumerate(names)
    ]
    result = events_ingest(events, actor=Actor.system(), now=NOW)
    assert result.rejected == 0


def test_catalog_lists_custom_and_builtin_events_with_property_types(viewer_client):
    _send("u-1", ["purchase", "purchase"], {"amount": 12.5, "sku": "A-1"})
    page = viewer_client.get(reverse("event-list")).content.decode()
    assert "purchase" in page and "Custom" in page
    assert "card-completed" in page and "Built-in" in page  # known up front, never seen
    assert "amount" in page and "number" in page and "sku" in page


def test_catalog_filters_by_kind_and_search(viewer_client):
    _send("u-1", ["purchase", "page_viewed"])
    url = reverse("event-list")
    custom = viewer_client.get(url, {"kind": "custom"}).content.decode()
    assert "purchase" in custom and "card-completed" not in custom
    found = viewer_client.get(url, {"q": "page"}, headers={"HX-Request": "true"})
    body = found.content.decode()
    assert "page_viewed" in body and "purchase" not in body
    assert "<html" not in body  # the htmx answer is the rows partial only


def test_catalog_sorted_by_count(viewer_client):
    _send("u-1", ["rare", "common", "common", "common"])
    body = viewer_client.get(reverse("event-list"), {"sort": "count"}).content.decode()
    assert body.index("common") < body.index("rare")


def test_customer_page_shows_the_timeline_newest_first(viewer_client):
    customer = CustomerFactory(user_id="u-1")
    _send("u-1", ["ev-newest", "ev-middle", "ev-oldest"], {"plan": "pro"})
    page = viewer_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()
    timeline = page[page.index('id="timeline-list"') :]
    assert timeline.index("ev-newest") < timeline.index("ev-middle") < timeline.index("ev-oldest")
    assert "plan" in timeline and "pro" in timeline


def test_timeline_filters_by_name_and_pages_older_events(viewer_client):
    customer = CustomerFactory(user_id="u-1")
    _send("u-1", ["purchase"] * (TIMELINE_PAGE + 2) + ["page_viewed"])
    url = reverse("customer-events", args=[customer.pk])
    only = viewer_client.get(url, {"name": "page_viewed"}, headers={"HX-Request": "true"})
    body = only.content.decode()
    assert body.count('class="timeline-event"') == 1 and 'id="timeline"' in body

    first = viewer_client.get(url, {"name": "purchase"}).content.decode()
    assert first.count('class="timeline-event"') == TIMELINE_PAGE
    assert "Older events" in first
    cursor = first.split("cursor=")[1].split("&")[0].split('"')[0]
    more = viewer_client.get(
        url, {"name": "purchase", "cursor": cursor}, headers={"HX-Request": "true"}
    ).content.decode()
    assert more.count('class="timeline-event"') == 2
    assert "Older events" not in more and 'id="timeline"' not in more


def test_timeline_ignores_unknown_names_and_bad_cursors(viewer_client):
    customer = CustomerFactory(user_id="u-1")
    _send("u-1", ["purchase"])
    url = reverse("customer-events", args=[customer.pk])
    body = viewer_client.get(url, {"name": "nope", "cursor": "garbage"}).content.decode()
    assert body.count('class="timeline-event"') == 1


def test_customer_without_events(viewer_client):
    customer = CustomerFactory()
    page = viewer_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()
    assert "No events recorded yet." in page
