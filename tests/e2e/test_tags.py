"""Configuration → Tags: delete a tag after seeing how many customers lose it."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tags.models import CustomerTag, Tag
from tests.e2e.conftest import heading, login, shot
from tests.factories import CustomerFactory


def test_marketer_deletes_tag_after_seeing_customer_count(page: Page, marketer, password):
    first, second, third = CustomerFactory.create_batch(3)
    doomed = Tag.objects.create(name="Churn risk")
    kept = Tag.objects.create(name="Newsletter")
    for customer in (first, second):
        CustomerTag.objects.create(customer=customer, tag=doomed)
    CustomerTag.objects.create(customer=third, tag=kept)

    login(page, marketer.email, password)
    page.locator("aside.sidebar nav").get_by_role("link", name="Tags").click()
    page.wait_for_url(re.compile(r"/settings/tags/$"))
    expect(heading(page)).to_have_text("Tags")
    rows = page.locator("#tag-rows tbody tr")
    row = rows.filter(has_text="Churn risk")
    expect(row.locator("td").nth(1)).to_have_text("2")
    expect(page.locator("#tag-rows .pager")).to_have_text("2 tags")

    row.get_by_role("link", name="Delete", exact=True).click()
    confirm = page.get_by_role("alertdialog", name="Delete “Churn risk”?")
    expect(confirm).to_contain_text("It is removed from 2 customers.")
    expect(page).to_have_url(re.compile(r"/settings/tags/$"))  # shown in place over htmx
    shot(page, "tags-delete")
    assert Tag.objects.filter(pk=doomed.pk).exists()  # nothing happens before confirming

    confirm.get_by_role("button", name="Delete tag").click()

    expect(page.get_by_role("status")).to_have_text(
        "Tag “Churn risk” deleted and removed from 2 customers."
    )
    expect(confirm).to_have_count(0)
    expect(rows.filter(has_text="Churn risk")).to_have_count(0)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Newsletter")
    expect(page.locator("#tag-rows .pager")).to_have_text("1 tag")

    assert not Tag.objects.filter(pk=doomed.pk).exists()
    assert not CustomerTag.objects.filter(tag_id=doomed.pk).exists()
    assert list(CustomerTag.objects.values_list("customer_id", "tag_id")) == [(third.pk, kept.pk)]
