"""Your profile: the timezone choice shows up in the sidebar."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import heading, login, shot


def test_change_timezone_shows_in_sidebar(page: Page, admin, password):
    login(page, admin.email, password)
    me = page.locator("aside.sidebar .me")
    expect(me.locator(".me-role")).to_have_text("Admin · UTC")

    me.click()
    page.wait_for_url(re.compile(r"/profile/$"))
    expect(heading(page)).to_have_text("Your profile")
    expect(page.locator("#id_timezone")).to_have_value("UTC")

    page.select_option("#id_timezone", "Asia/Tokyo")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_role("status")).to_have_text("Profile saved.")
    expect(me.locator(".me-role")).to_have_text("Admin · Asia/Tokyo")
    expect(page.locator("#id_timezone")).to_have_value("Asia/Tokyo")
    shot(page, "profile")

    admin.refresh_from_db()
    assert admin.timezone == "Asia/Tokyo"
