"""Safe reading of uploaded Do Not Contact files: every kind of file accepted, every unsafe or
wrong one refused with a message that says why, and nothing left on disk after a refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from donotcontact.filereader import (
    FileRejected,
    file_prepare,
    rows_iter,
    rows_preview,
    upload_store,
)
from tests.donotcontact.files.builders import (
    EXTERNAL,
    LAUGHS,
    bomb_zip,
    lying_zip,
    png_bytes,
    xlsx_bytes,
    xlsx_with_sheet_xml,
    zip_bytes,
)


@pytest.fixture
def prepare(tmp_path):
    """prepare(bytes, name) -> DataFile, as the upload step does it."""

    def _prepare(raw: bytes, name: str):
        work = tmp_path / "work"
        path = tmp_path / "upload"
        path.write_bytes(raw)
        return file_prepare(path, name, work)

    return _prepare


def rejected(prepare, raw: bytes, name: str) -> str:
    with pytest.raises(FileRejected) as info:
        data = prepare(raw, name)
        list(rows_iter(data))  # xlsx XML is only parsed when the rows are read
    return info.value.message


# --- accepted files --------------------------------------------------------------------------


def test_txt_one_contact_per_line(prepare):
    data = prepare(b"a@example.com\r\n\n +441234567890 \nb@example.com", "list.txt")
    assert data.kind == "txt"
    assert list(rows_iter(data)) == [
        (1, ["a@example.com"]),
        (2, []),
        (3, ["+441234567890"]),
        (4, ["b@example.com"]),
    ]


def test_csv_semicolons_and_utf16(prepare):
    data = prepare("email;sender\na@example.com;Shop\n".encode("utf-16"), "list.csv")
    assert (data.kind, data.delimiter) == ("csv", ";")
    assert list(rows_iter(data)) == [(1, ["email", "sender"]), (2, ["a@example.com", "Shop"])]


def test_xlsx_first_sheet_only_and_numbers_as_text(prepare):
    raw = xlsx_bytes([["contact"], ["a@example.com"], [441234567890]], second_sheet=["no"])
    data = prepare(raw, "list.xlsx")
    assert data.kind == "xlsx"
    assert list(rows_iter(data)) == [
        (1, ["contact"]),
        (2, ["a@example.com"]),
        (3, ["441234567890"]),
    ]


def test_zip_with_one_csv_and_ignored_extras(prepare):
    raw = zip_bytes(
        {
            "export/contacts.csv": "a@example.com\nb@example.com\n",
            "__MACOSX/export/._contacts.csv": b"\x00\x05\x16\x07",
            "export/.DS_Store": b"\x00\x00\x00\x01Bud1",
            "export/readme.md": "about this export",
        }
    )
    data = prepare(raw, "export.zip")
    assert data.kind == "csv"
    assert data.inner_name == "export/contacts.csv"
    assert sorted(data.ignored) == [
        "__MACOSX/export/._contacts.csv",
        "export/.DS_Store",
        "export/readme.md",
    ]
    assert [cells for _, cells in rows_iter(data)] == [["a@example.com"], ["b@example.com"]]
    assert data.path.name == "data.csv"  # our own name, never the entry's


def test_zip_with_an_xlsx(prepare):
    raw = zip_bytes({"book.xlsx": xlsx_bytes([["a@example.com"]])})
    data = prepare(raw, "book.zip")
    assert (data.kind, data.inner_name) == ("xlsx", "book.xlsx")
    assert list(rows_iter(data)) == [(1, ["a@example.com"])]


def test_preview_starts_at_the_start_row_and_skips_empty_rows(prepare):
    data = prepare(b"header\n\na@example.com\nb@example.com\nc@example.com\n", "l.txt")
    assert rows_preview(data, start=2, limit=2) == [(3, ["a@example.com"]), (4, ["b@example.com"])]


# --- refused files ---------------------------------------------------------------------------


def test_png_renamed_csv(prepare):
    assert "PNG image" in rejected(prepare, png_bytes(), "contacts.csv")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"%PDF-1.7\n...", "PDF document"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image"),
        (b"GIF89a\x01\x00", "GIF image"),
        (b"\x1f\x8b\x08\x00rest", "GZIP archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "Excel 97–2003"),
        (bytes(range(256)) * 4, "binary file"),
    ],
)
def test_other_binaries(prepare, raw, expected):
    assert expected in rejected(prepare, raw, "contacts.csv")


def test_zip_bomb(prepare, settings):
    settings.DNC_IMPORT_MAX_EXPANDED = 1024 * 1024
    raw = bomb_zip(3 * 1024 * 1024)
    assert len(raw) < 50_000
    assert "expands to more than 1 MB" in rejected(prepare, raw, "bomb.zip")


def test_zip_bomb_at_the_default_limit(prepare):
    """The 100 MB limit itself, with a file that expands past it from a few hundred KB."""
    message = rejected(prepare, bomb_zip(101 * 1024 * 1024), "bomb.zip")
    assert "expands to more than 100 MB" in message


def test_zip_whose_header_lies_about_the_size(prepare, settings):
    settings.DNC_IMPORT_MAX_EXPANDED = 1024 * 1024
    message = rejected(prepare, lying_zip(2 * 1024 * 1024), "liar.zip")
    assert "expands to more than" in message or "damaged" in message


def test_nothing_left_on_disk_after_a_bomb(prepare, settings, tmp_path):
    settings.DNC_IMPORT_MAX_EXPANDED = 1024 * 1024
    rejected(prepare, bomb_zip(3 * 1024 * 1024), "bomb.zip")
    assert list((tmp_path / "work").glob("*")) == []


def test_xlsx_bomb(prepare, settings):
    settings.DNC_IMPORT_MAX_EXPANDED = 1024 * 1024
    rows = [[f"person{i}@example.com", "x" * 200] for i in range(8000)]
    assert "workbook expands to more than" in rejected(prepare, xlsx_bytes(rows), "big.xlsx")


@pytest.mark.parametrize(
    "name", ["../evil.csv", "/etc/evil.csv", "dir\\..\\evil.csv", "C:evil.csv"]
)
def test_zip_path_traversal(prepare, name):
    message = rejected(prepare, zip_bytes({name: "a@example.com\n"}), "evil.zip")
    assert "points outside the archive" in message


def test_zip_encrypted(prepare):
    raw = zip_bytes({"contacts.csv": "a@example.com\n"}, encrypted=["contacts.csv"])
    assert "password-protected" in rejected(prepare, raw, "locked.zip")


def test_xlsx_encrypted_part(prepare):
    inner = zip_bytes(
        {
            "[Content_Types].xml": "<Types/>",
            "xl/workbook.xml": "<workbook/>",
            "xl/worksheets/sheet1.xml": "<worksheet/>",
        },
        encrypted=["xl/worksheets/sheet1.xml"],
    )
    assert "password-protected" in rejected(prepare, inner, "locked.xlsx")


@pytest.mark.parametrize("inner", ["more.zip", "more.csv.gz", "data.7z", "x.tar"])
def test_zip_nested_archive_by_name(prepare, inner):
    raw = zip_bytes({"contacts.csv": "a@example.com\n", inner: b"whatever"})
    assert "another archive" in rejected(prepare, raw, "nested.zip")


def test_zip_nested_archive_by_content(prepare):
    raw = zip_bytes({"contacts.csv": zip_bytes({"x.csv": "a@example.com\n"})})
    assert "itself an archive" in rejected(prepare, raw, "nested.zip")


def test_zip_nested_archive_named_xlsx(prepare):
    raw = zip_bytes({"book.xlsx": zip_bytes({"x.csv": "a@example.com\n"})})
    assert "not an Excel workbook" in rejected(prepare, raw, "nested.zip")


def test_zip_with_two_data_files(prepare):
    raw = zip_bytes({"a.csv": "a@example.com\n", "b.txt": "b@example.com\n"})
    message = rejected(prepare, raw, "two.zip")
    assert "holds 2 files to import" in message and "exactly one" in message


def test_zip_without_a_data_file(prepare):
    raw = zip_bytes({"readme.md": "hello", "__MACOSX/._x": b"\x00"})
    assert "holds no .txt, .csv or .xlsx file" in rejected(prepare, raw, "empty.zip")


def test_damaged_zip(prepare):
    raw = zip_bytes({"contacts.csv": "a@example.com\n" * 100})
    assert "damaged" in rejected(prepare, raw[:60], "cut.zip")


def test_png_inside_a_zip(prepare):
    raw = zip_bytes({"contacts.csv": png_bytes()})
    assert "PNG image" in rejected(prepare, raw, "pic.zip")


def test_xlsx_billion_laughs(prepare):
    message = rejected(prepare, xlsx_with_sheet_xml(LAUGHS), "laughs.xlsx")
    assert "XML entity declarations" in message


def test_xlsx_external_entity(prepare):
    message = rejected(prepare, xlsx_with_sheet_xml(EXTERNAL), "xxe.xlsx")
    assert "XML entity declarations" in message


def test_openpyxl_parses_through_defusedxml():
    import openpyxl

    assert openpyxl.DEFUSEDXML is True


def test_empty_file(prepare):
    assert rejected(prepare, b"", "empty.csv") == "The file is empty."


# --- storing the upload ----------------------------------------------------------------------


def test_upload_store_stops_at_the_limit(settings, tmp_path):
    settings.DNC_IMPORT_MAX_BYTES = 1000
    dest: Path = tmp_path / "upload"
    chunks_read = []

    def chunks():
        for i in range(100):
            chunks_read.append(i)
            yield b"x" * 400

    with pytest.raises(FileRejected, match="at most 1,000 bytes"):
        upload_store(chunks(), dest)
    assert not dest.exists()
    assert len(chunks_read) == 3  # it stopped reading once past the limit


def test_upload_store_at_the_limit_is_accepted(settings, tmp_path):
    settings.DNC_IMPORT_MAX_BYTES = 1000
    assert upload_store([b"x" * 600, b"y" * 400], tmp_path / "upload") == 1000


@pytest.mark.parametrize("odd", [".", ""])
def test_zip_with_an_entry_named_dot_or_nothing(prepare, odd):
    raw = zip_bytes({odd: "x", "contacts.csv": "a@example.com\n"})
    data = prepare(raw, "odd.zip")
    assert [cells for _, cells in rows_iter(data)] == [["a@example.com"]]


def test_xlsx_whose_dimension_is_wrong_is_read_whole(prepare):
    # Some writers leave <dimension ref="A1"/> on a full sheet; read-only openpyxl trusts it.
    rows = "".join(
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>u{r}@example.com</t></is></c>'
        f'<c r="B{r}" t="inlineStr"><is><t>Shop{r}</t></is></c></row>'
        for r in range(1, 6)
    )
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="A1"/><sheetData>{rows}</sheetData></worksheet>'
    )
    data = prepare(xlsx_with_sheet_xml(sheet), "wrong.xlsx")
    assert [cells for _, cells in rows_iter(data)] == [
        [f"u{r}@example.com", f"Shop{r}"] for r in range(1, 6)
    ]
