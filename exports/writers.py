"""Writing export rows (already formula-escaped text, customers/export.py) as CSV or XLSX.
Both write row by row: memory stays bounded whatever the number of rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import IO

from openpyxl import Workbook

from customers.export import xlsx_cell
from exports.models import ExportFormat

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def write_csv(fh: IO[bytes], header: list[str], rows: Iterable[list[str]]) -> None:
    # utf-8 without a BOM, like the streamed export: the same bytes either way.
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(rows)
    finally:
        text.flush()
        text.detach()  # the caller owns (and closes) the binary file


def write_xlsx(
    fh: IO[bytes], header: list[str], rows: Iterable[list[str]], *, title: str = "Customers"
) -> None:
    """One sheet named ``title``, every cell a string. Write-only mode streams rows to a
    temporary file and writes strings inline (no shared-strings table growing with the
    export)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    sheet.append(header)
    for row in rows:
        # xlsx_cell drops what XML can't hold and escapes again what that uncovers: no cell
        # starts with "=", so openpyxl never takes one for a formula.
        sheet.append([xlsx_cell(v) for v in row])
    workbook.save(fh)


def write_export(fmt: str, fh: IO[bytes], header: list[str], rows: Iterable[list[str]]) -> None:
    if fmt == ExportFormat.XLSX:
        write_xlsx(fh, header, rows)
    else:
        write_csv(fh, header, rows)
