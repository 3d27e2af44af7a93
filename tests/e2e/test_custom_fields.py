"""Configuration → Custom fields: create one, then find it on a customer's edit page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from customers.models import CustomField
from tests.e2e.conftest import heading, login, shot
from tests.factories import CustomerFactory


def test_admin_creates_field_which_appears_on_customer_form(page: Page, admin, password):
    customer = CustomerFactory(user_id="cf-customer", name="Cora Field")
    login(page, admin.email, password)
    page.locator("aside.sidebar nav").get_by_role("link", name="Custom fields").click()
    page.wait_for_url(re.compile(r"/settings/custom-fields/$"))
    expect(heading(page)).to_have_text("Custom fields")
    expect(page.get_by_text("No custom fields yet.")).to_be_visible()

    page.get_by_label("Label", exact=True).fill("Favourite colour")
    page.get_by_label("Type", exact=True).select_option(label="Text")
    page.get_by_role("button", name="Add field").click()

    page.wait_for_url(re.compile(r"/settings/custom-fields/$"))
    expect(page.get_by_role("status")).to_contain_text(
        "Custom field “Favourite colour” created. Its name is custom.favourite_colour;"
    )
    row = page.locator("tbody tr", has_text="Favourite colour")
    expect(row.locator("code")).to_have_text("custom.favourite_colour")
    expect(row).to_contain_text("Text")
    expect(row.locator(".field-stats")).to_contain_text("0 customers")  # loaded over htmx
    expect(page.get_by_text("No custom fields yet.")).to_have_count(0)
    shot(page, "custom-fields")

    field = CustomField.objects.get()
    assert (field.name, field.label, field.type) == ("favourite_colour", "Favourite colour", "text")
    assert field.created_by == admin
    assert field.deleted_at is None

    page.goto(f"/customers/{customer.pk}/")
    expect(heading(page)).to_have_text("Cora Field")
    page.get_by_role("link", name="Edit profile").click()
    page.wait_for_url(re.compile(rf"/customers/{customer.pk}/edit/$"))
    expect(heading(page)).to_have_text("Edit Cora Field")
    custom = page.locator("section.card", has=page.get_by_role("heading", name="Custom fields"))
    colour = custom.get_by_label("Favourite colour")
    expect(colour).to_be_visible()
    expect(colour).to_have_value("")
    expect(colour).to_have_attribute("name", "custom.favourite_colour")
    expect(custom.get_by_text("No custom fields yet.")).to_have_count(0)
