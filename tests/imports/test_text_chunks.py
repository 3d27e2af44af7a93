"""Reading a file as pieces of text on several cores (imports.reader.text_chunks and
chunk_rows) against reading it in order (rows_read): the same rows, numbers and problems for
any file, falling back to reading in order where a piece was cut in the wrong place."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imports.reader import (
    Dialect,
    FileRejected,
    Uncuttable,
    chunk_rows,
    rows_read,
    text_chunks,
)

CELLS = st.sampled_from(
    [
        "",
        "a",
        "Ada Lovelace",
        '"quoted"',
        '"with, comma"',
        '"two\nlines"',
        '"cr\r\nlf"',
        '"say ""hi"""',
        'a"b',  # a quote inside an unquoted value: csv keeps it, the cut miscounts
        '"a"b',  # text after a closing quote: a row problem
        "é中",
        "nul\x00",
        '"unclosed',
    ]
)
ENDS = st.sampled_from(["\n", "\r\n", "\r", "\n\n"])


@st.composite
def files(draw) -> str:
    rows = draw(st.lists(st.lists(CELLS, min_size=1, max_size=4), min_size=0, max_size=30))
    text = "id,name,x\n"
    for cells in rows:
        text += ",".join(cells) + draw(ENDS)
    if draw(st.booleans()) and text.endswith("\n"):
        text = text[:-1]  # the last record without a line break
    return text


def read(path: Path, dialect: Dialect) -> list[tuple]:
    try:
        return [(r.number, r.cells, r.problem) for r in rows_read(path, dialect)]
    except FileRejected as exc:
        return [("rejected", exc.message)]


def read_in_pieces(path: Path, dialect: Dialect, size: int) -> tuple[list[tuple], bool]:
    """As the staging pool reads: pieces while they are cut right, then in order."""
    rows: list[tuple] = []
    resume_at = None
    try:
        for chunk in text_chunks(path, dialect, size):
            got = chunk_rows(chunk, dialect)
            if got is None:
                resume_at = chunk.first
                break
            rows += [(r.number, r.cells, r.problem) for r in got]
    except Uncuttable as exc:
        resume_at = exc.first
    if resume_at is None:
        return rows, False
    rest = read(path, dialect)
    if rest and rest[0][0] == "rejected":
        return rest, True
    return rows + [r for r in rest if r[0] >= resume_at], True


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=files(), size=st.integers(1, 64), encoding=st.sampled_from(["utf-8", "utf-16"]))
def test_pieces_read_as_reading_in_order(text, size, encoding):
    dialect = Dialect(encoding, ",")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_bytes(text.encode(encoding))
        expected = read(path, dialect)
        got, _ = read_in_pieces(path, dialect, size)
    assert got == expected


def test_a_well_formed_file_is_read_in_pieces_without_falling_back(tmp_path):
    """Quotes, line breaks inside them, CRLF, CR alone, a blank line: every cut is right."""
    path = tmp_path / "f.csv"
    lines = ["id,name"] + [f'{i},"Name {i}, ""quoted""\r\nover lines\r"' for i in range(2000)]
    lines[::10] = [line + "\rcr,only" for line in lines[::10]]  # a record ended by \r alone
    lines += ["", "last,row"]
    path.write_text("\r\n".join(lines), encoding="utf-8")
    dialect = Dialect("utf-8", ",")
    rows, fell_back = read_in_pieces(path, dialect, 4096)
    assert not fell_back
    assert rows == read(path, dialect)
    assert len(list(text_chunks(path, dialect, 4096))) > 10


def test_a_stray_quote_leaves_no_record_end_after_it(tmp_path):
    """After a quote inside an unquoted value every line break counts as quoted: no piece can
    end there, and the file falls back to reading in order (each line's quotes are counted
    once while looking, so a big file with one stray quote is cut as fast as any other)."""
    from imports.reader import _last_record_end

    text = 'id,name\n1,a"b\n' + "".join(f"{i},n{i}\n" for i in range(5000))
    assert _last_record_end(text, '"') == len("id,name\n")
    assert _last_record_end('x\n"a\nb"\nc\n', '"') == len('x\n"a\nb"\nc\n')
    assert _last_record_end('"a\nb', '"') == 0
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8")
    dialect = Dialect("utf-8", ",")
    rows, fell_back = read_in_pieces(path, dialect, 4096)
    assert fell_back
    assert rows == read(path, dialect)
