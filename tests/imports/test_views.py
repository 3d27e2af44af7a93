"""The CSV import wizard and the Customer data importer (imports/views.py, templates/imports):
upload (refusals, the size limit while the body streams in, CSRF behind csrf_exempt), the
sample file, the map page and its htmx column check, the dry run and the real import, the
importer list and its polling, cancel and undo, the error report, and who may do what.

No worker runs: the view queues a job, the test checks it was sent and runs the pipeline
itself (``pipeline.import_run``), as the worker would."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from activity.models import Activity
from customers.models import Customer
from customers.profile import STANDARD_FIELDS
from imports import pipeline
from imports.models import Import, ImportStatus
from tests.factories import CustomerFactory, CustomFieldFactory
from tests.imports.conftest import csv_text, files_in, make_import, upload

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
NEW = "/customers/import/"
PEOPLE = csv_text(
    "id,name,email,city",
    "u1,Ann,ann@example.com,Oslo",
    "u2,Bob,nope,Rome",
    "u3,Cy,cy@example.com,Lima",
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def csv_file(data: str | bytes = PEOPLE, name: str = "people.csv") -> SimpleUploadedFile:
    raw = data.encode() if isinstance(data, str) else data
    return SimpleUploadedFile(name, raw, content_type="text/csv")


def html(response) -> str:
    return response.content.decode()


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode())))


def map_form(imp: Import, **targets: str) -> dict[str, str]:
    """The map form as the page posts it: the suggested targets with ``targets`` (header →
    target) changed, "Tag records" off."""
    return {
        f"target-{i}": targets.get(header, target)
        for i, (header, target) in enumerate(zip(imp.headers, imp.mapping, strict=True))
    }


def drafted(client: Client, data: str | bytes = PEOPLE) -> Import:
    """Upload through the page; the draft it made."""
    response = client.post(NEW, {"file": csv_file(data)})
    assert response.status_code == 302, html(response)
    return Import.objects.latest("pk")


def dry_run(client: Client, imp: Import, **targets: str) -> Import:
    """POST the map form and run the queued dry run as the worker would."""
    response = client.post(reverse("import-map", args=[imp.pk]), map_form(imp, **targets))
    assert response.status_code == 302, html(response)
    assert pipeline.import_run(imp.pk) is not None
    imp.refresh_from_db()
    return imp


# --- 1. upload ------------------------------------------------------------------------------


def test_upload_page(marketer_client):
    response = marketer_client.get(NEW)
    assert response.status_code == 200
    page = html(response)
    assert 'enctype="multipart/form-data"' in page and 'type="file" name="file"' in page
    assert f'href="{reverse("import-sample")}"' in page and "Download a sample CSV" in page
    assert 'aria-current="step"><span>1</span>Upload' in page


def test_customers_page_links_to_the_upload(marketer_client, viewer_client):
    assert f'href="{NEW}">Import</a>' in html(marketer_client.get(reverse("customer-list")))
    assert f'href="{NEW}"' not in html(viewer_client.get(reverse("customer-list")))


def test_upload_stores_the_file_and_goes_to_the_map_page(marketer_client, marketer, imports_dir):
    response = marketer_client.post(NEW, {"file": csv_file()})
    imp = Import.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("import-map", args=[imp.pk])
    assert imp.status == ImportStatus.DRAFT and imp.created_by == marketer
    assert imp.file_name == "people.csv" and imp.headers == ["id", "name", "email", "city"]
    assert imp.mapping == ["id", "name", "email", "city"]  # suggested from the headers
    assert files_in(imports_dir) == [imports_dir / imp.file_path]
    assert (imports_dir / imp.file_path).read_text() == PEOPLE


def test_upload_without_a_file(marketer_client):
    response = marketer_client.post(NEW, {})
    assert response.status_code == 422
    assert "Choose a CSV file to upload." in html(response)
    assert not Import.objects.exists()


def test_a_png_renamed_csv_is_refused_with_the_reason(marketer_client, imports_dir):
    response = marketer_client.post(NEW, {"file": csv_file(PNG, name="photo.csv")})
    assert response.status_code == 422
    assert "This looks like a PNG image, not a CSV file." in html(response)
    assert 'role="alert"' in html(response)
    assert not Import.objects.exists()
    assert files_in(imports_dir) == []


def test_a_file_over_the_limit_is_refused_while_it_streams_in(
    marketer_client, settings, imports_dir
):
    settings.IMPORTS_MAX_BYTES = 1000
    big = csv_text("id,name", *(f"u{i},Person number {i}" for i in range(200)))
    assert len(big) > 3000
    response = marketer_client.post(NEW, {"file": csv_file(big)})
    assert response.status_code == 422
    assert "too large" in html(response)
    assert not Import.objects.exists()
    assert files_in(imports_dir) == []


def test_a_file_under_the_limit_still_goes_through(marketer_client, settings):
    settings.IMPORTS_MAX_BYTES = 1000
    assert marketer_client.post(NEW, {"file": csv_file()}).status_code == 302


def test_upload_checks_csrf_itself(marketer, imports_dir):
    """The view is csrf_exempt so its size limit is in place before the body is read; an inner
    csrf_protect still refuses a POST without the token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)
    refused = client.post(NEW, {"file": csv_file()})
    assert refused.status_code == 403
    assert not Import.objects.exists() and files_in(imports_dir) == []

    page = html(client.get(NEW))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    accepted = client.post(NEW, {"file": csv_file(), "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert Import.objects.get().status == ImportStatus.DRAFT


def test_sample_csv_has_id_the_standard_fields_and_each_custom_field(viewer_client):
    CustomFieldFactory(name="ltv", label="Lifetime value", type="number")
    CustomFieldFactory(name="plan", label="Plan")
    response = viewer_client.get(reverse("import-sample"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="customers-sample.csv"'
    header = csv_rows(response)
    assert header[0][0] == "id"
    assert header[0][1 : 1 + len(STANDARD_FIELDS)] == list(STANDARD_FIELDS)
    assert sorted(header[0][1 + len(STANDARD_FIELDS) :]) == ["custom.ltv", "custom.plan"]
    assert len(header) == 1


# --- 2. map ---------------------------------------------------------------------------------


def test_map_page_shows_the_first_rows_and_the_suggested_targets(marketer_client):
    imp = drafted(marketer_client)
    response = marketer_client.get(reverse("import-map", args=[imp.pk]))
    assert response.status_code == 200
    page = html(response)
    assert "Map the columns of people.csv" in page
    assert "UTF-8" in page and "comma-separated" in page
    for cell in ("ann@example.com", "Rome", "u3"):
        assert f"<td>{cell}</td>" in page
    for target in ("id", "name", "email", "city"):
        assert page.count(f'<option value="{target}" selected>') == 1
    # The e-mail column's check already counts the bad value in the first rows.
    check = re.search(r'<div id="check-2".*?</div>\s*</td>', page, re.S).group(0)
    assert "1 of 3 values cannot be imported" in check and "nope" in check
    assert "All 3 checked values fit" in page  # the id column
    # Tag records is on for a new draft, with today's default tag.
    assert 'name="tag_records" value="1" checked' in page
    assert re.search(r'name="default_tag" value="Import \d{4}-\d\d-\d\d \d\d:\d\d"', page)


def test_column_check_returns_the_fragment_for_the_chosen_target(marketer_client):
    imp = drafted(marketer_client)
    url = reverse("import-column", args=[imp.pk, 3])  # the city column

    as_number = marketer_client.get(url, {"target-3": "new.number"}, **HX)
    fragment = html(as_number)
    assert as_number.status_code == 200 and "<html" not in fragment
    assert fragment.strip().startswith('<div id="check-3" class="column-check">')
    assert "3 of 3 values cannot be imported" in fragment and "Oslo" in fragment

    as_text = html(marketer_client.get(url, {"target-3": "city"}, **HX))
    assert "All 3 checked values fit" in as_text and "cannot be imported" not in as_text
    skipped = html(marketer_client.get(url, {"target-3": "skip"}, **HX))
    assert "Not imported" in skipped and "<code>Lima</code>" in skipped
    unknown = html(marketer_client.get(url, {"target-3": "custom.nothing"}, **HX))
    assert "is not a field of this workspace" in unknown

    assert marketer_client.get(reverse("import-column", args=[imp.pk, 4])).status_code == 404


def test_map_without_an_id_column_is_refused(marketer_client, sent):
    imp = drafted(marketer_client)
    response = marketer_client.post(
        reverse("import-map", args=[imp.pk]), map_form(imp, id="external_id")
    )
    assert response.status_code == 422
    page = html(response)
    assert "Map one column to the user ID (id); it is required." in page
    assert '<option value="external_id" selected>' in page  # the refused choice stays
    imp.refresh_from_db()
    assert imp.status == ImportStatus.DRAFT and sent == []


def test_map_queues_a_dry_run_and_goes_to_its_review(
    marketer_client, sent, django_capture_on_commit_callbacks
):
    imp = drafted(marketer_client)
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            reverse("import-map", args=[imp.pk]),
            {**map_form(imp), "tag_records": "1", "default_tag": "Spring list", "mode-3": "fill"},
        )
    assert response.status_code == 302
    assert response["Location"] == reverse("import-review", args=[imp.pk])
    imp.refresh_from_db()
    assert imp.status == ImportStatus.QUEUED and imp.dry_run
    assert imp.options == {"tags": ["Spring list"], "fill_empty": ["city"]}
    assert sent == [("run_import", (imp.pk,))]

    # While it waits, the review page says so and polls.
    review = html(marketer_client.get(response["Location"]))
    assert "Waiting for a free slot" in review and 'hx-trigger="every 1s"' in review


def test_dry_run_review_shows_the_counts_and_the_failing_rows(marketer_client):
    CustomerFactory(user_id="u3", name="Cy", email="cy@example.com", city="Lima")
    imp = dry_run(marketer_client, drafted(marketer_client))
    assert imp.status == ImportStatus.COMPLETED_WITH_ERRORS and imp.dry_run
    assert Customer.objects.count() == 1  # a dry run writes nothing

    response = marketer_client.get(reverse("import-review", args=[imp.pk]))
    page = html(response)
    assert "Dry run of people.csv" in page and 'hx-trigger="every 1s"' not in page
    counts = re.search(r'data-testid="counts">(.*?)</div>\s*<p', page, re.S).group(1)
    values = dict(
        re.findall(r'<span class="label">([^<]+)</span><span class="value">(\d+)</span>', counts)
    )
    assert values == {"Would create": "1", "Would update": "0", "Unchanged": "1", "Would fail": "1"}
    assert "3 data rows in the file." in page
    assert '<td class="mono">3</td><td>email</td>' in page
    assert "“nope” is not a valid e-mail address." in page
    assert f'href="{reverse("import-errors", args=[imp.pk])}"' in page
    assert ">Import records</button>" in page

    # The htmx poll gets the same region only.
    partial = html(marketer_client.get(reverse("import-review", args=[imp.pk]), **HX))
    assert partial.lstrip().startswith('<div id="review">')
    assert "<html" not in partial and "Would fail" in partial


def test_map_can_be_changed_after_a_dry_run(marketer_client):
    imp = dry_run(marketer_client, drafted(marketer_client))
    response = marketer_client.get(reverse("import-map", args=[imp.pk]))
    assert response.status_code == 200
    imp = dry_run(marketer_client, imp, email="skip")
    assert imp.failed == 0 and imp.created == 3 and imp.dry_run


def test_run_queues_the_real_import_and_shows_the_processing_dialog(
    marketer_client, sent, django_capture_on_commit_callbacks
):
    imp = dry_run(marketer_client, drafted(marketer_client))
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(reverse("import-run", args=[imp.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("import-review", args=[imp.pk]) + "?started=1"
    imp.refresh_from_db()
    assert imp.status == ImportStatus.QUEUED and not imp.dry_run
    assert sent == [("run_import", (imp.pk,))]
    assert Activity.objects.filter(action="import.queued", target_id=str(imp.pk)).exists()

    page = html(marketer_client.get(response["Location"]))
    assert "Processing your import" in page and "<dialog open" in page
    assert f'href="{reverse("import-list")}">Go to the Customer data importer</a>' in page
    assert "Import of people.csv" in page
    assert "Processing your import" not in html(
        marketer_client.get(reverse("import-review", args=[imp.pk]))
    )

    assert pipeline.import_run(imp.pk) is not None
    imp.refresh_from_db()
    assert imp.status == ImportStatus.COMPLETED_WITH_ERRORS and imp.created == 2
    done = html(marketer_client.get(reverse("import-review", args=[imp.pk])))
    assert '<span class="label">Created</span><span class="value">2</span>' in done
    assert ">Import records</button>" not in done


def test_a_started_import_is_no_longer_a_draft(marketer_client):
    imp = dry_run(marketer_client, drafted(marketer_client))
    assert marketer_client.post(reverse("import-run", args=[imp.pk])).status_code == 302
    map_url = reverse("import-map", args=[imp.pk])
    assert marketer_client.get(map_url).status_code == 404
    assert marketer_client.post(map_url, map_form(imp)).status_code == 404
    assert marketer_client.get(reverse("import-column", args=[imp.pk, 0])).status_code == 404
    assert marketer_client.post(reverse("import-run", args=[imp.pk])).status_code == 404
    # A dry run still running cannot be remapped either.
    other = drafted(marketer_client)
    marketer_client.post(reverse("import-map", args=[other.pk]), map_form(other))
    assert marketer_client.get(reverse("import-map", args=[other.pk])).status_code == 404


def test_run_when_the_file_is_gone(marketer_client, imports_dir):
    imp = dry_run(marketer_client, drafted(marketer_client))
    (imports_dir / imp.file_path).unlink()
    response = marketer_client.post(reverse("import-run", args=[imp.pk]), follow=True)
    assert response.redirect_chain == [(reverse("import-review", args=[imp.pk]), 302)]
    assert "The uploaded file is gone; upload it again." in html(response)
    imp.refresh_from_db()
    assert imp.dry_run and imp.status == ImportStatus.COMPLETED_WITH_ERRORS


def test_unknown_import_is_404(marketer_client):
    for name in ("import-map", "import-review", "import-errors"):
        assert marketer_client.get(reverse(name, args=[999])).status_code == 404
    assert marketer_client.post(reverse("import-run", args=[999])).status_code == 404
    assert marketer_client.post(reverse("import-action", args=[999, "cancel"])).status_code == 404


# --- the Customer data importer -------------------------------------------------------------


def test_list_shows_started_imports_and_polls_while_one_runs(marketer_client):
    finished = make_import(PEOPLE, name="done.csv")
    queued = drafted(marketer_client, csv_text("id", "a"))
    upload(PEOPLE, name="draft-only.csv")  # never started: not listed
    marketer_client.post(reverse("import-map", args=[queued.pk]), map_form(queued))

    full = html(marketer_client.get(reverse("import-list")))
    assert "<html" in full and "<h1>Customer data importer</h1>" in full
    assert "done.csv" in full and "people.csv" in full and "draft-only.csv" not in full
    assert f'data-import="{finished.pk}"' in full and f'data-import="{queued.pk}"' in full
    assert "completed with errors" in full and ">queued</span>" in full
    assert 'hx-trigger="every 2s"' in full
    assert f'href="{reverse("import-errors", args=[finished.pk])}"' in full

    partial = html(marketer_client.get(reverse("import-list"), **HX))
    assert "<html" not in partial and "<h1>" not in partial
    assert partial.strip().startswith('<div id="import-table" hx-get="/imports/"')
    assert 'hx-trigger="every 2s"' in partial and "done.csv" in partial

    assert pipeline.import_run(queued.pk) is not None
    settled = html(marketer_client.get(reverse("import-list"), **HX))
    assert "hx-trigger" not in settled and settled.strip().startswith('<div id="import-table">')


def test_list_when_there_are_no_imports(marketer_client, viewer_client):
    assert "No imports yet." in html(marketer_client.get(reverse("import-list")))
    assert "+ Import customers" in html(marketer_client.get(reverse("import-list")))
    page = html(viewer_client.get(reverse("import-list")))
    assert "No imports yet." in page and "+ Import customers" not in page


def test_cancel_a_queued_import(marketer_client, imports_dir):
    imp = drafted(marketer_client)
    marketer_client.post(reverse("import-map", args=[imp.pk]), map_form(imp))
    page = html(marketer_client.get(reverse("import-list")))
    assert f'action="{reverse("import-action", args=[imp.pk, "cancel"])}"' in page

    response = marketer_client.post(reverse("import-action", args=[imp.pk, "cancel"]), follow=True)
    assert response.redirect_chain == [(reverse("import-list"), 302)]
    assert "Cancelling the import of people.csv." in html(response)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.CANCELLED
    assert Activity.objects.filter(action="import.cancelled").count() == 1

    again = marketer_client.post(reverse("import-action", args=[imp.pk, "cancel"]), follow=True)
    assert "Only a queued or running import can be cancelled." in html(again)


def test_undo_a_finished_import(marketer_client, sent, django_capture_on_commit_callbacks):
    imp = make_import(PEOPLE)
    assert imp.created == 2
    page = html(marketer_client.get(reverse("import-list")))
    undo_url = reverse("import-action", args=[imp.pk, "undo"])
    assert f'action="{undo_url}"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(undo_url, follow=True)
    assert "Undoing the import of people.csv." in html(response)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.UNDOING
    assert ("undo_import", (imp.pk,)) in sent
    assert f'action="{undo_url}"' not in html(response)  # no second undo offered

    again = marketer_client.post(undo_url, follow=True)
    assert "Only a finished import that changed customers can be undone" in html(again)


def test_a_dry_run_cannot_be_undone_and_unknown_actions_are_404(marketer_client):
    imp = make_import(PEOPLE, dry_run=True)
    response = marketer_client.post(reverse("import-action", args=[imp.pk, "undo"]), follow=True)
    assert "Only a finished import that changed customers can be undone" in html(response)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.COMPLETED_WITH_ERRORS
    assert marketer_client.post(reverse("import-action", args=[imp.pk, "erase"])).status_code == 404
    assert marketer_client.get(reverse("import-action", args=[imp.pk, "undo"])).status_code == 405


def test_error_report_csv(viewer_client):
    imp = make_import(PEOPLE)
    response = viewer_client.get(reverse("import-errors", args=[imp.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="import-{imp.pk}-errors.csv"'
    assert csv_rows(response) == [
        ["row", "column", "reason", "id", "name", "email", "city"],
        ["3", "email", "“nope” is not a valid e-mail address.", "u2", "Bob", "nope", "Rome"],
    ]


# --- who may do what ------------------------------------------------------------------------


def test_viewer_reads_but_cannot_change_anything(viewer_client, marketer_client, imports_dir):
    finished = make_import(PEOPLE)
    draft = drafted(marketer_client)
    checked = dry_run(marketer_client, drafted(marketer_client))

    assert viewer_client.get(reverse("import-list")).status_code == 200
    listing = html(viewer_client.get(reverse("import-list")))
    assert "people.csv" in listing and "import-action" not in listing and ">Undo<" not in listing
    review = viewer_client.get(reverse("import-review", args=[checked.pk]))
    assert review.status_code == 200 and "Would fail" in html(review)
    assert ">Import records</button>" not in html(review)
    assert "Back to mapping" not in html(review)
    assert viewer_client.get(reverse("import-errors", args=[finished.pk])).status_code == 200
    assert viewer_client.get(reverse("import-sample")).status_code == 200

    refused = [
        viewer_client.get(NEW),
        viewer_client.post(NEW, {"file": csv_file()}),
        viewer_client.get(reverse("import-map", args=[draft.pk])),
        viewer_client.post(reverse("import-map", args=[draft.pk]), map_form(draft)),
        viewer_client.get(reverse("import-column", args=[draft.pk, 0]), **HX),
        viewer_client.post(reverse("import-run", args=[checked.pk])),
        viewer_client.post(reverse("import-action", args=[finished.pk, "cancel"])),
        viewer_client.post(reverse("import-action", args=[finished.pk, "undo"])),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert Import.objects.count() == 3
    assert {(i.pk, i.status) for i in Import.objects.all()} == {
        (finished.pk, ImportStatus.COMPLETED_WITH_ERRORS),
        (draft.pk, ImportStatus.DRAFT),
        (checked.pk, ImportStatus.COMPLETED_WITH_ERRORS),
    }
    checked.refresh_from_db()
    assert checked.dry_run
