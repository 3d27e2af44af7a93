"""Signing in and out through the real forms."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import heading, login, logout, shot


def test_admin_signs_in_lands_on_overview_and_signs_out(page: Page, admin, password):
    page.goto("/")
    page.wait_for_url(re.compile(r"/login/\?next=/$"))  # signed out: sent to the form
    shot(page, "login")

    login(page, admin.email, password)

    expect(page).to_have_title("Overview · Workbench")
    expect(heading(page)).to_have_text("Welcome, Ada Admin")
    overview = page.locator("aside .nav").get_by_role("link", name="Overview")
    expect(overview).to_have_attribute("aria-current", "page")
    shot(page, "overview")

    logout(page)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The session is gone: the overview sends us back to the form.
    page.goto("/")
    page.wait_for_url(re.compile(r"/login/\?next=/$"))


def test_wrong_password_shows_error_and_stays_on_login(page: Page, admin):
    page.goto("/login/")
    page.fill("#id_email", admin.email)
    page.fill("#id_password", "not the password")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Sign in").click()
    assert posted.value.status == 400

    expect(page.get_by_role("alert")).to_have_text(
        "That e-mail and password do not match an active member."
    )
    assert page.url.endswith("/login/")
    expect(page.locator("#id_email")).to_have_value(admin.email)
    expect(page.locator("aside.sidebar")).to_have_count(0)
    shot(page, "login-error")


def test_signing_in_from_a_deep_link_returns_there(page: Page, admin, password):
    page.goto("/settings/system/")
    page.wait_for_url(re.compile(r"/login/\?next=/settings/system/$"))
    page.fill("#id_email", admin.email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/settings/system/$"))
    expect(heading(page)).to_have_text("System status")
