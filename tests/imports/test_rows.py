"""Typing rows a block at a time (imports.rows.BlockTyper) against the row-at-a-time reference
(``rows_typed``): the same COPY lines for any mix of rows, values and problems."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.custom_fields import CustomFieldSpec
from customers.profile import clean_user_id
from imports.digest import RowDigests, cells_of
from imports.rows import BlockTyper, columns_for, rows_typed

HEADERS = ["id", "Email", "Phone", "Name", "Country", "Plan", "Points", "Since", "VIP", "Skip"]
MAPPING = [
    "id",
    "email",
    "phone",
    "name",
    "country",
    "custom.plan",
    "custom.points",
    "custom.since",
    "custom.vip",
    "skip",
]
SPECS = {
    name: CustomFieldSpec(name, type_, name)
    for name, type_ in [
        ("plan", "text"),
        ("points", "number"),
        ("since", "date"),
        ("vip", "boolean"),
    ]
}
# Awkward values of every kind, valid for some columns and refused by others.
ANY = [
    "",
    " ",
    "not-an-address",
    "1e400",
    "2024-02-30",
    'say "hi"',
    "back\\slash",
    "tab\tin",
    "line\nbreak",
    "é ü 中",
    "\x00nul",
    "\udcff",
    "x" * 300,
]
# Values each column takes, so that most rows are plain and take the block path.
GOOD = [
    ["u1", " u2 ", "é-3", "A.b_c", "back\\\\slash"],
    ["", "ada@example.com", "Ada@Example.COM", " ben@x.io "],
    ["", "+4915123456789", "+1 512 555 0100", "+351912345678"],
    ["", "Ada", 'say "hi"', "back\\slash", "é ü 中", " padded "],
    ["", "de", "PT", "Fr"],
    ["", "pro", "back\\slash", 'q"uote', "é"],
    ["", "12", "3.50", "-0", "1000000"],
    ["", "2024-05-01", "1999-12-31T23:00:00+02:00"],
    ["", "yes", "No", "true", "0"],
    ["", "anything", "\x00"],
]


def _cell(good: list[str]) -> st.SearchStrategy[str]:
    return st.integers(0, 19).flatmap(lambda k: st.sampled_from(good if k else ANY))


ROWS = st.lists(
    st.tuples(
        st.one_of(
            st.tuples(*(_cell(good) for good in GOOD)).map(list),
            st.lists(st.sampled_from(ANY), min_size=len(HEADERS) - 1, max_size=len(HEADERS) + 1),
        ),
        st.sampled_from(["", "", "", "Row could not be read."]),
    ),
    max_size=40,
)


# A tiny memo fills up within a block: columns then clear it or stop keeping answers.
@pytest.mark.parametrize("memo_size", [None, 3])
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(blocks=st.lists(ROWS, min_size=1, max_size=3))
def test_a_block_at_a_time_gives_the_same_lines_as_a_row_at_a_time(memo_size, blocks):
    columns = columns_for(HEADERS, MAPPING, SPECS)
    typer = BlockTyper(7, len(HEADERS), columns)  # one typer across blocks, as staging uses it
    typer.memo_size = memo_size or typer.memo_size
    number = 1
    for block in blocks:
        rows = []
        for cells, problem in block:
            number += 1
            rows.append((number, [] if problem and len(cells) % 2 else cells, problem))
        expected = rows_typed(7, len(HEADERS), columns, rows)
        assert sorted(typer.text(rows).splitlines()) == sorted(expected.splitlines())


def _user_id(cell: str) -> str | None:
    try:
        return clean_user_id(cell)
    except ValueError:
        return None


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(blocks=st.lists(ROWS, min_size=1, max_size=3), data=st.data())
def test_rows_a_digest_vouches_for_are_staged_with_their_cells_and_the_rest_typed(blocks, data):
    columns = columns_for(HEADERS, MAPPING, SPECS)
    plain = RowDigests(b"key")
    numbered, number = [], 1
    for block in blocks:
        rows = []
        for cells, problem in block:
            number += 1
            rows.append((number, [] if problem and len(cells) % 2 else cells, problem))
        numbered.append(rows)
    marks = [plain.of(r[1]) for rows in numbered for r in rows if r[1]]
    known = data.draw(st.sets(st.sampled_from([m[0] for m in marks if m] or [0])))
    typer = BlockTyper(7, len(HEADERS), columns, RowDigests(b"key", array("q", sorted(known))))
    for rows in numbered:
        expected = []
        for row in rows:
            mark = plain.of(row[1])
            quick = not row[2] and len(row[1]) == len(HEADERS) and mark and mark[0] in known
            if quick and (user_id := _user_id(row[1][0])):
                expected.append(f"7\t{row[0]}\t{user_id}\t\\N\t\\N\t\\N\t\\N\t{mark[0]}\t{mark[1]}")
                assert cells_of(mark[1]) == row[1]
            else:
                expected += rows_typed(7, len(HEADERS), columns, [row], plain).splitlines()
        assert sorted(typer.text(rows).splitlines()) == sorted(expected)
