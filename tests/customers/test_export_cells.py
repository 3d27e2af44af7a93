"""Export cells: formula escaping, also of a formula hidden behind characters an XLSX writer
has to drop."""

from __future__ import annotations

import pytest

from customers.export import escape_cell, xlsx_cell


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("plain", "plain"),
        ("=1+1", "'=1+1"),
        ("\x01=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("\x02\x03+1", "'+1"),
        ("\x01\t=1", "'\t=1"),
        ("bell\x07 here", "bell here"),
        ("+441234567890", "+441234567890"),  # written unescaped on purpose: stays so
        ("tab\tand\nline", "tab\tand\nline"),  # XML holds these
    ],
)
def test_xlsx_cell_escapes_after_dropping(value, cell):
    assert xlsx_cell(escape_cell(value) if value != "+441234567890" else value) == cell
