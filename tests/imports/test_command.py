"""manage.py import_customers (imports/management/commands/import_customers.py): the same
pipeline from the command line, with --mapping, --tag, --fill-empty and --dry-run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer
from imports.models import Import, ImportStatus
from tags.models import Tag
from tests.factories import CustomerFactory
from tests.imports.conftest import as_bytes, csv_text, customers, files_in, tag_names

pytestmark = pytest.mark.django_db

PEOPLE = csv_text("id,Full name,Town", "u1,Ann,Oslo", "u2,Bob,Rome")


@pytest.fixture
def write(tmp_path):
    def write(data: str | bytes = PEOPLE, name: str = "people.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(as_bytes(data))
        return path

    return write


def command(*args: str) -> str:
    out = io.StringIO()
    call_command("import_customers", *map(str, args), stdout=out)
    return out.getvalue()


def test_imports_a_file_and_reports_the_counts(write):
    out = command(write())
    imp = Import.objects.get()
    assert imp.status == ImportStatus.COMPLETED
    assert out.splitlines() == [
        f"Import {imp.pk}: people.csv, 3 columns",
        "  id → id",
        "  Full name → name",
        "  Town → city",
        "Completed: 2 created, 0 updated, 0 unchanged, 0 failed",
    ]
    assert {k: (v["name"], v["city"]) for k, v in customers().items()} == {
        "u1": ("Ann", "Oslo"),
        "u2": ("Bob", "Rome"),
    }
    assert (imp.source, imp.options["tags"]) == ("system", [])


def test_tags_and_a_dry_run(write):
    out = command(write(), "--tag", "Spring", "--tag", "VIP", "--dry-run")
    assert "Completed (dry run): 2 created, 0 updated, 0 unchanged, 0 failed" in out
    assert not Customer.objects.exists() and not Tag.objects.exists()

    out = command(write(), "--tag", "Spring", "--tag", "VIP")
    assert (
        out.splitlines()[-1] == "Completed: 2 created, 0 updated, 0 unchanged, 0 failed, 2 tagged"
    )
    assert tag_names("u1") == tag_names("u2") == {"Spring", "VIP"}


@pytest.mark.parametrize(
    "mapping",
    [json.dumps({"Town": "skip"}), json.dumps(["id", "name", "skip"])],
    ids=["object", "list"],
)
def test_mapping_as_json(write, mapping):
    command(write(), "--mapping", mapping)
    assert {k: (v["name"], v["city"]) for k, v in customers().items()} == {
        "u1": ("Ann", ""),
        "u2": ("Bob", ""),
    }


def test_fill_empty(write):
    CustomerFactory(user_id="u1", name="Old", city="Bergen")
    command(write(), "--fill-empty", "Town")
    assert (customers()["u1"]["name"], customers()["u1"]["city"]) == ("Ann", "Bergen")


def test_failed_rows_point_to_the_error_report(write):
    out = command(write(csv_text("id,email", "u1,nope", "u2,b@example.com")))
    imp = Import.objects.get()
    assert "Completed with errors: 1 created, 0 updated, 0 unchanged, 1 failed" in out
    assert f"Error report: GET /api/v1/imports/{imp.pk}/errors" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mapping", "{nope"], "--mapping must be JSON."),
        (["--mapping", '"id"'], "Must be a list of targets"),
        (["--mapping", '{"Nope": "id"}'], "No column named “Nope”"),
        (["--mapping", '["id"]'], "The mapping has 1 entries; the file has 3 columns."),
        (["--mapping", '{"id": "skip"}'], "Map one column to the user ID (id); it is required."),
        (["--tag", "x" * 101], "100"),
    ],
)
def test_a_bad_mapping_or_tag_is_refused_and_nothing_is_kept(write, imports_dir, args, message):
    with pytest.raises(CommandError) as refused:
        command(write(), *args)
    assert message in str(refused.value)
    assert not Import.objects.exists()
    assert not files_in(imports_dir)
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "This looks like a PNG image, not a CSV file."),
        (b"", "The file is empty."),
        (b"id,,name\n1,2,3\n", "Column 2 has no header."),
    ],
)
def test_a_bad_file_is_refused_with_the_reason(write, imports_dir, data, message):
    with pytest.raises(CommandError, match="^" + message.replace(".", r"\.")):
        command(write(data))
    assert not Import.objects.exists()
    assert not files_in(imports_dir)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        command(tmp_path / "nope.csv")


def test_an_import_that_fails_says_why(write):
    rows = [f"u{i:03d},Name {i},X" for i in range(60)]
    path = write(csv_text("id,Full name,Town", *rows, 'u999,"open,X'))
    out = io.StringIO()
    with pytest.raises(CommandError, match="The import failed."):
        call_command("import_customers", str(path), stdout=out)
    assert "Failed: 0 created" in out.getvalue()
    assert "Row 62 has a quote that is never closed" in out.getvalue()
    assert not Customer.objects.exists()
