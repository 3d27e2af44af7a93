"""Do Not Contact import: a marketer imports a small .xlsx whose first row is a header (skipped)
and one of whose lines is not a contact, maps the columns, analyses, chooses the accounts and
imports; gets a notification; then filters the list for the imported entries and exports them.

No worker runs under the tests: the pages queue the import (recorded by ``jobs``) and the test
runs it (``importing.import_run``), as the worker would, while the page polls."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import Workbook
from playwright.sync_api import Page, expect

from donotcontact import importing
from donotcontact import tasks as dnc_tasks
from donotcontact.models import Entry, EntryImport, ImportStatus, Source
from tests.e2e.conftest import heading, login, shot


@pytest.fixture(autouse=True)
def dnc_dir(settings, tmp_path):
    settings.DNC_IMPORTS_DIR = tmp_path / "dnc"
    return settings.DNC_IMPORTS_DIR


@pytest.fixture
def jobs(monkeypatch) -> list[tuple[str, tuple]]:
    sent: list[tuple[str, tuple]] = []
    for actor in (dnc_tasks.analyze_entry_import, dnc_tasks.run_entry_import):

        def send(*args, _name=actor.actor_name, **kwargs):
            sent.append((_name, args))

        monkeypatch.setattr(actor, "send", send)
    return sent


def _workbook() -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in (
        ("E-mail", "Sender"),
        ("ann@example.com", "Newsletter"),
        ("not a contact", ""),
        ("bob@example.com", ""),
    ):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _count(page: Page, label: str):
    counts = page.get_by_test_id("counts")
    return counts.locator("div", has=page.get_by_text(label, exact=True)).locator(".value")


def test_marketer_imports_an_xlsx_then_filters_and_exports(
    page: Page, marketer, password, jobs, tmp_path
):
    Entry.objects.create(contact="old@example.com", channel="email", source=Source.MANUAL)
    login(page, marketer.email, password)
    page.goto("/do-not-contact/")
    expect(heading(page)).to_have_text("Do Not Contact")
    page.get_by_role("link", name="Import", exact=True).click()

    # 1. Choose the file.
    page.wait_for_url(re.compile(r"/do-not-contact/import/$"))
    expect(heading(page)).to_have_text("Import Do Not Contact entries")
    page.set_input_files(
        "#dnc-import-file",
        files=[
            {
                "name": "unsubscribed.xlsx",
                "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "buffer": _workbook(),
            }
        ],
    )
    shot(page, "dnc-import-1-upload")
    page.get_by_role("button", name="Upload").click()

    # 2. Rows and columns: the header row is recognised and skipped; undo and redo a mapping.
    page.wait_for_url(re.compile(r"/do-not-contact/import/\d+/map/$"))
    imp = EntryImport.objects.get()
    expect(heading(page)).to_have_text("Rows and columns of unsubscribed.xlsx")
    expect(page.get_by_label("Start at row")).to_have_value("2")
    preview = page.get_by_test_id("preview").locator("tbody tr")
    expect(preview).to_have_count(3)
    expect(preview.first).to_contain_text("ann@example.com")
    mapped = page.get_by_test_id("mapped")
    expect(mapped).to_contain_text("Sender ← column B")
    page.get_by_role("button", name="Undo the mapping of Sender").click()
    expect(mapped).not_to_contain_text("Sender")
    expect(page.get_by_label("Column B holds")).to_have_value("skip")
    page.get_by_label("Column B holds").select_option("sender")
    expect(mapped).to_contain_text("Sender ← column B")
    # Starting at row 1 would import the header as a contact; back to row 2.
    page.get_by_label("Start at row").fill("1")
    expect(preview.first).to_contain_text("E-mail")
    page.get_by_label("Start at row").fill("2")
    expect(preview.first).to_contain_text("ann@example.com")
    shot(page, "dnc-import-2-map")
    page.get_by_role("button", name="Analyze").click()

    # 3. Analysis (small files inline): two valid rows, one invalid with its reason.
    page.wait_for_url(re.compile(rf"/do-not-contact/import/{imp.pk}/$"))
    expect(_count(page, "Valid")).to_have_text("2")
    expect(_count(page, "Invalid")).to_have_text("1")
    problems = page.get_by_test_id("problems").locator("tbody tr")
    expect(problems).to_have_count(1)
    expect(problems).to_contain_text("not a contact")
    expect(problems.locator("td").first).to_have_text("3")
    shot(page, "dnc-import-3-analysis")

    # 4. Accounts: every account, and one more typed in.
    expect(page.get_by_label("All accounts")).to_be_checked()
    page.get_by_label("Another account").fill("Brand EU")
    page.get_by_role("button", name="Import 2 contacts").click()

    # 5. Import: queued, run as the worker would; the page polls until it is done.
    expect(page.get_by_role("progressbar")).to_be_visible()
    assert jobs == [("run_entry_import", (imp.pk,))]
    assert importing.import_run(imp.pk) is not None
    expect(page.get_by_role("status")).to_contain_text("Import finished: 4 entries added")
    expect(_count(page, "Added")).to_have_text("4")
    expect(page.locator("#notification-bell")).to_contain_text("1")
    shot(page, "dnc-import-4-done")
    imp.refresh_from_db()
    assert imp.status == ImportStatus.COMPLETED
    assert set(Entry.objects.filter(source=Source.IMPORT).values_list("contact", "account")) == {
        ("ann@example.com", ""),
        ("ann@example.com", "Brand EU"),
        ("bob@example.com", ""),
        ("bob@example.com", "Brand EU"),
    }

    # The notification leads back to the import.
    page.locator("#notification-bell").click()
    expect(heading(page)).to_have_text("Notifications")
    page.get_by_role("button", name="Open").click()
    page.wait_for_url(re.compile(rf"/do-not-contact/import/{imp.pk}/$"))

    # The list, filtered to the imported entries for Brand EU, then exported.
    page.get_by_role("link", name="Go to the Do Not Contact list").click()
    page.wait_for_url(re.compile(r"/do-not-contact/$"))
    expect(page.locator("[data-total]")).to_have_text("5 entries")
    page.locator("details.more-filters summary").click()
    page.get_by_label("Brand EU").check()
    expect(page.locator("[data-total]")).to_have_text("2 entries")
    expect(page.locator("table.dnc tbody")).not_to_contain_text("old@example.com")
    shot(page, "dnc-import-5-list")
    with page.expect_download() as info:
        page.get_by_role("link", name="Export all matching (CSV)").click()
    path = tmp_path / "dnc.csv"
    info.value.save_as(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert {r[next(k for k in r if "ontact" in k)] for r in rows} == {
        "ann@example.com",
        "bob@example.com",
    }
