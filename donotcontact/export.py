"""The Do Not Contact list as CSV or XLSX: the entries of a selection or of the list's filter,
read in keyset batches on the id (one query per batch, never the whole set in memory), every
cell formula-escaped (customers.export.escape_cell): a sender, reason or note is typed by
anyone, and even a valid e-mail address may start with "=" ("=cmd@example.com"). Phone numbers
are the exception: E.164 is "+" and digits only, which no spreadsheet runs as a formula, so they
are written as stored and read back through the import unchanged.

The columns read back through the import: the channel is its label ("WhatsApp") and an empty
cell means every channel, as the import reads it."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import IO

from django.db.models import QuerySet

from customers.export import EXPORT_BATCH, csv_lines, escape_cell
from donotcontact.models import Channel, Entry, Source
from exports.writers import write_xlsx

HEADER = [
    "contact",
    "channel",
    "sender",
    "account",
    "source",
    "reason",
    "note",
    "added_at",
    "added_by",
]
# Excel's sheet limit, less the header row.
XLSX_MAX_ROWS = 1_048_575
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# The columns read per row: the id for the keyset, then one per header (the author by e-mail).
_FIELDS = ("id", *HEADER[:-1], "added_by__email")
_E164 = re.compile(r"\+\d+")
_CHANNEL_LABELS = dict(Channel.choices)
_SOURCE_LABELS = dict(Source.choices)


def entry_rows(qs: QuerySet[Entry], *, batch: int = EXPORT_BATCH) -> Iterator[list[str]]:
    """Formula-escaped text rows, in id order."""
    after = 0
    while True:
        rows = list(qs.filter(pk__gt=after).order_by("pk").values_list(*_FIELDS)[:batch])
        for _pk, contact, channel, sender, account, source, reason, note, added, by in rows:
            yield [
                contact if _E164.fullmatch(contact) else escape_cell(contact),
                *(
                    escape_cell(value)
                    for value in (
                        _CHANNEL_LABELS.get(channel, channel),
                        sender,
                        account,
                        _SOURCE_LABELS.get(source, source),
                        reason,
                        note,
                        added.isoformat(),
                        by or "",
                    )
                ),
            ]
        if len(rows) < batch:
            return
        after = rows[-1][0]


def entries_csv(qs: QuerySet[Entry]) -> Iterator[str]:
    return csv_lines(HEADER, entry_rows(qs))


def entries_xlsx(qs: QuerySet[Entry]) -> IO[bytes]:
    """The workbook in a temporary file (rewound; the caller closes it). Write-only mode streams
    rows to disk, so memory stays bounded."""
    fh = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    write_xlsx(fh, HEADER, entry_rows(qs), title="Do Not Contact")
    fh.seek(0)
    return fh
