"""Reading an uploaded Do Not Contact file safely: .txt (one contact per line), .csv, .xlsx
(first sheet) or a .zip holding exactly one of those.

The type comes from the content, never the name alone: a PNG renamed .csv is an image. Every
archive (a .zip, and the zip container of an .xlsx) is checked before anything in it is read:
no encrypted entries, no entry names that could escape a directory, no archive inside, and
at most DNC_IMPORT_MAX_EXPANDED bytes once expanded, counted while decompressing (a zip
header's sizes are written by whoever made the file, so they are never trusted). XML in an
.xlsx is parsed by defusedxml (through openpyxl), which refuses entity declarations and
external references.

Memory stays bounded: CSV and text are streamed, the file taken out of a zip is copied to disk
in 1 MB pieces up to the limit, and openpyxl reads the sheet in read-only (streaming) mode.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings

from imports.reader import FileRejected, dialect_detect, size_text, store_bounded

__all__ = ["DataFile", "FileRejected", "file_prepare", "rows_iter", "rows_preview", "upload_store"]

COPY_CHUNK = 1024 * 1024
SAMPLE_BYTES = 64 * 1024
MAX_ZIP_ENTRIES = 1000
MAX_COLUMNS = 200
DATA_EXTENSIONS = (".txt", ".csv", ".xlsx")
ARCHIVE_EXTENSIONS = (
    ".zip", ".gz", ".tgz", ".7z", ".rar", ".tar", ".bz2", ".xz", ".zst", ".lz", ".cab",
    ".jar", ".xlsm", ".ods", ".docx", ".apk",
)  # fmt: skip
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"BM", "a BMP image"),
)
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document, not a CSV, text, Excel or zip file"),
    (b"\x1f\x8b", "a GZIP archive; only .zip archives are supported"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive; only .zip archives are supported"),
    (b"Rar!\x1a\x07", "a RAR archive; only .zip archives are supported"),
    (b"BZh", "a BZIP2 archive; only .zip archives are supported"),
    (b"\xfd7zXZ\x00", "an XZ archive; only .zip archives are supported"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an Excel 97–2003 workbook (.xls) or a password-protected workbook; save it as an"
        " unprotected .xlsx or as CSV",
    ),
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_IGNORED_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass
class DataFile:
    """The file whose rows are imported: the upload itself, or the one taken out of a zip."""

    kind: str  # "txt", "csv" or "xlsx"
    path: Path
    encoding: str = ""
    delimiter: str = ""
    inner_name: str = ""  # its name inside the zip
    ignored: list[str] = field(default_factory=list)  # other files in the zip, not read

    def as_options(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "data_path": str(self.path),
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "inner_name": self.inner_name,
            "ignored": self.ignored,
        }

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> DataFile:
        return cls(
            kind=options["kind"],
            path=Path(options["data_path"]),
            encoding=options.get("encoding", ""),
            delimiter=options.get("delimiter", ""),
            inner_name=options.get("inner_name", ""),
            ignored=list(options.get("ignored", [])),
        )


def _max_bytes() -> int:
    return int(settings.DNC_IMPORT_MAX_BYTES)


def _max_expanded() -> int:
    return int(settings.DNC_IMPORT_MAX_EXPANDED)


# --- storing the upload ----------------------------------------------------------------------


def upload_store(chunks: Iterable[bytes], dest: Path) -> int:
    """Copy the upload to ``dest``, stopping at DNC_IMPORT_MAX_BYTES; nothing is left behind
    when the file is refused."""
    return store_bounded(chunks, dest, max_bytes=_max_bytes(), too_big=too_big_message())


def too_big_message() -> str:
    return f"The file is too large; files can be at most {size_text(_max_bytes())}."


# --- recognising the file --------------------------------------------------------------------


def _sniff(head: bytes) -> str:
    """ "zip" or "text"; FileRejected for anything else we recognise."""
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    for magic, kind in _IMAGE_MAGIC:
        if head.startswith(magic) and (magic != b"BM" or _bmp_header(head)):
            raise FileRejected(
                f"This file is {kind}, not a CSV, text, Excel or zip file. Choose the file "
                "with the contacts."
            )
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        raise FileRejected("This file is a WebP image, not a CSV, text, Excel or zip file.")
    for magic, kind in _OTHER_MAGIC:
        if head.startswith(magic):
            raise FileRejected(f"This file is {kind}.")
    return "text"


def _bmp_header(head: bytes) -> bool:
    # "BM" alone could start a text line ("BMW@example.com"); a real BMP header has its file
    # size and a zero reserved field next.
    return len(head) >= 14 and head[6:10] == b"\x00\x00\x00\x00"


def _text_kind(name: str) -> str:
    return "txt" if name.lower().endswith(".txt") else "csv"


def _text_file(path: Path, name: str, inner_name: str = "", ignored: list[str] | None = None):
    try:
        dialect = dialect_detect(path)
    except FileRejected as exc:
        # imports' reader speaks of "a CSV file" only; say which kinds are accepted here.
        raise FileRejected(
            exc.message.replace("not a CSV file.", "not a CSV, text, Excel or zip file.")
        ) from None
    kind = _text_kind(name)
    return DataFile(
        kind=kind,
        path=path,
        encoding=dialect.encoding,
        delimiter=_delimiter_guess(path, dialect.encoding, dialect.delimiter)
        if kind == "csv"
        else "",
        inner_name=inner_name,
        ignored=ignored or [],
    )


def _delimiter_guess(path: Path, encoding: str, detected: str) -> str:
    """imports' detection judges by the first row, which here is often a title ("Exported
    by ...") above the header: pick the delimiter that splits most sample rows into the same
    number (> 1) of columns, keeping the detected one on a tie."""
    with open(path, "rb") as f:
        sample = f.read(SAMPLE_BYTES)
    text = sample.decode(encoding, errors="replace")
    if "\n" in text and len(sample) == SAMPLE_BYTES:
        text = text[: text.rindex("\n") + 1]

    def score(delimiter: str) -> tuple[int, bool]:
        widths: dict[int, int] = {}
        try:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            for number, cells in enumerate(reader):
                if number >= 50:
                    break
                if len(cells) > 1:
                    widths[len(cells)] = widths.get(len(cells), 0) + 1
        except csv.Error:
            pass
        return (max(widths.values(), default=0), delimiter == detected)

    return max((",", ";", "\t", "|"), key=score)


def file_prepare(path: Path, file_name: str, work_dir: Path) -> DataFile:
    """Recognise and check the stored upload at ``path``. A zip's data file is taken out to
    ``work_dir``. FileRejected, with the reason for the person uploading, when it can't be
    imported."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        raise FileRejected("The file is empty.")
    if _sniff(head) == "text":
        return _text_file(path, file_name)
    zf = _zip_open(path)
    with zf:
        if _is_xlsx(zf):
            _xlsx_check(zf)
            return DataFile(kind="xlsx", path=path)
        return _zip_extract(zf, work_dir)


# --- zip archives ----------------------------------------------------------------------------


def _zip_open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise FileRejected(
            "This zip file is damaged or incomplete and can't be opened. Create it again and "
            "upload it."
        ) from None


def _is_xlsx(zf: zipfile.ZipFile) -> bool:
    names = set(zf.namelist())
    return "[Content_Types].xml" in names and "xl/workbook.xml" in names


def _unsafe_name(name: str) -> bool:
    if "\\" in name or name.startswith("/") or "\x00" in name:
        return True
    if len(name) > 1 and name[1] == ":":  # a Windows drive, "C:..."
        return True
    return ".." in PurePosixPath(name).parts


def _entries_check(zf: zipfile.ZipFile, what: str) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise FileRejected(
            f"This {what} holds {len(infos):,} files; at most {MAX_ZIP_ENTRIES:,} are allowed."
        )
    for info in infos:
        if info.flag_bits & 0x1:
            raise FileRejected(
                f"This {what} is password-protected (encrypted). Upload it without a password."
            )
        if _unsafe_name(info.filename):
            raise FileRejected(
                f"This {what} holds a file named “{info.filename}”, which points outside the "
                "archive (.., an absolute path or a backslash). It was not opened."
            )
    return infos


def _expanded_too_big(what: str) -> FileRejected:
    return FileRejected(
        f"This {what} expands to more than {size_text(_max_expanded())} when unpacked, which "
        "is more than an import can take. Split it into smaller files."
    )


def _entry_read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, what: str):
    """The entry's bytes in pieces, raising once more than ``budget`` bytes came out."""
    total = 0
    try:
        with zf.open(info) as member:
            while chunk := member.read(COPY_CHUNK):
                total += len(chunk)
                if total > budget:
                    raise _expanded_too_big(what)
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError):
        # A bad CRC, corrupt deflate data, a truncated member or an unsupported compression.
        raise FileRejected(f"This {what} is damaged: “{info.filename}” can't be read.") from None


def _ignorable(name: str) -> bool:
    path = PurePosixPath(name)
    # "" and "." have no parts (and no name): nothing to read, not a reason for a 500.
    if not path.parts:
        return True
    return (
        path.parts[0] == "__MACOSX"
        or path.name in _IGNORED_NAMES
        or path.name.startswith("._")
        or path.suffix.lower() not in DATA_EXTENSIONS
    )


def _zip_extract(zf: zipfile.ZipFile, work_dir: Path) -> DataFile:
    infos = _entries_check(zf, "zip file")
    files = [i for i in infos if not i.is_dir()]
    nested = [
        i.filename
        for i in files
        if PurePosixPath(i.filename).suffix.lower() in ARCHIVE_EXTENSIONS
        and PurePosixPath(i.filename).parts[0] != "__MACOSX"
    ]
    if nested:
        raise FileRejected(
            f"This zip file holds another archive (“{nested[0]}”). Archives inside archives "
            "are not accepted; put the .txt, .csv or .xlsx file in the zip directly."
        )
    data = [i for i in files if not _ignorable(i.filename)]
    ignored = [i.filename for i in files if _ignorable(i.filename)]
    if not data:
        raise FileRejected("This zip file holds no .txt, .csv or .xlsx file.")
    if len(data) > 1:
        names = ", ".join(f"“{i.filename}”" for i in data[:5])
        raise FileRejected(
            f"This zip file holds {len(data)} files to import ({names}); it must hold exactly one."
        )
    info = data[0]
    suffix = PurePosixPath(info.filename).suffix.lower()
    work_dir.mkdir(parents=True, exist_ok=True)
    # Our own name, never the entry's: the entry name has been checked, but it is not needed.
    dest = work_dir / f"data{suffix}"
    try:
        with open(dest, "wb") as out:
            for chunk in _entry_read(zf, info, _max_expanded(), "zip file"):
                out.write(chunk)
        with open(dest, "rb") as f:
            head = f.read(64)
        if not head:
            raise FileRejected(f"“{info.filename}” in the zip file is empty.")
        if suffix == ".xlsx":
            inner = _zip_open(dest) if head.startswith(_ZIP_MAGIC) else None
            if inner is None:
                raise FileRejected(f"“{info.filename}” in the zip file is not an Excel workbook.")
            with inner:
                if not _is_xlsx(inner):
                    raise FileRejected(
                        f"“{info.filename}” in the zip file is an archive, not an Excel "
                        "workbook. Archives inside archives are not accepted."
                    )
                _xlsx_check(inner)
            return DataFile(kind="xlsx", path=dest, inner_name=info.filename, ignored=ignored)
        if head.startswith(_ZIP_MAGIC):
            raise FileRejected(
                f"“{info.filename}” in the zip file is itself an archive. Archives inside "
                "archives are not accepted."
            )
        _sniff(head)
        return _text_file(dest, info.filename, info.filename, ignored)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


# --- xlsx ------------------------------------------------------------------------------------


def _xlsx_check(zf: zipfile.ZipFile) -> None:
    """The workbook's container: the same encryption and name checks as a zip, and every part
    decompressed once (and thrown away) to count what it really expands to."""
    infos = _entries_check(zf, "workbook")
    budget = _max_expanded()
    for info in infos:
        if info.is_dir():
            continue
        for chunk in _entry_read(zf, info, budget, "workbook"):
            budget -= len(chunk)


def _defused() -> None:
    import openpyxl

    # openpyxl decides at import time whether to parse through defusedxml; refuse to read
    # workbooks at all without it rather than parse untrusted XML with entity expansion.
    if not getattr(openpyxl, "DEFUSEDXML", False):  # pragma: no cover - a broken install
        raise FileRejected("Excel files can't be read on this server (defusedxml is missing).")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        # Phone numbers typed into Excel become numbers: 441234567890.0 → "441234567890".
        return str(int(value))
    return str(value)


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    import openpyxl
    from defusedxml import DefusedXmlException

    _defused()
    # A file object, not the path: openpyxl refuses paths without an .xlsx extension, and the
    # upload is stored under a name of our own.
    source = open(path, "rb")  # noqa: SIM115 (closed in the finally below)
    try:
        workbook = openpyxl.load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:
        source.close()
        if _caused_by(exc, DefusedXmlException):
            raise FileRejected(_xml_trick_message()) from None
        raise FileRejected(
            "This Excel workbook can't be read; it may be damaged. Open it in Excel, save it "
            "as .xlsx again, or save it as CSV."
        ) from exc
    try:
        if not workbook.worksheets:
            raise FileRejected("This Excel workbook has no sheets.")
        sheet = workbook.worksheets[0]
        # Read-only mode trusts the sheet's <dimension ref>, which some writers get wrong
        # ("A1" for a whole sheet): rows and columns past it would be dropped silently.
        sheet.reset_dimensions()
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                cells = [_cell_text(v) for v in values[:MAX_COLUMNS]]
                while cells and cells[-1] == "":
                    cells.pop()
                yield number, cells
        except FileRejected:
            raise
        except Exception as exc:
            if _caused_by(exc, DefusedXmlException):
                raise FileRejected(_xml_trick_message()) from None
            raise FileRejected(
                "The first sheet of this Excel workbook can't be read; it may be damaged."
            ) from exc
    finally:
        workbook.close()
        source.close()


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """openpyxl wraps parse errors in ValueError; look down the chain."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _xml_trick_message() -> str:
    return (
        "This Excel workbook contains XML entity declarations or external references, which "
        "are not allowed (they can be used to attack the server). Save the data as a new "
        "workbook or as CSV."
    )


# --- rows ------------------------------------------------------------------------------------


def _text_stream(data: DataFile) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        open(data.path, "rb"),  # noqa: SIM115 (closed with the wrapper)
        encoding=data.encoding or "utf-8",
        errors="replace",
        newline="" if data.kind == "csv" else None,
    )


def _txt_rows(data: DataFile) -> Iterator[tuple[int, list[str]]]:
    with _text_stream(data) as stream:
        for number, line in enumerate(stream, start=1):
            line = line.strip().lstrip("\ufeff")
            yield number, [line] if line else []


def _csv_rows(data: DataFile) -> Iterator[tuple[int, list[str]]]:
    csv.field_size_limit(int(getattr(settings, "IMPORTS_MAX_FIELD_BYTES", 1_048_576)))
    with _text_stream(data) as stream:
        reader = csv.reader(stream, delimiter=data.delimiter or ",", quotechar='"')
        number = 0
        try:
            for cells in reader:
                number += 1
                if number == 1 and cells:
                    cells[0] = cells[0].lstrip("\ufeff")
                yield number, cells[:MAX_COLUMNS]
        except csv.Error as exc:
            raise FileRejected(
                f"Row {number + 1} can't be read ({exc}). Check that its quotes are balanced."
            ) from None


def rows_iter(data: DataFile) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every row of the file, row 1 first, streamed. Row numbers are
    those a spreadsheet shows (a CSV record spanning several lines is one row)."""
    if data.kind == "xlsx":
        return _xlsx_rows(data.path)
    if data.kind == "txt":
        return _txt_rows(data)
    return _csv_rows(data)


def rows_preview(data: DataFile, start: int = 1, limit: int = 10) -> list[tuple[int, list[str]]]:
    """Up to ``limit`` non-empty rows from row ``start`` on, for the mapping step."""
    rows: list[tuple[int, list[str]]] = []
    with closing(rows_iter(data)) as it:
        for number, cells in it:
            if number < start or not any(c.strip() for c in cells):
                continue
            rows.append((number, [c[:200] for c in cells]))
            if len(rows) >= limit:
                break
    return rows
