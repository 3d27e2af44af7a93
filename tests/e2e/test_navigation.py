"""The sidebar: what each role sees, and where each link goes."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import heading, login, shot

ADMIN_PAGES = [
    ("Customers", "/customers/", "customers"),
    ("API tokens", "/settings/api-tokens/", None),  # screenshot taken in test_api_tokens
    ("Members", "/settings/members/", None),  # screenshot taken in test_members
    ("System status", "/settings/system/", "system-status"),
]


def sidebar(page: Page):
    return page.locator("aside.sidebar nav")


def test_admin_sidebar_links_reach_each_page(page: Page, admin, password):
    login(page, admin.email, password)
    expect(sidebar(page).locator(".nav-title")).to_have_text(["Configuration"])

    for label, path, screenshot in ADMIN_PAGES:
        link = sidebar(page).get_by_role("link", name=label, exact=True)
        link.click()
        page.wait_for_url(re.compile(rf"{re.escape(path)}$"))
        expect(heading(page)).to_have_text(label)
        expect(sidebar(page).get_by_role("link", name=label, exact=True)).to_have_attribute(
            "aria-current", "page"
        )
        if screenshot:
            shot(page, screenshot)


def test_viewer_sidebar_shows_only_what_a_viewer_may_open(page: Page, viewer, password):
    login(page, viewer.email, password)
    nav = sidebar(page)
    expect(nav.get_by_role("link", name="Customers", exact=True)).to_be_visible()
    # Viewers may read the tag list; everything else under Configuration is hidden.
    expect(nav.locator(".nav-title")).to_have_text(["Configuration"])
    expect(nav.get_by_role("link", name="Tags", exact=True)).to_be_visible()
    for label in ("API tokens", "Members", "System status", "Custom fields", "Activity"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_have_count(0)
    expect(page.locator(".me-role")).to_contain_text("Viewer")


def test_viewer_opening_admin_page_gets_not_allowed(page: Page, viewer, password):
    login(page, viewer.email, password)
    response = page.goto("/settings/members/")
    assert response is not None and response.status == 403
    expect(heading(page)).to_have_text("Not allowed")
    expect(page.get_by_text("This needs the Admin role.")).to_be_visible()
    # Still signed in, with the sidebar to get back.
    expect(page.locator("aside.sidebar")).to_be_visible()
    shot(page, "403")
