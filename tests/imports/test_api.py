"""Imports over the REST API (imports/api.py): a multipart upload with mapping and options,
dry runs, refusals (422, 413, 403), status and counts, the error report, cancel and undo."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from customers.models import Customer
from imports import pipeline
from imports.models import Import, ImportStatus
from members.roles import Role
from tags.models import CustomerTag, Tag
from tests.api_client import bearer
from tests.factories import CustomerFactory
from tests.imports.conftest import as_bytes, csv_text, customers, files_in, tag_names

pytestmark = pytest.mark.django_db

PEOPLE = csv_text("User,Full name,E-mail,Town", "u1,Ann,ann@example.com,Oslo", "u2,Bob,nope,Rome")


@pytest.fixture
def upload(client, api):
    """POST /api/v1/imports as a role: upload(data, mapping=..., options=..., dry_run=...)."""

    def post(
        data: str | bytes = PEOPLE,
        *,
        role: str = Role.MARKETER,
        name: str = "people.csv",
        with_file: bool = True,
        **fields: Any,
    ):
        payload: dict[str, Any] = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in fields.items()
        }
        if with_file:
            payload["file"] = SimpleUploadedFile(name, as_bytes(data), content_type="text/csv")
        return client.post("/api/v1/imports", payload, **bearer(api.token(role)[1]))

    return post


def run(response) -> dict:
    """Run the import the response queued (as the worker would) and read it back."""
    assert response.status_code == 202, response.content
    assert pipeline.import_run(response.json()["id"]) is not None
    return response.json()


MAPPING = ["id", "name", "email", "city"]


def test_upload_queues_the_import_and_get_shows_its_progress_and_counts(upload, api, sent):
    response = upload(mapping=MAPPING, options={"tag": "Spring", "tags": ["VIP"]})

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["dry_run"], body["file_name"]) == ("queued", False, "people.csv")
    assert body["headers"] == ["User", "Full name", "E-mail", "Town"]
    assert body["mapping"] == MAPPING
    assert body["options"] == {"tags": ["Spring", "VIP"], "fill_empty": []}
    imp = Import.objects.get(pk=body["id"])
    assert (imp.source, imp.token_id) == ("api", api.token()[0].pk)
    assert not Customer.objects.exists()

    pipeline.import_run(body["id"])
    response = api("get", f"/imports/{body['id']}", role=Role.VIEWER)

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["phase"], body["progress"]) == (
        "completed_with_errors",
        "done",
        100,
    )
    assert body["counts"] == {
        "rows": 2,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "failed": 1,
        "tagged": 1,
    }
    assert body["errors_url"] == f"/api/v1/imports/{body['id']}/errors"
    assert body["undo_until"] is not None and body["duration_seconds"] is not None
    assert customers()["u1"]["name"] == "Ann" and customers()["u1"]["city"] == "Oslo"
    assert tag_names("u1") == {"Spring", "VIP"}
    assert CustomerTag.objects.get(tag__name="VIP").added_by_token_id == api.token()[0].pk


def test_the_mapping_as_an_object_keeps_the_suggestion_for_columns_it_leaves_out(upload):
    body = run(upload(mapping={"User": "id", "Town": "skip"}))
    assert body["mapping"] == ["id", "name", "email", "skip"]
    assert customers()["u1"]["city"] == ""


def test_without_a_mapping_the_suggested_one_is_used(upload):
    data = csv_text("id,first name,Country", "u1,Ann,DE")
    body = run(upload(data))
    assert body["mapping"] == ["id", "first_name", "country"]
    assert (customers()["u1"]["first_name"], customers()["u1"]["country"]) == ("Ann", "DE")


def test_the_default_tag_unless_the_tag_option_is_null(upload):
    body = run(upload(mapping=MAPPING))
    [default] = body["options"]["tags"]
    assert default.startswith("Import ")
    assert tag_names("u1") == {default}

    body = run(upload(csv_text("id", "u3"), options={"tag": None}))
    assert body["options"]["tags"] == []
    assert tag_names("u3") == set()


def test_fill_empty_names_headers(upload):
    CustomerFactory(user_id="u1", city="Bergen", name="Old")
    run(upload(mapping=MAPPING, options={"tag": None, "fill_empty": ["Town"]}))
    assert (customers()["u1"]["city"], customers()["u1"]["name"]) == ("Bergen", "Ann")


def test_a_dry_run_counts_and_writes_nothing(upload, api):
    body = run(upload(mapping=MAPPING, dry_run="true"))
    assert body["dry_run"] is True
    detail = api("get", f"/imports/{body['id']}").json()
    assert detail["status"] == "completed_with_errors"
    assert (detail["counts"]["created"], detail["counts"]["failed"]) == (1, 1)
    assert detail["undo_until"] is None
    assert not Customer.objects.exists() and not Tag.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"mapping": "{not json"}, "mapping", "Must be JSON."),
        ({"mapping": {"Nope": "id"}}, "mapping", "No column named “Nope”."),
        ({"mapping": "42"}, "mapping", "Must be a list of targets"),
        ({"mapping": ["id", "name"]}, "mapping", "The mapping has 2 entries; the file has 4"),
        ({"mapping": ["skip", "name", "email", "city"]}, "mapping", "Map one column to the user"),
        ({"mapping": ["id", "name", "bogus", "city"]}, "mapping", "'bogus' is not a field"),
        ({"mapping": ["id", "name", "new.colour", "city"]}, "mapping", "a new custom field's"),
        ({"options": "[1]"}, "options", "Must be an object."),
        ({"options": {"colour": 1}}, "options.colour", "Unknown option."),
        ({"options": {"tags": "VIP"}}, "options.tags", "Must be a list of text."),
        ({"options": {"tag": 3}}, "options.tag", "Must be text or null."),
        ({"options": {"tags": ["x" * 101]}}, "tags", "100"),
    ],
)
def test_bad_mapping_or_options_are_422_and_nothing_is_kept(
    upload, imports_dir, fields, field, message
):
    response = upload(**{"mapping": MAPPING, **fields})
    assert response.status_code == 422, response.content
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert message in error["message"]
    assert not Import.objects.exists()
    assert not files_in(imports_dir)


def test_a_file_without_a_user_id_column_is_422(upload, imports_dir):
    response = upload(csv_text("name,email", "Ann,ann@example.com"))
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "mapping", "message": "Map one column to the user ID (id); it is required."}
    ]
    assert not Import.objects.exists() and not files_in(imports_dir)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "This looks like a PNG image, not a CSV file."),
        (b"PK\x03\x04" + bytes(100), "an Excel workbook (.xlsx) or a ZIP archive"),
        (b"", "The file is empty."),
        (b"id,id\n1,2\n", "Each column needs a different header."),
    ],
)
def test_a_file_that_is_not_an_importable_csv_is_422(upload, imports_dir, data, message):
    response = upload(data)
    assert response.status_code == 422, response.content
    [error] = response.json()["errors"]
    assert error["field"] == "file" and message in error["message"]
    assert not Import.objects.exists() and not files_in(imports_dir)


def test_no_file_is_422(upload):
    response = upload(with_file=False, mapping=MAPPING)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "file"


def test_a_file_over_the_limit_is_413_and_nothing_is_kept(upload, settings, imports_dir):
    settings.IMPORTS_MAX_BYTES = 2 * 1024 * 1024
    data = csv_text("id,name", *(f"u{i:07d},{'x' * 60}" for i in range(40_000)))
    assert len(data) > settings.IMPORTS_MAX_BYTES
    response = upload(data)
    assert response.status_code == 413, response.content
    assert response.json()["detail"] == "The file is too large; files must be smaller than 2 MB."
    assert not Import.objects.exists() and not files_in(imports_dir)


def test_a_viewer_reads_but_cannot_upload_cancel_or_undo(upload, api, imports_dir):
    assert upload(role=Role.VIEWER).status_code == 403
    assert not Import.objects.exists() and not files_in(imports_dir)
    body = run(upload(mapping=MAPPING))
    for action in ("cancel", "undo"):
        response = api("post", f"/imports/{body['id']}/{action}", role=Role.VIEWER)
        assert response.status_code == 403
    assert api("get", f"/imports/{body['id']}", role=Role.VIEWER).status_code == 200
    assert api("get", f"/imports/{body['id']}/errors", role=Role.VIEWER).status_code == 200
    assert api("get", "/imports", role=Role.VIEWER).status_code == 200


def test_the_list_shows_started_imports_newest_first(upload, api):
    first = upload(mapping=MAPPING).json()
    second = upload(mapping=MAPPING).json()
    items = api("get", "/imports").json()["items"]
    assert [i["id"] for i in items] == [second["id"], first["id"]]


def test_the_error_report_is_csv(upload, api):
    data = csv_text("id,name,email", "u1,=cmd(),nope", "u2,Bob,", "u2,Bobby,")
    body = run(upload(data))
    response = api("get", f"/imports/{body['id']}/errors")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="import-{body["id"]}-errors.csv"'
    )
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines == [
        ["row", "column", "reason", "id", "name", "email"],
        ["2", "email", "“nope” is not a valid e-mail address.", "u1", "'=cmd()", "nope"],
        [
            "3",
            "id",
            "Duplicate user ID “u2”: row 4 later in the file was imported instead.",
            "u2",
            "",
            "",
        ],
    ]


def test_cancel_a_queued_import_then_cancel_again_is_409(upload, api):
    body = upload(mapping=MAPPING).json()
    response = api("post", f"/imports/{body['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert pipeline.import_run(body["id"]) is None
    assert not Customer.objects.exists()
    again = api("post", f"/imports/{body['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["detail"] == "Only a queued or running import can be cancelled."


def test_undo_is_202_like_then_409_when_not_allowed(
    upload, api, sent, django_capture_on_commit_callbacks
):
    queued = upload(mapping=MAPPING).json()
    response = api("post", f"/imports/{queued['id']}/undo")
    assert response.status_code == 409  # not finished yet
    assert "within 7 days" in response.json()["detail"]

    pipeline.import_run(queued["id"])
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = api("post", f"/imports/{queued['id']}/undo")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "undoing"
    assert sent == [("undo_import", (queued["id"],))]
    assert api("post", f"/imports/{queued['id']}/undo").status_code == 409

    dry = run(upload(mapping=MAPPING, dry_run="1"))
    assert api("post", f"/imports/{dry['id']}/undo").status_code == 409


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/imports/999999"),
        ("get", "/imports/999999/errors"),
        ("post", "/imports/999999/cancel"),
        ("post", "/imports/999999/undo"),
    ],
)
def test_an_unknown_import_is_404(api, method, path):
    response = api(method, path)
    assert response.status_code == 404
    assert response.json()["detail"] == "No import with this id."


def test_a_finished_import_is_removed_from_disk(
    upload, imports_dir, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        body = upload(mapping=MAPPING).json()
        assert len(files_in(imports_dir)) == 1
        pipeline.import_run(body["id"])
    assert not files_in(imports_dir)
    assert Import.objects.get(pk=body["id"]).status == ImportStatus.COMPLETED_WITH_ERRORS
