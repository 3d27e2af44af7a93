"""Events: open a customer, filter the timeline by an event name, page to older events; the
catalog under Configuration → Events."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Page, expect

from activity.services import Actor
from events.ingest import events_ingest
from tests.e2e.conftest import heading, login, shot
from tests.factories import CustomerFactory


def _send(user_id: str, names: list[str]) -> None:
    now = timezone.now()
    events = [
        {
            "user_id": user_id,
            "name": name,
            "timestamp": (now - timedelta(hours=i)).isoformat(),
            "properties": {"amount": 10 + i} if name == "purchase" else {"path": f"/p/{i}"},
            "context": {"platform": "web", "browser": "Firefox", "os": "Linux"},
        }
        for i, name in enumerate(names)
    ]
    assert events_ingest(events, actor=Actor.system()).rejected == 0


def test_viewer_filters_a_customers_timeline_by_event_name(page: Page, viewer, password):
    customer = CustomerFactory(user_id="ada-1", name="Ada Lovelace")
    _send("ada-1", ["page_viewed", "purchase"] * 20)  # 40 events: more than one page

    login(page, viewer.email, password)
    page.goto(f"/customers/{customer.pk}/")
    expect(heading(page)).to_have_text("Ada Lovelace")
    timeline = page.locator("#timeline")
    events = timeline.locator(".timeline-event")
    expect(events).to_have_count(25)
    expect(events.first).to_contain_text("page_viewed")

    timeline.get_by_label("Show events named").select_option("purchase")
    expect(events.filter(has_text="page_viewed")).to_have_count(0)
    expect(events).to_have_count(20)
    expect(events.first).to_contain_text("amount 11")  # the newest purchase
    expect(page).to_have_url(re.compile(rf"/customers/{customer.pk}/$"))  # swapped in place
    shot(page, "events-timeline-filtered")

    timeline.get_by_label("Show events named").select_option("")
    expect(events).to_have_count(25)
    timeline.get_by_role("link", name="Older events").click()
    expect(events).to_have_count(40)
    expect(timeline.get_by_role("link", name="Older events")).to_have_count(0)
    # The analytics card shows what the web context set.
    expect(page.locator("dl.props.cols")).to_contain_text("Firefox")


def test_catalog_lists_event_names_with_counts(page: Page, viewer, password):
    _send("ada-1", ["purchase", "purchase", "page_viewed"])
    login(page, viewer.email, password)
    page.locator("aside.sidebar nav").get_by_role("link", name="Events").click()
    page.wait_for_url(re.compile(r"/settings/events/$"))
    expect(heading(page)).to_have_text("Events")
    row = page.locator("#event-rows tbody tr").filter(has_text="purchase")
    expect(row.locator("td").nth(1)).to_have_text("2")
    expect(row).to_contain_text("amount")
    page.get_by_label("Kind of event").select_option("custom")
    expect(page.locator("#event-rows tbody tr")).to_have_count(2)
