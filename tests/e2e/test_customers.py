"""Customers: edit a profile (with a validation error on the way), and tag from the list."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from customers.models import CustomField
from tags.models import CustomerTag, Tag
from tests.e2e.conftest import heading, login, shot
from tests.factories import CustomerFactory


def prop(page: Page, term: str) -> Locator:
    """The value next to a term in the customer page's property lists."""
    return page.locator(f'dl.props > dt:text-is("{term}") + dd')


def test_marketer_edits_profile_after_fixing_invalid_phone(page: Page, marketer, password):
    CustomField.objects.create(name="plan", label="Plan", type="text")
    customer = CustomerFactory(
        user_id="edit-me", name="Carla Customer", city="Lisbon", custom={"plan": "basic"}
    )
    login(page, marketer.email, password)
    page.goto(f"/customers/{customer.pk}/")
    expect(heading(page)).to_have_text("Carla Customer")
    expect(prop(page, "Plan")).to_have_text("basic")
    expect(prop(page, "City")).to_have_text("Lisbon")

    page.get_by_role("link", name="Edit profile").click()
    page.wait_for_url(re.compile(rf"/customers/{customer.pk}/edit/$"))
    expect(heading(page)).to_have_text("Edit Carla Customer")
    plan = page.get_by_label("Plan", exact=True)
    city = page.get_by_label("City", exact=True)
    phone = page.get_by_label("Phone", exact=True)
    expect(plan).to_have_value("basic")
    plan.fill("pro")
    city.fill("Porto")
    phone.fill("12")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("alert")).to_have_text("Please correct the fields marked below.")
    phone_error = page.locator(".field", has=phone).locator(".errorlist")
    expect(phone_error).to_contain_text("“12” is not a valid phone number.")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_have_accessible_description(re.compile(r"^“12” is not a valid phone number"))
    expect(page.locator(".errorlist")).to_have_count(1)  # only the phone is wrong
    expect(plan).to_have_value("pro")
    expect(city).to_have_value("Porto")
    expect(phone).to_have_value("12")
    shot(page, "customer-edit-error")
    customer.refresh_from_db()
    assert (customer.city, customer.phone, customer.custom) == ("Lisbon", "", {"plan": "basic"})

    phone.fill("+44 20 7946 0958")
    page.get_by_role("button", name="Save changes").click()

    page.wait_for_url(re.compile(rf"/customers/{customer.pk}/$"))
    expect(page.get_by_role("status")).to_have_text("Changes saved.")
    expect(prop(page, "Plan")).to_have_text("pro")
    expect(prop(page, "City")).to_have_text("Porto")
    expect(prop(page, "Phone")).to_have_text("+442079460958")
    expect(prop(page, "Name")).to_have_text("Carla Customer")  # untouched
    shot(page, "customer-detail")

    customer.refresh_from_db()
    assert customer.phone == "+442079460958"
    assert customer.city == "Porto"
    assert customer.custom == {"plan": "pro"}
    assert customer.name == "Carla Customer"


def test_marketer_tags_three_customers_then_filters_by_tag(page: Page, marketer, password):
    customers = [CustomerFactory(user_id=f"cust-{letter}") for letter in "abcde"]
    picked = [customers[0], customers[2], customers[3]]
    login(page, marketer.email, password)
    page.locator("aside.sidebar nav").get_by_role("link", name="Customers").click()
    page.wait_for_url(re.compile(r"/customers/$"))
    expect(heading(page)).to_have_text("Customers")
    total = page.locator("#results [data-total]")
    expect(total).to_have_text("5 customers")

    for customer in picked:
        page.get_by_role("checkbox", name=f"Select {customer.user_id}", exact=True).check()
    expect(page.locator("[data-selected-count]")).to_have_text("3 selected on this page.")
    page.get_by_label("Tags to add or remove").fill("Spring promo")
    page.get_by_role("button", name="Add tags").click()

    expect(page.get_by_role("status")).to_have_text("Added Spring promo: 3 tag assignments.")
    expect(total).to_have_text("5 customers")
    tag = Tag.objects.get(name="Spring promo")
    assert tag.created_by == marketer
    tagged = CustomerTag.objects.filter(tag=tag)
    assert {t.customer_id for t in tagged} == {c.pk for c in picked}
    assert {t.added_by_id for t in tagged} == {marketer.pk}

    with page.expect_response(lambda r: "tag=" in r.url) as filtered:
        page.get_by_label("Tag", exact=True).select_option(label="Spring promo")
    assert filtered.value.request.headers.get("hx-request") == "true"  # swapped in, no reload
    expect(total).to_have_text("3 customers")
    user_ids = page.locator("#results tbody tr td a.mono")
    # Newest first: the rows come back in reverse creation order.
    expect(user_ids).to_have_text([c.user_id for c in reversed(picked)])
    expect(page).to_have_url(re.compile(rf"/customers/\?(.*&)?tag={tag.pk}(&|$)"))
    expect(page.get_by_label("Tag", exact=True)).to_have_value(str(tag.pk))
    shot(page, "customers-tag-filter")
