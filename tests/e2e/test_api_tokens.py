"""Configuration → API tokens: create one, see it once, revoke it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from apitokens.models import ApiToken
from tests.e2e.conftest import heading, login, shot


def test_admin_creates_sees_once_and_revokes_token(page: Page, admin, password):
    login(page, admin.email, password)
    page.locator("aside.sidebar nav").get_by_role("link", name="API tokens").click()
    page.wait_for_url(re.compile(r"/settings/api-tokens/$"))
    expect(heading(page)).to_have_text("API tokens")
    expect(page.get_by_text("No API tokens yet.")).to_be_visible()

    page.fill("#id_name", "CRM sync")
    expect(page.locator("#id_member option:checked")).to_have_text(f"{admin.name} <{admin.email}>")
    page.get_by_role("button", name="Create token").click()

    new_token = page.locator("#new-token")
    expect(new_token).to_have_text(re.compile(r"^wbt_[0-9a-f]{8}_\S{43}$"))
    plaintext = new_token.inner_text()
    token = ApiToken.objects.get(name="CRM sync")
    assert plaintext.startswith(token.prefix + "_")
    row = page.locator("tbody tr", has_text="CRM sync")
    expect(row).to_contain_text(f"{token.prefix}_…")
    expect(row).to_contain_text("Active")
    shot(page, "api-tokens")

    # The form posts, then redirects (Post/Redirect/Get): a reload shows the page without it
    # and creates nothing.
    page.reload()
    expect(heading(page)).to_have_text("API tokens")
    expect(page.locator("#new-token")).to_have_count(0)
    expect(page.get_by_text(plaintext)).to_have_count(0)
    expect(row).to_contain_text("Active")
    assert ApiToken.objects.count() == 1  # the reload created no second token

    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("Token “CRM sync” revoked.")
    expect(row).to_contain_text("Revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
    assert dialogs == ["Revoke this token? Requests using it will be refused."]
    token.refresh_from_db()
    assert not token.is_active


def test_dismissing_revoke_confirm_keeps_token(page: Page, admin, password):
    login(page, admin.email, password)
    page.goto("/settings/api-tokens/")
    page.fill("#id_name", "Keep me")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_be_visible()

    page.on("dialog", lambda dialog: dialog.dismiss())
    row = page.locator("tbody tr", has_text="Keep me")
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("Active")
    page.goto("/settings/api-tokens/")
    expect(row).to_contain_text("Active")
    assert ApiToken.objects.get(name="Keep me").is_active
