"""imports/reader.py on real small files: storing an upload, detecting the encoding and the
delimiter, checking the header, streaming rows (numbers, blank lines, broken bytes and quotes)."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from imports.reader import (
    SAMPLE_BYTES,
    Dialect,
    FileRejected,
    Row,
    dialect_detect,
    header_read,
    preview_rows,
    rows_read,
    sample_values,
    size_text,
    upload_store,
)

COMMA_UTF8 = Dialect("utf-8", ",")


def write(tmp_path: Path, data: bytes, name: str = "upload.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_all(path: Path, dialect: Dialect | None = None) -> list[Row]:
    return list(rows_read(path, dialect or dialect_detect(path)))


def rejected(call, *args) -> str:
    with pytest.raises(FileRejected) as info:
        call(*args)
    assert str(info.value) == info.value.message
    return info.value.message


# --- upload_store ----------------------------------------------------------------------------


def test_upload_store_copies_a_file_object(tmp_path):
    data = b"id,email\n1,a@example.com\n" * 1000
    dest = tmp_path / "stored" / "a.csv"
    assert upload_store(io.BytesIO(data), dest) == len(data)
    assert dest.read_bytes() == data


def test_upload_store_copies_chunks_and_uploaded_files(tmp_path):
    assert upload_store(iter([b"id\n", b"1\n", b"2\n"]), tmp_path / "a.csv") == 7
    assert (tmp_path / "a.csv").read_bytes() == b"id\n1\n2\n"
    upload = SimpleUploadedFile("people.csv", b"id\n42\n")
    assert upload_store(upload, tmp_path / "b.csv") == 6
    assert (tmp_path / "b.csv").read_bytes() == b"id\n42\n"


def test_upload_store_rejects_an_empty_file(tmp_path):
    dest = tmp_path / "a.csv"
    assert rejected(upload_store, iter([b""]), dest) == "The file is empty."
    assert not dest.exists()


def test_upload_store_size_limit(tmp_path, settings):
    settings.IMPORTS_MAX_BYTES = 1000
    assert upload_store(io.BytesIO(b"x" * 999), tmp_path / "ok.csv") == 999

    consumed = []

    def chunks():
        for n in range(100):
            consumed.append(n)
            yield b"y" * 300

    dest = tmp_path / "big.csv"
    message = rejected(upload_store, chunks(), dest)
    assert message == "This file is too large; files must be smaller than 1,000 bytes."
    assert not dest.exists()
    assert len(consumed) == 4  # stopped as soon as the limit was reached

    # Exactly the limit is too much: the file must be smaller.
    assert rejected(upload_store, io.BytesIO(b"x" * 1000), dest)
    assert not dest.exists()


def test_upload_store_names_the_declared_size(tmp_path, settings):
    settings.IMPORTS_MAX_BYTES = 128 * 1024 * 1024
    upload = SimpleUploadedFile("big.csv", b"id\n")
    upload.size = int(130.2 * 1024 * 1024)
    message = rejected(upload_store, upload, tmp_path / "a.csv")
    assert message == "This file is 130.2 MB; the limit is 128 MB."
    assert not (tmp_path / "a.csv").exists()


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 bytes"), (1000, "1,000 bytes"), (1536, "1.5 KB"), (128 * 1024 * 1024, "128 MB")],
)
def test_size_text(size, text):
    assert size_text(size) == text


# --- encoding ----------------------------------------------------------------------------------


def test_utf8_without_bom(tmp_path):
    path = write(tmp_path, "id,name\n1,José\n".encode())
    assert dialect_detect(path) == Dialect("utf-8", ",")
    assert [r.cells for r in read_all(path)] == [["1", "José"]]


def test_utf8_bom_is_not_part_of_the_first_header(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + "id,name\n1,Zoë\n".encode())
    dialect = dialect_detect(path)
    assert dialect == Dialect("utf-8-sig", ",")
    assert dialect.label == "UTF-8 with BOM, comma-separated"
    assert header_read(path, dialect) == ["id", "name"]
    assert [r.cells for r in read_all(path)] == [["1", "Zoë"]]


@pytest.mark.parametrize(
    ("bom", "codec", "expected"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
        (b"", "utf-16-le", "utf-16-le"),
        (b"", "utf-16-be", "utf-16-be"),
    ],
)
def test_utf16_with_and_without_bom(tmp_path, bom, codec, expected):
    text = "id\tname\r\n1\tJosé Ünal\r\n2\t山田\r\n"
    path = write(tmp_path, bom + text.encode(codec))
    dialect = dialect_detect(path)
    assert dialect == Dialect(expected, "\t")
    assert header_read(path, dialect) == ["id", "name"]
    assert [(r.number, r.cells, r.problem) for r in read_all(path, dialect)] == [
        (2, ["1", "José Ünal"], ""),
        (3, ["2", "山田"], ""),
    ]


def test_windows_1252(tmp_path):
    path = write(tmp_path, b"id;city\n1;Orl\xe9ans\n2;K\xf6ln\n")
    dialect = dialect_detect(path)
    assert dialect == Dialect("cp1252", ";")
    assert dialect.label == "Windows-1252, semicolon-separated"
    assert [r.cells for r in read_all(path, dialect)] == [["1", "Orléans"], ["2", "Köln"]]


def test_invalid_utf8_bytes_mark_their_row(tmp_path):
    path = write(
        tmp_path, "id,name\n1,José Müller\n".encode() + b"2,bad \xff\xfe\n" + "3,Zoë\n".encode()
    )
    dialect = dialect_detect(path)
    assert dialect.encoding == "utf-8"
    rows = read_all(path, dialect)
    assert [(r.number, r.problem) for r in rows] == [
        (2, ""),
        (3, "Row 3 contains bytes that are not valid UTF-8."),
        (4, ""),
    ]
    assert rows[1].cells == ["2", "bad \udcff\udcfe"]  # kept, as surrogateescape does
    assert rows[2].cells == ["3", "Zoë"]


def test_invalid_utf8_bytes_after_the_sample(tmp_path):
    filler = b"".join(b"%d,someone\n" % n for n in range(1, 8000))
    assert len(filler) > SAMPLE_BYTES
    path = write(tmp_path, b"id,name\n" + filler + b"8000,Ren\xe9e\n8001,ok\n")
    dialect = dialect_detect(path)
    assert dialect == Dialect("utf-8", ",")
    rows = read_all(path, dialect)
    assert [r.problem for r in rows if r.problem] == [
        "Row 8001 contains bytes that are not valid UTF-8."
    ]
    assert rows[-2].cells == ["8000", "Ren\udce9e"]
    assert rows[-1] == Row(8002, ["8001", "ok"])


def test_sample_cut_inside_a_character_is_still_utf8(tmp_path):
    # "é" is two bytes; the 64 KB sample ends between them.
    head = b"id,name\n"
    line = "1,é\n".encode()
    body = head + b"x" * (SAMPLE_BYTES - len(head) - 1 - 3) + b"\n" + line * 10
    assert body[SAMPLE_BYTES - 1 : SAMPLE_BYTES + 1] == "é".encode()
    path = write(tmp_path, body)
    assert dialect_detect(path).encoding == "utf-8"


def test_undefined_windows_1252_bytes_mark_their_row(tmp_path):
    path = write(tmp_path, b"id,city\n1,Orl\xe9ans\n2,odd \x81\n")
    rows = read_all(path)
    assert [r.problem for r in rows] == [
        "",
        "Row 3 contains bytes that are not valid Windows-1252.",
    ]
    assert rows[1].cells == ["2", "odd \udc81"]


def test_invalid_utf16_does_not_stop_the_read(tmp_path):
    # A lone high surrogate, and an odd last byte.
    data = codecs.BOM_UTF16_LE + "id,n\n1,a".encode("utf-16-le") + b"\x00\xd8"
    data += "\n2,b\n".encode("utf-16-le") + b"x"
    path = write(tmp_path, data)
    rows = read_all(path)
    assert [(r.number, r.problem) for r in rows] == [
        (2, "Row 2 contains bytes that are not valid UTF-16."),
        (3, ""),
        (4, "Row 4 contains bytes that are not valid UTF-16."),
    ]
    assert rows[1].cells == ["2", "b"]


def test_utf32_is_refused(tmp_path):
    path = write(tmp_path, "id\n1\n".encode("utf-32"))
    assert "UTF-32" in rejected(dialect_detect, path)


# --- not a CSV file --------------------------------------------------------------------------


def test_empty_file(tmp_path):
    assert rejected(dialect_detect, write(tmp_path, b"")) == "The file is empty."


def test_png_renamed_csv(tmp_path):
    path = write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert rejected(dialect_detect, path) == "This looks like a PNG image, not a CSV file."


def test_xlsx_renamed_csv(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    message = rejected(dialect_detect, write(tmp_path, buffer.getvalue()))
    assert message.startswith(
        "This looks like an Excel workbook (.xlsx) or a ZIP archive, not a CSV file."
    )
    assert "CSV UTF-8" in message


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (gzip.compress(b"id\n1\n"), "a GZIP-compressed file"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
        (b"GIF89a\x01\x00\x01\x00", "a GIF image"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "an Excel 97–2003 workbook (.xls)"),
        (bytes(range(256)) * 4, "a binary file"),
    ],
)
def test_other_binary_files(tmp_path, data, kind):
    assert rejected(dialect_detect, write(tmp_path, data)).startswith(
        f"This looks like {kind}, not a CSV file."
    )


def test_many_nul_bytes_is_binary(tmp_path):
    path = write(tmp_path, b"id,name\n" + b"1,\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\n")
    assert rejected(dialect_detect, path) == "This looks like a binary file, not a CSV file."


def test_a_stray_nul_is_kept_in_its_cell(tmp_path):
    # One NUL in a text file is a broken value, not a binary file; the validator refuses it.
    path = write(tmp_path, b"id,name\n1,Ada\n2,Bo\x00b\n3,Cy\n")
    assert dialect_detect(path) == Dialect("utf-8", ",")
    assert [r.cells for r in read_all(path)] == [["1", "Ada"], ["2", "Bo\x00b"], ["3", "Cy"]]


def test_nul_character_in_utf16_is_kept(tmp_path):
    path = write(tmp_path, "id,name\n1,a\x00b\n".encode("utf-16"))
    assert [r.cells for r in read_all(path)] == [["1", "a\x00b"]]


# --- delimiter -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("id,name\n1,Ada\n", ","),
        ("id;name\n1;Ada\n", ";"),
        ("id\tname\n1\tAda\n", "\t"),
        ("id\n", ","),  # one column: comma
        ("id\n1\n2\n", ","),
        ("id;name\n", ";"),  # header only
        ("id;price;qty\n1;1,5;2,0\n2;3,25;1\n", ";"),  # decimal commas
        ("id,notes\n1,a;b;c\n2,x;y\n", ","),  # semicolons in values
        ("id\tname\n1\tSmith, John\n", "\t"),
        ('id;note\n1;"a;b,c"\n2;"x\ny;z"\n', ";"),  # delimiters and newlines inside quotes
        ('"id","name, full"\n"1","Ada, L"\n', ","),
        ("id,name\n1,Ada\n2\n3,Cy,extra\n", ","),  # ragged rows
        ("email\nSmith, John\n", ","),
    ],
)
def test_delimiter_detect(tmp_path, text, delimiter):
    assert dialect_detect(write(tmp_path, text.encode())).delimiter == delimiter


def test_delimiter_detect_on_a_file_larger_than_the_sample(tmp_path):
    rows = "".join(f'{n};"a, b";{n * 2}\n' for n in range(10_000))
    path = write(tmp_path, f"id;note;n\n{rows}".encode())
    assert dialect_detect(path) == Dialect("utf-8", ";")


@pytest.mark.parametrize(
    ("dialect", "label"),
    [
        (Dialect("utf-8", ","), "UTF-8, comma-separated"),
        (Dialect("utf-16", "\t"), "UTF-16, tab-separated"),
        (Dialect("utf-16-be", ";"), "UTF-16 BE, semicolon-separated"),
    ],
)
def test_dialect_label(dialect, label):
    assert dialect.label == label


# --- header ----------------------------------------------------------------------------------


def test_header_is_stripped(tmp_path):
    path = write(tmp_path, b" id , E-mail ,Name\n1,a@example.com,Ada\n")
    assert header_read(path, COMMA_UTF8) == ["id", "E-mail", "Name"]


def test_header_column_limit(tmp_path):
    ok = write(tmp_path, (",".join(f"c{n}" for n in range(99)) + "\n").encode(), "ok.csv")
    assert len(header_read(ok, COMMA_UTF8)) == 99
    too_many = write(tmp_path, (",".join(f"c{n}" for n in range(120)) + "\n").encode())
    assert rejected(header_read, too_many, COMMA_UTF8) == (
        "The file has 120 columns; at most 99 are allowed."
    )
    hundred = write(tmp_path, ",".join(f"c{n}" for n in range(100)).encode(), "100.csv")
    assert rejected(header_read, hundred, COMMA_UTF8) == (
        "The file has 100 columns; at most 99 are allowed."
    )


def test_header_empty_cell(tmp_path):
    path = write(tmp_path, b"id,email,name, ,city\n")
    assert rejected(header_read, path, COMMA_UTF8) == (
        "Column 4 has no header. Give it a name or delete the column."
    )


def test_header_duplicates_case_insensitive(tmp_path):
    path = write(tmp_path, b"id,Email,name, email ,ID\n")
    assert rejected(header_read, path, COMMA_UTF8) == (
        "Each column needs a different header. Repeated: “id” (columns 1, 5); "
        "“Email” (columns 2, 4)."
    )


@pytest.mark.parametrize("header", ["=SUM(A1:A3)", "+1", "-x", "@cmd", " =HYPERLINK(1)"])
def test_header_formula(tmp_path, header):
    path = write(tmp_path, f"id,{header}\n".encode())
    message = rejected(header_read, path, COMMA_UTF8)
    assert message.startswith(f"The header “{header.strip()}” in column 2 looks like a ")


def test_header_no_rows(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8)
    assert rejected(header_read, path, Dialect("utf-8-sig", ",")) == "The file has no rows."


def test_header_blank_first_row(tmp_path):
    path = write(tmp_path, b"\nid,name\n")
    assert rejected(header_read, path, COMMA_UTF8).startswith("The first row is empty")


def test_header_with_undecodable_bytes(tmp_path):
    path = write(tmp_path, b"id,n\xffme\n1,a\n")
    assert rejected(header_read, path, COMMA_UTF8) == (
        "The header row contains bytes that are not valid UTF-8."
    )


def test_header_only_file(tmp_path):
    path = write(tmp_path, b"id,email\r\n")
    dialect = dialect_detect(path)
    assert header_read(path, dialect) == ["id", "email"]
    assert read_all(path, dialect) == []
    assert preview_rows(path, dialect) == []
    assert sample_values(path, dialect) == [[], []]


# --- rows ------------------------------------------------------------------------------------


def test_crlf_and_lf(tmp_path):
    path = write(tmp_path, b"id,name\r\n1,Ada\r\n2,Bo\n3,Cy")
    assert read_all(path) == [Row(2, ["1", "Ada"]), Row(3, ["2", "Bo"]), Row(4, ["3", "Cy"])]


def test_quoted_newlines_and_delimiters_count_as_one_row(tmp_path):
    data = b'id,note\r\n1,"line one\r\nline two, still"\r\n2,"say ""hi"""\r\n3,"a\nb\nc"\r\n4,x\r\n'
    assert [(r.number, r.cells) for r in read_all(write(tmp_path, data))] == [
        (2, ["1", "line one\r\nline two, still"]),
        (3, ["2", 'say "hi"']),
        (4, ["3", "a\nb\nc"]),
        (5, ["4", "x"]),
    ]


def test_blank_lines_are_skipped_but_numbered(tmp_path):
    data = b'id,note\n\n1,"two\nlines"\n\n,\n , \n2,b\n'
    rows = read_all(write(tmp_path, data))
    # row 2 blank, row 3 the quoted value, row 4 blank, row 5 only empty cells, row 6 spaces
    assert [(r.number, r.cells) for r in rows] == [
        (3, ["1", "two\nlines"]),
        (6, [" ", " "]),
        (7, ["2", "b"]),
    ]


def test_rows_pass_ragged_rows_through(tmp_path):
    rows = read_all(write(tmp_path, b"id,name\n1\n2,b,extra\n"))
    assert [r.cells for r in rows] == [["1"], ["2", "b", "extra"]]


def test_unterminated_quote_at_the_end(tmp_path):
    path = write(tmp_path, b'id,note\n1,fine\n2,"never closed\n3,lost\n4,lost too\n')
    rows = rows_read(path, dialect_detect(path))
    assert next(rows) == Row(2, ["1", "fine"])
    with pytest.raises(FileRejected) as info:
        next(rows)
    assert info.value.message.startswith("Row 3 has a quote that is never closed")


def test_unterminated_quote_after_a_multiline_value(tmp_path):
    path = write(tmp_path, b'id,note\n1,"a\nb"\n\n2,"open\n')
    message = rejected(read_all, path)
    # row 2 the quoted value, row 3 blank, row 4 the open quote
    assert message.startswith("Row 4 has a quote that is never closed")


def test_text_after_a_closing_quote_is_a_row_problem(tmp_path):
    path = write(tmp_path, b'id,note\n1,"quoted"tail\n2,ok\n')
    rows = read_all(path)
    assert rows[0].number == 2
    assert rows[0].cells == []
    assert rows[0].problem.startswith("Row 2 could not be read: a quoted value is followed by")
    assert rows[1] == Row(3, ["2", "ok"])


def test_a_200_kb_field_parses(tmp_path):
    big = "x" * 200_000
    rows = read_all(write(tmp_path, f'id,note\n1,"{big}"\n2,{big}\n'.encode()))
    assert [len(r.cells[1]) for r in rows] == [200_000, 200_000]


def test_a_field_above_the_limit(tmp_path):
    big = "x" * 1_100_000
    path = write(tmp_path, f"id,note\n1,a\n2,{big}\n".encode())
    assert rejected(read_all, path).startswith("Row 3 has a value longer than 1,048,576 characters")


def test_field_limit_from_settings(tmp_path, settings):
    settings.IMPORTS_MAX_FIELD_BYTES = 1000
    path = write(tmp_path, ('id,note\n1,"' + "y" * 999 + '"\n2,"' + "z" * 1001 + '"\n').encode())
    rows = rows_read(path, COMMA_UTF8)
    assert len(next(rows).cells[1]) == 999
    with pytest.raises(FileRejected, match="^Row 3 has a value longer than 1,000 characters"):
        next(rows)


def test_rows_read_is_lazy(tmp_path):
    path = write(tmp_path, b"id\n1\n2\n")
    rows = rows_read(path, COMMA_UTF8)
    assert next(rows) == Row(2, ["1"])
    rows.close()


# --- preview and samples -----------------------------------------------------------------------


def test_preview_rows(tmp_path):
    path = write(tmp_path, b"id,name\n" + b"".join(b"%d,n%d\n" % (n, n) for n in range(30)))
    dialect = dialect_detect(path)
    assert preview_rows(path, dialect) == [[str(n), f"n{n}"] for n in range(10)]
    assert preview_rows(path, dialect, limit=2) == [["0", "n0"], ["1", "n1"]]


def test_preview_shows_undecodable_bytes_as_replacement_characters(tmp_path):
    path = write(tmp_path, "id,name\n1,Zoë\n".encode() + b"2,b\xffd\n")
    assert preview_rows(path, dialect_detect(path)) == [["1", "Zoë"], ["2", "b\ufffdd"]]


def test_sample_values(tmp_path):
    lines = ["id,city,note,empty"]
    cities = ["Paris", "Lyon", "Paris", " Nice ", "Lille", "Metz", "Brest"]
    lines += [f"{n},{cities[n % len(cities)]},,\n" for n in range(300)]
    lines.append("999,Late,late note,")
    path = write(tmp_path, "\n".join(lines).encode())
    dialect = dialect_detect(path)
    samples = sample_values(path, dialect)
    assert samples[0] == ["0", "1", "2", "3", "4"]
    assert samples[1] == ["Paris", "Lyon", "Nice", "Lille", "Metz"]
    assert samples[2] == []  # "late note" is beyond the first 200 rows
    assert samples[3] == []
    assert sample_values(path, dialect, per_column=2, scan_rows=1000)[2] == ["late note"]


def test_sample_values_ignores_cells_beyond_the_header(tmp_path):
    path = write(tmp_path, b"id,name\n1,Ada,extra\n2\n")
    assert sample_values(path, COMMA_UTF8) == [["1", "2"], ["Ada"]]


# --- property: whatever csv.writer writes reads back -------------------------------------------

cells = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
headers = st.lists(
    st.from_regex(r"[a-z][a-z0-9_ ]{0,8}", fullmatch=True),
    min_size=2,
    max_size=5,
    unique_by=lambda h: h.strip().casefold(),
)
data_rows = st.lists(st.lists(cells, min_size=1, max_size=6).filter(any), max_size=15)


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    header=headers,
    rows=data_rows,
    delimiter=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_what_csv_writer_writes_reads_back(tmp_path_factory, header, rows, delimiter, encoding):
    path = tmp_path_factory.mktemp("prop") / "rows.csv"
    with open(path, "w", encoding=encoding, newline="") as f:
        # The default line terminator: with "\n", Python 3.12's writer leaves a lone "\r"
        # unquoted, so it does not read back (a writer bug, not the reader's).
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    dialect = dialect_detect(path)
    assert dialect.delimiter == delimiter
    assert header_read(path, dialect) == [h.strip() for h in header]
    assert read_all(path, dialect) == [Row(n, r) for n, r in enumerate(rows, start=2)]
