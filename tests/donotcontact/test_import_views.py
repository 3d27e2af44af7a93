"""The import wizard's pages: roles, upload (size limit while streaming, refused files),
rows and columns (htmx preview, undo a mapping), analysis, accounts, import and progress."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from donotcontact import importing
from donotcontact import tasks as dnc_tasks
from donotcontact.models import Entry, EntryImport, ImportStatus
from tests.donotcontact.files.builders import png_bytes, xlsx_bytes

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def dnc_dir(settings, tmp_path):
    settings.DNC_IMPORTS_DIR = tmp_path / "dnc"
    return settings.DNC_IMPORTS_DIR


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    messages = []
    for actor in (dnc_tasks.analyze_entry_import, dnc_tasks.run_entry_import):
        monkeypatch.setattr(
            actor, "send", lambda *a, _n=actor.actor_name, **k: messages.append((_n, a))
        )
    return messages


def post_file(client, raw: bytes, name: str):
    return client.post(reverse("dnc-import-new"), {"file": SimpleUploadedFile(name, raw)})


CSV = b"email,sender\nann@example.com,Shop\nnot an address,\nbob@example.com,\n"


def uploaded(client) -> EntryImport:
    response = post_file(client, CSV, "list.csv")
    assert response.status_code == 302
    return EntryImport.objects.get()


# --- roles -----------------------------------------------------------------------------------


def test_viewer_cannot_upload_map_or_run(viewer_client, marketer_client):
    assert viewer_client.get(reverse("dnc-import-new")).status_code == 403
    assert post_file(viewer_client, CSV, "list.csv").status_code == 403
    imp = uploaded(marketer_client)
    assert viewer_client.get(reverse("dnc-import-map", args=[imp.pk])).status_code == 403
    assert viewer_client.post(reverse("dnc-import-map", args=[imp.pk])).status_code == 403
    assert viewer_client.post(reverse("dnc-import-run", args=[imp.pk])).status_code == 403
    # Following an import is open to every role, without the accounts form.
    response = viewer_client.get(reverse("dnc-import-detail", args=[imp.pk]))
    assert response.status_code == 200
    assert b"accounts-form" not in response.content


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(reverse("dnc-import-new"))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_unknown_import_is_404(marketer_client):
    assert marketer_client.get(reverse("dnc-import-detail", args=[999])).status_code == 404
    assert marketer_client.get(reverse("dnc-import-map", args=[999])).status_code == 404


# --- upload ----------------------------------------------------------------------------------


def test_upload_page(marketer_client):
    response = marketer_client.get(reverse("dnc-import-new"))
    assert response.status_code == 200
    assert b"Choose a .txt, .csv, .xlsx or .zip file" in response.content
    assert b"15 MB" in response.content


def test_upload_goes_to_the_mapping_step(marketer_client):
    response = post_file(marketer_client, CSV, "list.csv")
    imp = EntryImport.objects.get()
    assert response["Location"] == reverse("dnc-import-map", args=[imp.pk])


def test_png_renamed_csv_is_refused_and_nothing_kept(marketer_client, dnc_dir):
    response = post_file(marketer_client, png_bytes(), "contacts.csv")
    assert response.status_code == 422
    assert "PNG image" in response.content.decode()
    assert not EntryImport.objects.exists()
    assert not any(dnc_dir.rglob("*")) if dnc_dir.exists() else True


def test_too_big_is_refused_while_streaming(marketer_client, settings):
    settings.DNC_IMPORT_MAX_BYTES = 2000
    response = post_file(marketer_client, b"a@example.com\n" * 1000, "big.txt")
    assert response.status_code == 422
    assert "The file is too large; files can be at most 2 KB." in response.content.decode()
    assert not EntryImport.objects.exists()


def test_upload_without_a_file(marketer_client):
    response = marketer_client.post(reverse("dnc-import-new"), {})
    assert response.status_code == 422
    assert b"Choose a file to upload." in response.content


def test_upload_needs_csrf(marketer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(marketer)
    response = post_file(client, CSV, "list.csv")
    assert response.status_code == 403


# --- rows and columns ------------------------------------------------------------------------


def test_mapping_page_shows_the_first_rows_and_the_guess(marketer_client):
    imp = uploaded(marketer_client)
    response = marketer_client.get(reverse("dnc-import-map", args=[imp.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="2"' in html  # start at row 2: the header row is skipped
    assert "ann@example.com" in html and "<th>Column B</th>" in html
    assert 'value="contact" selected' in html and 'value="sender" selected' in html
    assert "<html" in html


def test_changing_the_start_row_over_htmx(marketer_client):
    imp = uploaded(marketer_client)
    url = reverse("dnc-import-map", args=[imp.pk])
    response = marketer_client.get(
        url, {"start_row": "1", "target-0": "contact", "target-1": "skip"}, **HTMX
    )
    html = response.content.decode()
    assert "<html" not in html and 'id="mapping"' in html
    assert "First rows from row 1" in html and ">email<" in html
    assert 'value="sender" selected' not in html


def test_undo_a_mapping_over_htmx(marketer_client):
    imp = uploaded(marketer_client)
    url = reverse("dnc-import-map", args=[imp.pk])
    params = {"start_row": "2", "target-0": "contact", "target-1": "sender", "clear": "sender"}
    html = marketer_client.get(url, params, **HTMX).content.decode()
    assert 'value="sender" selected' not in html
    assert "Sender ← column B" not in html and "Contact (e-mail or phone) ← column A" in html


def test_analyze_inline_then_show_counts(marketer_client):
    imp = uploaded(marketer_client)
    response = marketer_client.post(
        reverse("dnc-import-map", args=[imp.pk]),
        {"start_row": "2", "columns": "2", "target-0": "contact", "target-1": "sender"},
    )
    assert response["Location"] == reverse("dnc-import-detail", args=[imp.pk])
    imp.refresh_from_db()
    assert (imp.status, imp.valid, imp.invalid) == (ImportStatus.ANALYZED, 2, 1)
    html = marketer_client.get(response["Location"]).content.decode()
    assert "Analysis" in html and "not an address" in html and "accounts-form" in html


def test_mapping_without_a_contact_column_is_refused(marketer_client):
    imp = uploaded(marketer_client)
    response = marketer_client.post(
        reverse("dnc-import-map", args=[imp.pk]),
        {"start_row": "2", "columns": "2", "target-0": "skip", "target-1": "sender"},
    )
    assert response.status_code == 422
    assert "Choose the column that holds the contacts" in response.content.decode()


def test_one_target_for_two_columns_is_refused(marketer_client):
    imp = uploaded(marketer_client)
    response = marketer_client.post(
        reverse("dnc-import-map", args=[imp.pk]),
        {"start_row": "2", "columns": "2", "target-0": "contact", "target-1": "contact"},
    )
    assert response.status_code == 422
    assert "choose it for one column only" in response.content.decode()


# --- accounts and import ---------------------------------------------------------------------


def analyzed(client) -> EntryImport:
    imp = uploaded(client)
    client.post(
        reverse("dnc-import-map", args=[imp.pk]),
        {"start_row": "2", "columns": "2", "target-0": "contact", "target-1": "sender"},
    )
    imp.refresh_from_db()
    return imp


def test_accounts_offered_are_the_ones_in_use(marketer_client, add):
    add("x@example.com", account="Brand EU")
    imp = analyzed(marketer_client)
    html = marketer_client.get(reverse("dnc-import-detail", args=[imp.pk])).content.decode()
    assert "All accounts" in html and "Brand EU" in html


def test_import_with_two_accounts(marketer_client, sent, django_capture_on_commit_callbacks):
    imp = analyzed(marketer_client)
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(
            reverse("dnc-import-run", args=[imp.pk]),
            {"account": ["__all__"], "new_account": "  Brand   US "},
        )
    assert response["Location"] == reverse("dnc-import-detail", args=[imp.pk])
    assert sent == [("run_entry_import", (imp.pk,))]
    # While queued the page polls.
    html = marketer_client.get(reverse("dnc-import-detail", args=[imp.pk]), **HTMX)
    assert b'hx-trigger="every 1s"' in html.content and b"<html" not in html.content
    importing.import_run(imp.pk)
    assert set(Entry.objects.values_list("contact", "account")) == {
        ("ann@example.com", ""),
        ("ann@example.com", "Brand US"),
        ("bob@example.com", ""),
        ("bob@example.com", "Brand US"),
    }
    page = marketer_client.get(reverse("dnc-import-detail", args=[imp.pk])).content.decode()
    assert "Import finished: 4 entries added" in page
    assert 'hx-trigger="every 1s"' not in page


def test_import_without_an_account_is_refused(marketer_client):
    imp = analyzed(marketer_client)
    response = marketer_client.post(reverse("dnc-import-run", args=[imp.pk]), {}, follow=True)
    assert "Choose at least one account" in response.content.decode()
    imp.refresh_from_db()
    assert imp.status == ImportStatus.ANALYZED


def test_an_import_cannot_start_twice(marketer_client):
    imp = analyzed(marketer_client)
    data = {"account": ["__all__"]}
    assert marketer_client.post(reverse("dnc-import-run", args=[imp.pk]), data).status_code == 302
    response = marketer_client.post(reverse("dnc-import-run", args=[imp.pk]), data, follow=True)
    assert "Analyze the file before importing it." in response.content.decode()
    # ... and its columns can no longer be changed.
    assert marketer_client.get(reverse("dnc-import-map", args=[imp.pk])).status_code == 404


def test_xlsx_upload_end_to_end(marketer_client, sent):
    raw = xlsx_bytes([["Contacts"], ["a@example.com"], ["bad"], [447911123456]])
    post_file(marketer_client, raw, "book.xlsx")
    imp = EntryImport.objects.get()
    marketer_client.post(
        reverse("dnc-import-map", args=[imp.pk]),
        {"start_row": "2", "columns": "1", "target-0": "contact"},
    )
    marketer_client.post(reverse("dnc-import-run", args=[imp.pk]), {"account": ["__all__"]})
    importing.import_run(imp.pk)
    assert set(Entry.objects.values_list("contact", flat=True)) == {
        "a@example.com",
        "+447911123456",
    }


def test_the_list_shows_recent_imports_but_not_drafts(marketer_client, viewer_client):
    draft = uploaded(marketer_client)
    assert "Recent imports" not in viewer_client.get(reverse("dnc-list")).content.decode()
    EntryImport.objects.filter(pk=draft.pk).update(status=ImportStatus.COMPLETED, added=1234)
    html = viewer_client.get(reverse("dnc-list")).content.decode()
    assert "Recent imports" in html and "1,234" in html
    assert reverse("dnc-import-detail", args=[draft.pk]) in html
    # The list's htmx refresh re-renders the results only.
    partial = viewer_client.get(reverse("dnc-list"), headers={"HX-Request": "true"})
    assert "Recent imports" not in partial.content.decode()


def test_a_tampered_column_count_is_refused_not_a_crash(marketer_client):
    imp = uploaded(marketer_client)
    response = marketer_client.post(
        reverse("dnc-import-map", args=[imp.pk]),
        {"start_row": "2", "columns": "abc", "target-0": "contact"},
    )
    assert response.status_code == 422
    imp.refresh_from_db()
    assert imp.status == ImportStatus.DRAFT


def test_a_second_mapping_submit_while_analysing_says_so(
    marketer_client, settings, sent, django_capture_on_commit_callbacks
):
    settings.DNC_IMPORT_INLINE_BYTES = 0
    imp = uploaded(marketer_client)
    data = {"start_row": "2", "columns": "2", "target-0": "contact", "target-1": "sender"}
    url = reverse("dnc-import-map", args=[imp.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert marketer_client.post(url, data).status_code == 302
    # The second request read the import before the first one moved it on.
    monkey = EntryImport.objects.get(pk=imp.pk)
    monkey.status = ImportStatus.DRAFT
    from unittest import mock

    with (
        django_capture_on_commit_callbacks(execute=True),
        mock.patch("donotcontact.import_views._editable", return_value=monkey),
    ):
        response = marketer_client.post(url, data)
    assert response.status_code == 422
    assert "already being analysed" in response.content.decode()
    assert [name for name, _ in sent] == ["analyze_entry_import"]
