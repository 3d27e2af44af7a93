"""Imports: a marketer uploads a five-row CSV from the Customers page, maps a column to a new
number field, dry-runs it (one row has a bad e-mail), imports it, follows it to the end in the
Customer data importer and downloads the error report.

No worker runs under the tests: the pages queue the jobs (recorded by ``jobs``), and the test
runs the pipeline itself (``pipeline.import_run``), as the worker would, while the pages poll."""

from __future__ import annotations

import csv
import re

import pytest
from playwright.sync_api import Page, expect

from customers.models import Customer, CustomField
from imports import pipeline
from imports import tasks as import_tasks
from imports.models import Import, ImportStatus
from segments import tasks as segment_tasks
from tests.e2e.conftest import heading, login, shot

PEOPLE = (
    "id,Full name,E-mail,Score\n"
    "imp-1,Ana Silva,ana@example.com,10\n"
    "imp-2,Rui Costa,rui@example.com,20\n"
    "imp-3,Eva Sousa,eva-at-example.com,30\n"
    "imp-4,Lia Ruiz,lia@example.com,40\n"
    "imp-5,Tom Berg,tom@example.com,50\n"
)


@pytest.fixture(autouse=True)
def imports_dir(settings, tmp_path):
    settings.IMPORTS_DIR = tmp_path / "imports"
    settings.IMPORTS_CHUNK_ROWS = 2  # several checkpoints, so the importer shows progress
    return settings.IMPORTS_DIR


@pytest.fixture
def jobs(monkeypatch) -> list[tuple[str, tuple]]:
    """The jobs the live server sends, recorded instead of reaching the broker."""
    sent: list[tuple[str, tuple]] = []
    for actor in (
        import_tasks.run_import,
        import_tasks.undo_import,
        segment_tasks.build_segment,
        segment_tasks.evaluate_pending,
    ):

        def send(*args, _name=actor.actor_name, **kwargs):
            sent.append((_name, args))

        monkeypatch.setattr(actor, "send", send)
    return sent


def _count(page: Page, label: str):
    return page.get_by_test_id("counts").locator("div", has_text=label).locator(".value")


def test_marketer_imports_a_csv_with_a_bad_row_and_downloads_the_error_report(
    page: Page, marketer, password, jobs, tmp_path
):
    login(page, marketer.email, password)
    page.goto("/customers/")
    expect(heading(page)).to_have_text("Customers")
    shot(page, "import-1-customers")
    page.get_by_role("link", name="Import", exact=True).click()

    # 1. Upload.
    page.wait_for_url(re.compile(r"/customers/import/$"))
    expect(heading(page)).to_have_text("Upload customers from a CSV file")
    sample = page.get_by_role("link", name="Download a sample CSV")
    expect(sample).to_have_attribute("href", "/customers/import/sample.csv")
    with page.expect_download() as info:
        sample.click()
    assert info.value.suggested_filename == "customers-sample.csv"
    page.set_input_files(
        "#import-file",
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": PEOPLE.encode()}],
    )
    shot(page, "import-2-upload")
    page.get_by_role("button", name="Upload and analyse").click()

    # 2. Map: the columns as matched from the headers; Score becomes a new number field.
    page.wait_for_url(re.compile(r"/imports/\d+/map/$"))
    imp = Import.objects.get()
    expect(heading(page)).to_have_text("Map the columns of people.csv")
    expect(page.locator("table.preview thead th")).to_have_text(
        ["id", "Full name", "E-mail", "Score"]
    )
    expect(page.locator("table.preview tbody tr")).to_have_count(5)
    rows = page.locator("table.mapping tbody tr")
    expect(rows.locator("th")).to_have_text(["id", "Full name", "E-mail", "Score"])
    expect(page.get_by_test_id("target-id")).to_have_value("id")
    expect(page.get_by_test_id("target-Full name")).to_have_value("name")
    expect(page.get_by_test_id("target-E-mail")).to_have_value("email")
    expect(page.get_by_test_id("target-Score")).to_have_value("skip")
    expect(page.locator("#check-2")).to_contain_text("1 of 5 values cannot be imported")
    expect(page.locator("#check-3")).to_contain_text("Not imported")
    page.get_by_test_id("target-Score").select_option(label="New custom field (number)")
    expect(page.locator("#check-3")).to_contain_text("All 5 checked values fit")
    shot(page, "import-3-map")
    page.get_by_role("button", name="Dry run").click()

    # 3. Dry run: queued, run as the worker would; the page polls until it has the counts.
    page.wait_for_url(re.compile(rf"/imports/{imp.pk}/$"))
    expect(heading(page)).to_have_text("Dry run of people.csv")
    assert jobs == [("run_import", (imp.pk,))]
    assert pipeline.import_run(imp.pk) is not None
    expect(_count(page, "Would create")).to_have_text("4")
    expect(_count(page, "Would fail")).to_have_text("1")
    expect(_count(page, "Would update")).to_have_text("0")
    failing = page.locator("table.errors tbody tr")
    expect(failing).to_have_count(1)
    expect(failing).to_contain_text("“eva-at-example.com” is not a valid e-mail address.")
    assert not Customer.objects.exists() and not CustomField.objects.exists()
    shot(page, "import-4-dry-run")
    page.get_by_role("button", name="Import records").click()

    # 4. Import: the dialog points to the importer.
    page.wait_for_url(re.compile(rf"/imports/{imp.pk}/\?started=1$"))
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Processing your import")).to_be_visible()
    shot(page, "import-5-processing")
    dialog.get_by_role("link", name="Go to the Customer data importer").click()

    # 5. The importer polls while the import runs: its progress bar, then the outcome.
    page.wait_for_url(re.compile(r"/imports/$"))
    expect(heading(page)).to_have_text("Customer data importer")
    row = page.locator(f'tr[data-import="{imp.pk}"]')
    expect(row.locator(".import-status")).to_contain_text("queued")
    shot(page, "import-6-queued")
    seen: list[str] = []

    def watch(current: Import) -> None:
        """At the first checkpoint, the page has picked up the running import."""
        if not seen:
            expect(row.get_by_role("progressbar")).to_be_visible()
            seen.append(row.locator(".import-status").inner_text())
            shot(page, "import-7-running")

    assert pipeline.import_run(imp.pk, progress=watch) is not None
    assert seen and "running" in seen[0]
    expect(row.locator(".import-status")).to_contain_text("completed with errors")
    expect(row.locator(".results div", has_text="Created").locator("dd")).to_have_text("4")
    expect(page.locator("#import-table")).not_to_have_attribute("hx-trigger", re.compile("."))
    shot(page, "import-8-done")
    imp.refresh_from_db()
    assert imp.status == ImportStatus.COMPLETED_WITH_ERRORS and not imp.dry_run
    assert sorted(Customer.objects.values_list("user_id", flat=True)) == [
        "imp-1",
        "imp-2",
        "imp-4",
        "imp-5",
    ]
    assert Customer.objects.get(user_id="imp-4").custom == {"score": 40}

    # 6. The error report has the bad row, its reason and its original values.
    with page.expect_download() as info:
        row.get_by_role("link", name="Error report").click()
    download = info.value
    assert download.suggested_filename == f"import-{imp.pk}-errors.csv"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with open(path, newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == [
            ["row", "column", "reason", "id", "Full name", "E-mail", "Score"],
            [
                "4",
                "E-mail",
                "“eva-at-example.com” is not a valid e-mail address.",
                "imp-3",
                "Eva Sousa",
                "eva-at-example.com",
                "30",
            ],
        ]
