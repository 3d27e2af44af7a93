"""The error report: one CSV line per problem (row number, column, reason, then the row's
original values), formula-escaped, streamed in keyset batches."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Q
from django.http import StreamingHttpResponse

from customers.export import csv_lines, escape_cell
from imports.models import Import, StagedRow

_BATCH = 2000


def _id_column(imp: Import) -> int | None:
    return imp.mapping.index("id") if "id" in imp.mapping else None


def report_lines(imp: Import) -> Iterator[list[str]]:
    """(row, column, reason, *original values) for every failed row, in file order."""
    rows = StagedRow.objects.filter(
        Q(errors__isnull=False) | Q(superseded_by__isnull=False), import_id=imp.pk
    ).order_by("row_no")
    id_column = _id_column(imp)
    after = 0
    while True:
        batch = list(rows.filter(row_no__gt=after)[:_BATCH])
        if not batch:
            return
        for row in batch:
            if row.errors:
                for column, reason in row.errors:
                    yield [str(row.row_no), column, reason, *(row.raw or [])]
            else:
                values = [""] * len(imp.headers)
                if id_column is not None:
                    values[id_column] = row.user_id
                yield [
                    str(row.row_no),
                    imp.headers[id_column] if id_column is not None else "id",
                    f"Duplicate user ID “{row.user_id}”: row {row.superseded_by} later in the "
                    "file was imported instead.",
                    *values,
                ]
        after = batch[-1].row_no


def report_csv(imp: Import) -> Iterator[str]:
    lines = ([escape_cell(cell) for cell in line] for line in report_lines(imp))
    return csv_lines(["row", "column", "reason", *imp.headers], lines)


def report_response(imp: Import) -> StreamingHttpResponse:
    """The report as a streamed CSV download (the importer page and the API)."""
    response = StreamingHttpResponse(report_csv(imp), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{imp.pk}-errors.csv"'
    return response
