"""Exports: pick two customers on the list, export them as XLSX with three chosen columns."""

from __future__ import annotations

import re

from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from activity.models import Activity
from tests.e2e.conftest import heading, login, shot
from tests.factories import CustomerFactory


def test_marketer_exports_two_customers_as_xlsx_with_three_columns(
    page: Page, marketer, password, tmp_path
):
    customers = [
        CustomerFactory(user_id=f"exp-{letter}", country=country)
        for letter, country in zip("abcd", ("PT", "=DE", "FR", "ES"), strict=True)
    ]
    picked = [customers[1], customers[3]]
    login(page, marketer.email, password)
    page.goto("/customers/")
    expect(heading(page)).to_have_text("Customers")
    for customer in picked:
        page.get_by_role("checkbox", name=f"Select {customer.user_id}", exact=True).check()
    expect(page.locator("[data-selected-count]")).to_have_text("2 selected on this page.")
    page.get_by_role("button", name="Export…").click()

    page.wait_for_url(re.compile(r"/exports/new/$"))
    expect(heading(page)).to_have_text("Export")
    expect(page.get_by_text("2 selected customers")).to_be_visible()
    page.get_by_label("Excel (XLSX)").check()
    boxes = page.locator('input[name="columns"]')
    for i in range(boxes.count()):
        boxes.nth(i).uncheck()
    for label in ("User ID", "E-mail", "Country"):
        page.get_by_role("checkbox", name=label, exact=True).check()
    shot(page, "export-form")
    with page.expect_download() as info:
        page.get_by_role("button", name="Export", exact=True).click()
    download = info.value
    assert re.fullmatch(r"customers-\d{8}-\d{4}\.xlsx", download.suggested_filename)
    path = tmp_path / download.suggested_filename
    download.save_as(path)

    rows = [list(r) for r in load_workbook(path, read_only=True).active.iter_rows(values_only=True)]
    assert rows == [
        ["id", "email", "country"],
        ["exp-b", "exp-b@example.com", "'=DE"],
        ["exp-d", "exp-d@example.com", "ES"],
    ]
    assert Activity.objects.get(action="customers.exported").count == 2
