"""Configuration → Members: add a member over htmx, then sign in as them."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import heading, login, logout, shot


def test_admin_adds_member_who_then_signs_in(page: Page, admin, password):
    login(page, admin.email, password)
    page.locator("aside.sidebar nav").get_by_role("link", name="Members").click()
    page.wait_for_url(re.compile(r"/settings/members/$"))
    expect(heading(page)).to_have_text("Members")

    page.fill("#id_email", "Nina.New@Test.Example")
    page.fill("#id_name", "Nina New")
    page.select_option("#id_role", label="Marketer")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Add member").click()
    assert posted.value.status == 200
    assert posted.value.request.headers.get("hx-request") == "true"  # swapped in, no reload

    notice = page.locator("#members .notice.secret")
    expect(notice).to_contain_text("nina.new@test.example can now sign in with this password")
    new_password = notice.locator("code").inner_text().strip()
    assert len(new_password) >= 12
    row = page.locator("#members tbody tr", has_text="nina.new@test.example")
    expect(row).to_contain_text("Nina New")
    expect(row).to_contain_text("Marketer")
    expect(page.locator("#id_email")).to_have_value("")  # the form was reset
    shot(page, "members")

    logout(page)
    login(page, "nina.new@test.example", new_password)
    expect(heading(page)).to_have_text("Welcome, Nina New")
    expect(page.locator(".me-role")).to_contain_text("Marketer")


def test_duplicate_email_shows_error_in_place(page: Page, admin, password):
    login(page, admin.email, password)
    page.goto("/settings/members/")
    page.fill("#id_email", admin.email.upper())
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#new .errorlist")).to_have_text(
        "A member with this e-mail address already exists."
    )
    expect(page.locator("#members .notice.secret")).to_have_count(0)
