"""Reading an uploaded CSV file: store it within the size limit, detect its encoding and
delimiter, read and check the header, then stream the data rows.

Nothing here reads a whole file into memory: detection looks at the first 64 KB, and
``rows_read`` is a generator over ``csv.reader`` on a decoding stream.

Row numbers are what a spreadsheet shows: the header is row 1 and every CSV record counts as
one row, so a quoted value spanning several lines is still one row, and a skipped blank line
still uses up a number.

Undecodable bytes never stop a read: they become lone surrogates (U+DC00 + byte, like
``surrogateescape``) and the row carries a ``problem``. The validator turns them into U+FFFD.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

DEFAULT_MAX_BYTES = 128 * 1024 * 1024
DEFAULT_MAX_COLUMNS = 99
DEFAULT_MAX_FIELD_BYTES = 1_048_576
SAMPLE_BYTES = 64 * 1024
# Records of the sample that delimiter detection parses.
SAMPLE_RECORDS = 50
COPY_CHUNK = 1024 * 1024
# Sample values are for display in the mapping step; a long value is cut.
SAMPLE_VALUE_MAX = 200

DELIMITERS = (",", ";", "\t")  # in order of preference when the evidence is equal
FORMULA_STARTS = ("=", "+", "-", "@")

_ENCODING_LABELS = {
    "utf-8-sig": "UTF-8 with BOM",
    "utf-8": "UTF-8",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "cp1252": "Windows-1252",
}
# The encoding named in "Row 3 contains bytes that are not valid ...".
_ENCODING_NAMES = {
    "utf-8-sig": "UTF-8",
    "utf-8": "UTF-8",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "cp1252": "Windows-1252",
}
_DELIMITER_LABELS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

_EXCEL_HINT = " In Excel, use File › Save As and choose “CSV UTF-8”, then upload that file."
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or a ZIP archive"),
    (b"PK\x05\x06", "an Excel workbook (.xlsx) or a ZIP archive"),
    (b"PK\x07\x08", "an Excel workbook (.xlsx) or a ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97–2003 workbook (.xls)"),
    (b"\x1f\x8b", "a GZIP-compressed file"),
    (b"%PDF-", "a PDF document"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
)

# Lone surrogates: where the decoder met bytes that are not valid in the file's encoding.
_UNDECODABLE = re.compile("[\udc00-\udcff]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class FileRejected(Exception):
    """The file cannot be imported at all; ``message`` says why, for the person uploading."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Dialect:
    encoding: str  # a Python codec name, one of _ENCODING_LABELS
    delimiter: str
    quotechar: str = '"'

    @property
    def encoding_label(self) -> str:
        return _ENCODING_LABELS.get(self.encoding, self.encoding)

    @property
    def delimiter_label(self) -> str:
        return _DELIMITER_LABELS.get(self.delimiter, repr(self.delimiter))

    @property
    def label(self) -> str:
        """E.g. "UTF-8 with BOM, semicolon-separated"."""
        return f"{self.encoding_label}, {self.delimiter_label}-separated"


@dataclass(slots=True)
class Row:
    number: int
    cells: list[str]
    problem: str = ""  # non-empty when the row itself is broken (cells may then be empty)


# --- limits and messages ---------------------------------------------------------------------


def _max_bytes() -> int:
    return int(getattr(settings, "IMPORTS_MAX_BYTES", DEFAULT_MAX_BYTES))


def _max_columns() -> int:
    return int(getattr(settings, "IMPORTS_MAX_COLUMNS", DEFAULT_MAX_COLUMNS))


def _max_field() -> int:
    return int(getattr(settings, "IMPORTS_MAX_FIELD_BYTES", DEFAULT_MAX_FIELD_BYTES))


def size_text(size: int) -> str:
    """1536 -> "1.5 KB", 134217728 -> "128 MB" (binary units, as file managers show)."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size:,} bytes"


def _quoted(text: str) -> str:
    return f"“{text}”"


# --- storing the upload ----------------------------------------------------------------------


def _chunks(source: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    chunks, read = getattr(source, "chunks", None), getattr(source, "read", None)
    if callable(chunks):  # a Django UploadedFile
        yield from chunks()
    elif callable(read):
        yield from iter(lambda: read(COPY_CHUNK), b"")
    else:
        yield from source


def upload_store(source: BinaryIO | Iterable[bytes], dest: Path) -> int:
    """Copy ``source`` to ``dest`` and return its size. FileRejected (and no ``dest`` left
    behind) when it is empty or reaches IMPORTS_MAX_BYTES; the copy stops at the limit, so an
    oversized upload never fills the disk."""
    limit = _max_bytes()
    declared = getattr(source, "size", None)
    if isinstance(declared, int) and declared >= limit:
        raise FileRejected(f"This file is {size_text(declared)}; the limit is {size_text(limit)}.")
    message = f"This file is too large; files must be smaller than {size_text(limit)}."
    return store_bounded(_chunks(source), dest, max_bytes=limit - 1, too_big=message)


def store_bounded(chunks: Iterable[bytes], dest: Path, *, max_bytes: int, too_big: str) -> int:
    """Copy ``chunks`` to ``dest`` and return the size; FileRejected (and no ``dest`` left
    behind) when the copy would pass ``max_bytes`` (it stops there, so an oversized upload
    never fills the disk) or the file is empty."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with open(dest, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise FileRejected(too_big)
                out.write(chunk)
        if size == 0:
            raise FileRejected("The file is empty.")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return size


# --- detection -------------------------------------------------------------------------------


def _binary_kind(sample: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if sample.startswith(magic):
            return kind
    return None


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 text mostly in Latin script has a NUL in every other byte: odd positions for
    little-endian, even ones for big-endian."""
    head = sample[:4096]
    half = len(head) // 2
    if half == 0:
        return None
    even, odd = head[0 : 2 * half : 2].count(0), head[1 : 2 * half : 2].count(0)
    if odd >= 0.3 * half and even <= 0.05 * half:
        return "utf-16-le"
    if even >= 0.3 * half and odd <= 0.05 * half:
        return "utf-16-be"
    return None


def _looks_binary(sample: bytes) -> bool:
    # Binary formats are full of NUL and other control bytes, which text never has besides
    # tab, line feed, carriage return and form feed. A text export with a stray NUL in a value
    # is still a CSV file: that row is refused by the validator instead of the whole file.
    controls = len(_CONTROL_BYTES.findall(sample))
    return controls > max(8, len(sample) // 100)


def _is_utf8(sample: bytes, complete: bool) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    # final=False: a sample cut in the middle of a character keeps the incomplete tail back
    # instead of calling it invalid.
    text = decoder.decode(sample, final=complete)
    invalid = len(_UNDECODABLE.findall(text))
    if not invalid:
        return True
    # A UTF-8 file with a few broken bytes (a row pasted from elsewhere) is still UTF-8; a
    # Windows-1252 file almost never contains valid multi-byte UTF-8 sequences.
    valid_multibyte = len(re.findall("[^\x00-\x7f\udc00-\udcff]", text))
    return valid_multibyte >= invalid


def _encoding_detect(sample: bytes, complete: bool) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise FileRejected(
            "This file is in UTF-32, which is not supported. Save it as UTF-8 and upload it again."
        )
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    if b"\x00" in sample and _looks_binary(sample):
        raise FileRejected("This looks like a binary file, not a CSV file.")
    return "utf-8" if _is_utf8(sample, complete) else "cp1252"


def _column_counts(text: str, delimiter: str) -> list[int]:
    counts: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    try:
        for cells in reader:
            if cells and any(cells):
                counts.append(len(cells))
                if len(counts) >= SAMPLE_RECORDS:
                    break
    except csv.Error:
        pass  # a field over the limit or similar: judge on the records read so far
    return counts


def _delimiter_detect(text: str) -> str:
    """The delimiter that splits the header into several columns and gives the following rows
    the header's column count. csv.Sniffer guesses from character frequencies and is often
    wrong on short files and on values containing other delimiters."""

    def score(delimiter: str) -> tuple[bool, float, int, int]:
        counts = _column_counts(text, delimiter)
        width = counts[0] if counts else 0
        if width <= 1:  # a single column (or nothing): nothing to judge by, so comma
            return (False, 0.0, width, -DELIMITERS.index(delimiter))
        consistent = sum(1 for n in counts if n == width) / len(counts)
        return (True, consistent, width, -DELIMITERS.index(delimiter))

    return max(DELIMITERS, key=score)


def dialect_detect(path: Path) -> Dialect:
    """Encoding and delimiter from the first 64 KB; FileRejected for an empty or binary file."""
    with open(path, "rb") as f:
        sample = f.read(SAMPLE_BYTES)
        complete = os.fstat(f.fileno()).st_size <= SAMPLE_BYTES
    if not sample:
        raise FileRejected("The file is empty.")
    kind = _binary_kind(sample)
    if kind:
        hint = _EXCEL_HINT if "Excel" in kind else ""
        raise FileRejected(f"This looks like {kind}, not a CSV file.{hint}")
    encoding = _encoding_detect(sample, complete)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=complete)
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # the last line may be cut short
    return Dialect(encoding, _delimiter_detect(text))


# --- reading ---------------------------------------------------------------------------------


class _DecodeErrors(threading.local):
    count = 0


_decode_errors = _DecodeErrors()


def _escape_bad_bytes(exc: UnicodeError) -> tuple[str, int]:
    """``surrogateescape`` that also works for UTF-16, whose invalid sequences can contain
    bytes below 0x80 (surrogateescape refuses those). It counts its calls so that
    ``rows_read`` looks for surrogates only after the decoder has met a bad byte."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _decode_errors.count += 1
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + b) for b in bad), exc.end


codecs.register_error("imports.escape", _escape_bad_bytes)


def _csv_reader(stream: io.TextIOWrapper, dialect: Dialect) -> Iterator[list[str]]:
    # field_size_limit is process-wide; every reader here sets it to the configured limit.
    csv.field_size_limit(_max_field())
    # strict: a quote that is never closed is an error at the end of the file instead of
    # silently swallowing every following line into one value.
    return csv.reader(stream, delimiter=dialect.delimiter, quotechar=dialect.quotechar, strict=True)


def _text_open(path: Path, dialect: Dialect) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        open(path, "rb"),  # noqa: SIM115 (closed with the wrapper)
        encoding=dialect.encoding,
        errors="imports.escape",
        newline="",
    )


def _csv_problem(exc: csv.Error, number: int) -> str:
    """The message for a csv.Error met while reading row ``number``. FileRejected when the
    rest of the file cannot be trusted; otherwise the row's problem (reading goes on)."""
    reason = str(exc)
    if "field larger than field limit" in reason:
        raise FileRejected(
            f"Row {number} has a value longer than {_max_field():,} characters, which is too "
            "long for any field. Check that its quotes are balanced."
        )
    if "unexpected end of data" in reason:
        # Only at the very end of the file: a quote opened and never closed.
        raise FileRejected(
            f"Row {number} has a quote that is never closed, so everything after it would be "
            "read as one value. Close the quote (or remove it) and upload the file again."
        )
    # Strict parsing met text straight after a closing quote ("a"b); the reader goes on with
    # the next line.
    return (
        f"Row {number} could not be read: a quoted value is followed by other text. "
        "Put the whole value in quotes and double any quote inside it."
    )


def _undecodable(dialect: Dialect, number: int) -> str:
    name = _ENCODING_NAMES.get(dialect.encoding, dialect.encoding)
    return f"Row {number} contains bytes that are not valid {name}."


def _header_cells(path: Path, dialect: Dialect) -> list[str]:
    with _text_open(path, dialect) as stream:
        try:
            return next(_csv_reader(stream, dialect))
        except StopIteration:
            raise FileRejected("The file has no rows.") from None
        except csv.Error as exc:
            raise FileRejected(_csv_problem(exc, 1)) from None


def header_read(path: Path, dialect: Dialect) -> list[str]:
    """The column headers (row 1), stripped; FileRejected when they cannot name columns."""
    cells = _header_cells(path, dialect)
    headers = [cell.strip() for cell in cells]
    if headers:
        headers[0] = headers[0].lstrip("\ufeff").strip()
    if not any(headers):
        raise FileRejected("The first row is empty; it must hold the column headers.")
    if len(headers) > _max_columns():
        raise FileRejected(
            f"The file has {len(headers)} columns; at most {_max_columns()} are allowed."
        )
    if _UNDECODABLE.search("".join(headers)):
        raise FileRejected(
            f"The header row contains bytes that are not valid "
            f"{_ENCODING_NAMES.get(dialect.encoding, dialect.encoding)}."
        )
    for position, header in enumerate(headers, start=1):
        if not header:
            raise FileRejected(
                f"Column {position} has no header. Give it a name or delete the column."
            )
        if header.startswith(FORMULA_STARTS):
            raise FileRejected(
                f"The header {_quoted(header)} in column {position} looks like a spreadsheet "
                "formula. Rename it so that it does not start with =, +, - or @."
            )
    positions: dict[str, list[int]] = {}
    for position, header in enumerate(headers, start=1):
        positions.setdefault(header.casefold(), []).append(position)
    duplicates = [(headers[p[0] - 1], p) for p in positions.values() if len(p) > 1]
    if duplicates:
        named = "; ".join(
            f"{_quoted(header)} (columns {', '.join(map(str, p))})" for header, p in duplicates
        )
        raise FileRejected(f"Each column needs a different header. Repeated: {named}.")
    return headers


def rows_read(path: Path, dialect: Dialect) -> Iterator[Row]:
    """The data rows after the header, streamed. Blank rows are skipped (their numbers are
    used up). FileRejected for an unclosed quote at the end or an over-long value."""
    with _text_open(path, dialect) as stream:
        errors_before = _decode_errors.count
        # Cheap in the common case: look for surrogates only once the decoder has met a bad
        # byte (it decodes ahead of the rows csv hands out). Every supported codec can fail
        # (even cp1252, on 0x81 and a few others).
        yield from _records(
            _csv_reader(stream, dialect),
            dialect,
            _Count(0),
            undecodable=lambda: _decode_errors.count != errors_before,
        )


@dataclass
class _Count:
    records: int  # the number of the last record read (row 1 is the header)


def _records(
    reader: Iterator[list[str]], dialect: Dialect, count: _Count, undecodable: Callable[[], bool]
) -> Iterator[Row]:
    """The data rows of ``reader``, numbered on from ``count`` (which they advance)."""
    while True:
        try:
            for cells in reader:
                count.records += 1
                number = count.records
                if number == 1 or not any(cells):
                    continue
                if undecodable() and _UNDECODABLE.search("".join(cells)):
                    yield Row(number, cells, _undecodable(dialect, number))
                else:
                    yield Row(number, cells)
            return
        except csv.Error as exc:
            count.records += 1
            number = count.records
            problem = _csv_problem(exc, number)
            if number > 1:
                yield Row(number, [], problem)
            else:
                raise FileRejected(problem) from None


# --- the rows as pieces of text, to be read on several cores ---------------------------------

TEXT_CHUNK_CHARS = 512 * 1024
_MAX_UNCUT_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True)
class TextChunk:
    """Whole records of the file, in order: ``records`` of them (blank ones and the header
    included), the first being row ``first``."""

    text: str
    first: int
    records: int

    @property
    def last(self) -> int:
        return self.first + self.records - 1


class Uncuttable(Exception):
    """No record ended where one was expected: rows from ``first`` on must be read in order."""

    def __init__(self, first: int) -> None:
        super().__init__(first)
        self.first = first


def _record_ends(text: str, quote: str) -> int:
    """How many records end in ``text`` (which starts where one starts): the line breaks
    outside quotes, \\n, \\r or \\r\\n each, as csv reads them."""
    outside = "".join(text.split(quote)[::2])  # quotes inside a quoted value come in pairs
    return outside.count("\n") + outside.count("\r") - outside.count("\r\n")


def _last_record_end(text: str, quote: str) -> int:
    """Where the last record that ends with \\n in ``text`` ends; 0 when none does. A line
    break ends a record when an even number of quotes comes before it. Walking back, each
    line's quotes are counted once (a stray quote makes every line break odd)."""
    end = text.rfind("\n") + 1
    quotes = text.count(quote, 0, end)
    while end and quotes % 2:
        start = text.rfind("\n", 0, end - 1) + 1
        quotes -= text.count(quote, start, end)
        end = start
    return end


def text_chunks(path: Path, dialect: Dialect, size: int | None = None) -> Iterator[TextChunk]:
    """The file (its header included) as pieces of whole records, in order. The pieces are
    cut by counting quotes, which a quote inside an unquoted value (a"b) throws off:
    ``chunk_rows`` then finds another number of records than the piece claims. Uncuttable
    when no record ends within 16 MB (an unclosed quote, or a file that ends lines with \\r
    alone)."""
    quote, size = dialect.quotechar, size or TEXT_CHUNK_CHARS
    with _text_open(path, dialect) as stream:
        buffer, first = "", 1
        while more := stream.read(size):
            buffer += more
            end = _last_record_end(buffer, quote)
            if not end:
                if len(buffer) > _MAX_UNCUT_CHARS:
                    raise Uncuttable(first)
                continue
            records = _record_ends(buffer[:end], quote)
            yield TextChunk(buffer[:end], first, records)
            buffer, first = buffer[end:], first + records
        if buffer:  # the last record may end without a line break
            records = _record_ends(buffer, quote) + (not buffer.endswith(("\n", "\r")))
            yield TextChunk(buffer, first, records)


def chunk_rows(chunk: TextChunk, dialect: Dialect) -> list[Row] | None:
    """The piece's rows, exactly as ``rows_read`` reads them. None when csv reads another
    number of records in it than the cut counted, or a problem that stops the file (an
    unclosed quote at its end, an over-long value): the caller then reads in order from the
    piece's first row, and so gets the right rows or the right message."""
    undecodable = _UNDECODABLE.search(chunk.text) is not None
    count = _Count(chunk.first - 1)
    reader = _csv_reader(io.StringIO(chunk.text, newline=""), dialect)
    try:
        rows = list(_records(reader, dialect, count, undecodable=lambda: undecodable))
    except FileRejected:
        return None
    return rows if count.records == chunk.last else None


def _displayable(cell: str) -> str:
    return _UNDECODABLE.sub("\ufffd", cell)


def preview_rows(path: Path, dialect: Dialect, limit: int = 10) -> list[list[str]]:
    """The first ``limit`` data rows, for showing in the import wizard (undecodable bytes as
    U+FFFD, so they can be rendered)."""
    preview: list[list[str]] = []
    if limit <= 0:
        return preview
    with closing(rows_read(path, dialect)) as rows:
        for row in rows:
            preview.append([_displayable(c) for c in row.cells] if row.problem else row.cells)
            if len(preview) >= limit:
                break
    return preview


def sample_values(
    path: Path, dialect: Dialect, per_column: int = 5, scan_rows: int = 200
) -> list[list[str]]:
    """For each column, up to ``per_column`` distinct non-empty values (stripped, cut to 200
    characters) from the first ``scan_rows`` data rows."""
    columns = len(_header_cells(path, dialect))
    samples: list[list[str]] = [[] for _ in range(columns)]
    scanned = 0
    with closing(rows_read(path, dialect)) as rows:
        for row in rows:
            for index, cell in enumerate(row.cells[:columns]):
                value = _displayable(cell.strip())
                if not value or len(samples[index]) >= per_column:
                    continue
                if len(value) > SAMPLE_VALUE_MAX:
                    value = value[: SAMPLE_VALUE_MAX - 1] + "…"
                if value not in samples[index]:
                    samples[index].append(value)
            scanned += 1
            if scanned >= scan_rows:
                break
    return samples
