"""The command palette: Ctrl+K, htmx-backed results, keyboard and mouse navigation."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import heading, login, shot
from tests.factories import CustomerFactory


def open_palette(page: Page):
    palette = page.locator("#palette")
    page.keyboard.press("Control+K")
    expect(palette).to_be_visible()
    expect(palette.locator("input")).to_be_focused()
    # Opening loads the unfiltered list (a "refresh" request); wait for it so its response
    # cannot land after the typed query's.
    expect(options(page).first).to_have_attribute("aria-selected", "true")
    return palette


def options(page: Page):
    return page.locator("#palette-results a[role=option]")


def test_ctrl_k_finds_members_and_enter_opens_it(page: Page, admin, password):
    login(page, admin.email, password)
    open_palette(page)
    shot(page, "palette")

    page.keyboard.type("memb")
    # The first option changes from "Customers" (the unfiltered list) to "Members" once the
    # typed query's results are swapped in.
    first = options(page).first
    expect(first).to_contain_text("Members")
    expect(first).to_have_attribute("aria-selected", "true")
    expect(options(page)).to_have_text([re.compile(r"^Members\s*Page$"), re.compile("New member")])

    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/settings/members/$"))
    expect(heading(page)).to_have_text("Members")


def test_palette_finds_customer_by_user_id(page: Page, admin, password):
    customer = CustomerFactory(
        user_id="cust-e2e-4242", first_name="Paula", last_name="Palette", name="Paula Palette"
    )
    CustomerFactory(user_id="other-0001")
    login(page, admin.email, password)
    open_palette(page)

    page.keyboard.type(customer.user_id)
    results = page.locator("#palette-results")
    expect(results.locator(".group")).to_have_text(["Customers"])
    expect(options(page)).to_have_count(1)
    expect(options(page).first).to_contain_text(customer.user_id)
    expect(options(page).first).to_contain_text(customer.email)
    shot(page, "palette-customer")

    options(page).first.click()
    page.wait_for_url(re.compile(rf"/customers/{customer.pk}/$"))
    expect(heading(page)).to_have_text("Paula Palette")
    shot(page, "customer-detail")


def test_arrow_keys_then_enter_opens_the_chosen_entry(page: Page, admin, password):
    login(page, admin.email, password)
    open_palette(page)
    page.keyboard.type("memb")
    expect(options(page).first).to_contain_text("Members")

    page.keyboard.press("ArrowDown")
    expect(options(page).nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/settings/members/#new$"))


def test_viewer_palette_does_not_offer_members(page: Page, viewer, password):
    login(page, viewer.email, password)
    open_palette(page)
    expect(options(page).filter(has_text="Members")).to_have_count(0)

    page.keyboard.type("memb")
    expect(page.locator("#palette-results .empty")).to_have_text("Nothing matches “memb”.")
    expect(options(page)).to_have_count(0)


def test_sidebar_jump_button_opens_palette_and_escape_closes_it(page: Page, admin, password):
    login(page, admin.email, password)
    palette = page.locator("#palette")
    expect(palette).to_be_hidden()

    page.get_by_role("button", name=re.compile("^Jump to")).click()
    expect(palette).to_be_visible()
    expect(palette.locator("input")).to_be_focused()
    expect(options(page).first).to_contain_text("Customers")

    page.keyboard.press("Escape")
    expect(palette).to_be_hidden()


def test_expired_session_sends_palette_to_login(page: Page, admin, password):
    login(page, admin.email, password)
    page.goto("/customers/")
    page.context.clear_cookies()  # the session ends while the page is open

    page.keyboard.press("Control+K")
    # The palette's htmx request gets 401 + HX-Redirect; htmx navigates to the login form
    # instead of swapping a login page into the results.
    page.wait_for_url(re.compile(r"/login/\?next="))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_signing_in_again_after_expiry_returns_to_the_page(page: Page, admin, password):
    login(page, admin.email, password)
    page.goto("/customers/")
    page.context.clear_cookies()
    page.keyboard.press("Control+K")
    page.wait_for_url(re.compile(r"/login/"))

    login_form_url = page.url
    page.fill("#id_email", admin.email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url != login_form_url)
    assert page.url.endswith("/customers/")
