"""Turning a file row into a staged row: the user ID, typed standard and custom values, or the
reasons the row cannot be imported. The same validators as the form and the API
(customers/profile.py, customers/custom_fields.py), read leniently as text.

An empty cell means "no value given": it leaves the customer's value as it is.
"""

from __future__ import annotations

import json
import json.encoder
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from customers.custom_fields import CustomFieldSpec, coerce_custom_value
from customers.profile import STANDARD_FIELDS, clean_user_id
from imports.digest import RowDigests

# A column's validator is called once per distinct value up to this many values; files repeat
# countries, time zones, plans and booleans, so most cells are a dictionary hit.
_MEMO_LIMIT = 50_000
_MEMO_SAMPLE = 1_000
# BlockTyper's answers kept across blocks, shared among a file's columns (~150 bytes each).
_BLOCK_MEMO_TOTAL = 200_000
_BLOCK_MEMO_MIN = 4_000


class MappingInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    target: str  # "id", a standard field or "custom.<name>"
    clean: Callable[[str], Any]  # memoised, for one value at a time
    custom: str | None = None  # the custom field's name, for "custom.<name>" targets
    check: Callable[[str], Any] | None = None  # the same check without the memo


def _memoised(clean: Callable[[str], Any]) -> Callable[[str], Any]:
    """``clean`` with a cache of answers. A column whose values rarely repeat (e-mail
    addresses, user IDs) stops caching after a sample: there a miss costs more than it saves."""
    seen: dict[str, tuple[bool, Any]] = {}
    caching, misses = True, 0

    def run(value: str) -> Any:
        nonlocal caching, misses
        hit = seen.get(value)
        if hit is None:
            try:
                hit = (True, clean(value))
            except ValueError as exc:
                hit = (False, str(exc))
            if caching:
                misses += 1
                if len(seen) >= _MEMO_LIMIT or misses == _MEMO_SAMPLE and len(seen) > misses // 2:
                    caching = False
                    seen.clear()
                else:
                    seen[value] = hit
        if hit[0]:
            return hit[1]
        raise ValueError(hit[1])

    return run


def _custom_cleaner(spec: CustomFieldSpec) -> Callable[[str], Any]:
    return lambda value: coerce_custom_value(spec.type, value, lenient=True)


def columns_for(
    headers: Sequence[str], mapping: Sequence[str], custom: Mapping[str, CustomFieldSpec]
) -> list[Column]:
    """The mapped columns; MappingInvalid when the mapping does not fit the file."""
    if len(mapping) != len(headers):
        raise MappingInvalid(
            f"The mapping has {len(mapping)} entries; the file has {len(headers)} columns."
        )
    columns: list[Column] = []
    seen: dict[str, str] = {}
    for index, (header, target) in enumerate(zip(headers, mapping, strict=True)):
        if target == "skip":
            continue
        if target in seen:
            raise MappingInvalid(
                f"“{header}” and “{seen[target]}” are both mapped to {target}; map one of them "
                "to something else or skip it."
            )
        seen[target] = header
        if target == "id":
            clean = clean_user_id
        elif target in STANDARD_FIELDS:
            clean = STANDARD_FIELDS[target].clean
        elif target.startswith("custom.") and target[7:] in custom:
            clean = _custom_cleaner(custom[target[7:]])
        else:
            raise MappingInvalid(f"Column “{header}”: {target!r} is not a field of this workspace.")
        custom_name = target[7:] if target.startswith("custom.") else None
        columns.append(Column(index, header, target, _memoised(clean), custom_name, clean))
    if "id" not in seen:
        raise MappingInvalid("Map one column to the user ID (id); it is required.")
    return columns


@dataclass
class StagedValues:
    user_id: str
    vals: dict[str, Any]
    custom: dict[str, Any]
    errors: list[list[str]]


def row_type(
    cells: Sequence[str], width: int, columns: Sequence[Column], problem: str = ""
) -> StagedValues:
    """Validate one row's cells. Every problem is reported, each naming its column."""
    vals: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    errors: list[list[str]] = [["", problem]] if problem else []
    user_id = ""
    if problem and not cells:  # the row could not be read at all; its reason says it all
        return StagedValues(user_id, vals, custom, errors)
    if len(cells) != width:
        errors.append(["", f"Expected {width} values, found {len(cells)}."])
    for column in columns:
        value = cells[column.index] if column.index < len(cells) else ""
        if column.target == "id":
            try:
                user_id = column.clean(value)
            except ValueError as exc:
                errors.append([column.header, str(exc)])
            continue
        if not value or value.isspace():
            continue
        try:
            typed = column.clean(value)
        except ValueError as exc:
            errors.append([column.header, str(exc)])
            continue
        name = column.custom
        if name is None:
            vals[column.target] = typed
        elif typed is not None:
            custom[name] = typed
    return StagedValues(user_id, vals, custom, errors)


_json_string = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring
_UNPRINTABLE = re.compile("[\udc00-\udfff\x00]")
# A user ID of a failed row goes into a text column as it was: no NUL, tab or line breaks.
_UNSAFE_IN_COPY = re.compile("[\udc00-\udfff\x00\t\n\r]")


def _printable(cell: str) -> str:
    # Undecodable bytes (kept as surrogates by the reader) and NUL cannot be stored in JSON in
    # PostgreSQL; the report shows them as U+FFFD.
    return _UNPRINTABLE.sub("\ufffd", cell)


def _copy_text(value: str) -> str:
    # COPY's text format: backslash is the escape character. JSON never holds a raw tab or
    # newline (it escapes them), and user IDs refuse control characters, so only it matters.
    return value.replace("\\", "\\\\")


def _digest_text(digest: int | None) -> str:
    return "\\N" if digest is None else str(digest)


def copy_line(
    import_id: int, row_no: int, cells: Sequence[str], typed: StagedValues, digest: int | None
) -> str:
    """The staging row as one line of COPY text (faster than handing psycopg a tuple)."""
    if typed.errors:
        # Messages quote the cell, which may hold bytes or NUL that JSON in PostgreSQL refuses.
        errors = _copy_text(
            json.dumps([[c, _printable(m)] for c, m in typed.errors], ensure_ascii=False)
        )
        raw = _copy_text(json.dumps([_printable(c) for c in cells], ensure_ascii=False))
        user_id = _copy_text(_UNSAFE_IN_COPY.sub("\ufffd", typed.user_id))
        return f"{import_id}\t{row_no}\t{user_id}\t\\N\t\\N\t{errors}\t{raw}\t\\N\t\\N\n"
    vals = _copy_text(json.dumps(typed.vals, ensure_ascii=False))
    custom = _copy_text(json.dumps(typed.custom, ensure_ascii=False))
    user_id = _copy_text(typed.user_id)
    digest_text = _digest_text(digest)
    return f"{import_id}\t{row_no}\t{user_id}\t{vals}\t{custom}\t\\N\t\\N\t{digest_text}\t\\N\n"


def _json_value(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False)``, quicker for the common types."""
    if type(value) is str:
        return _json_string(value)
    if value is True or value is False or value is None:
        return "true" if value else "false" if value is False else "null"
    if type(value) is int:
        return str(value)
    return json.dumps(value, ensure_ascii=False)


class _Failed:
    """A cell's check failed (the row is then typed again by ``row_type`` for its messages)."""


_FAILED = _Failed()


class BlockTyper:
    """Turns blocks of rows into COPY text column by column: each distinct value of a column
    is checked once and becomes a ready-made JSON member (``"city": "Lisbon"``), so a row is
    a join of strings rather than a loop over its cells. Rows that are not plain (a problem, a
    wrong number of values, a cell that fails) go through ``row_type`` one by one, so their
    messages are exactly the same; the text of the others is what ``copy_line`` makes.

    With ``digests``, rows whose digest a customer carries are not checked at all: their line
    holds the user ID, the digest and the cells (imports/digest.py).

    A column's answers are kept from block to block up to its share of ``_BLOCK_MEMO_TOTAL``
    answers: a column of a few values (countries, plans, booleans) or of a few thousand
    (amounts, points, birthdays) soon finds nearly every cell there. A column whose share
    fills up while most of its values are still new (e-mail addresses, user IDs) stops keeping
    answers; it costs a dictionary insert a cell and saves nothing."""

    def __init__(
        self,
        import_id: int,
        width: int,
        columns: Sequence[Column],
        digests: RowDigests | None = None,
    ) -> None:
        self.import_id = import_id
        self.digests = digests
        self.width = width
        self.columns = list(columns)
        self.user_id = next(c for c in self.columns if c.target == "id")
        self.vals = [c for c in self.columns if c.target != "id" and c.custom is None]
        self.custom = [c for c in self.columns if c.custom is not None]
        self.memos: dict[int, dict[str, Any]] = {c.index: {} for c in self.columns}
        self.memo_size = max(_BLOCK_MEMO_MIN, _BLOCK_MEMO_TOTAL // len(self.columns))
        self.unmemoised: set[int] = set()
        self.refused: dict[int, set[str]] = {c.index: set() for c in self.columns}  # in memos
        self.keys = {
            c.index: _copy_text(json.dumps(c.custom or c.target, ensure_ascii=False)) + ": "
            for c in self.columns
        }

    def _answer(self, column: Column, value: str) -> Any:
        """The user ID, or a JSON member ("" when the cell gives no value), or _FAILED."""
        if column is not self.user_id and (not value or value.isspace()):
            return ""
        try:
            typed = column.check(value)
        except ValueError:
            return _FAILED
        if column is self.user_id:
            return _copy_text(typed)
        if column.custom is not None and typed is None:
            return ""
        return self.keys[column.index] + _copy_text(_json_value(typed))

    def _answers(self, column: Column, cells: tuple[str, ...], failed: set[int]) -> list:
        """The column's answer for each cell; adds the rows whose cell failed to ``failed``."""
        if column.index in self.unmemoised:
            answers = [self._answer(column, value) for value in cells]
            if _FAILED in answers:
                failed.update(i for i, answer in enumerate(answers) if answer is _FAILED)
            return answers
        memo, refused = self.memos[column.index], self.refused[column.index]
        distinct = set(cells)
        new = distinct.difference(memo)
        for value in new:
            answer = memo[value] = self._answer(column, value)
            if answer is _FAILED:
                refused.add(value)
        answers = list(map(memo.__getitem__, cells))
        if not refused.isdisjoint(distinct):
            failed.update(i for i, answer in enumerate(answers) if answer is _FAILED)
        if len(memo) > self.memo_size:
            if len(new) > len(distinct) // 2:  # still mostly new values: they rarely repeat
                self.unmemoised.add(column.index)
            memo.clear()
            refused.clear()
        return answers

    def _objects(self, answers: list[list], count: int, failed: set[int]) -> list[str]:
        if not answers:
            return ["{}"] * count
        return [
            "" if i in failed else "{" + ", ".join(filter(None, row)) + "}"
            for i, row in enumerate(zip(*answers, strict=True))
        ]

    def text(self, rows: Sequence[tuple[int, list, str]]) -> str:
        """A block of COPY text for (row number, cells, problem) rows."""
        width, digests = self.width, self.digests
        plain = [row for row in rows if not row[2] and len(row[1]) == width]
        others = [row for row in rows if row[2] or len(row[1]) != width]
        marks = [digests.of(row[1]) for row in plain] if digests else [None] * len(plain)
        lines: list[str] = []
        if digests and digests.known:
            lines, plain, marks = self._quick_lines(plain, marks, others)
        lines += self._typed_lines(plain, marks, others)
        lines.append(rows_typed(self.import_id, width, self.columns, others, digests))
        return "".join(lines)

    def _quick_lines(self, plain: list, marks: list, others: list) -> tuple[list, list, list]:
        """The lines of the rows a customer's digest vouches for (the user ID, the digest and
        the cells), and the rows and marks left to type."""
        is_known, check = self.digests.is_known, self.user_id.check
        index, imp = self.user_id.index, self.import_id
        lines, rest, rest_marks = [], [], []
        for row, mark in zip(plain, marks, strict=True):
            if mark is None or not is_known(mark[0]):
                rest.append(row)
                rest_marks.append(mark)
                continue
            try:
                user_id = check(row[1][index])
            except ValueError:
                others.append(row)
                continue
            lines.append(f"{imp}\t{row[0]}\t{user_id}\t\\N\t\\N\t\\N\t\\N\t{mark[0]}\t{mark[1]}\n")
        return lines, rest, rest_marks

    def _typed_lines(self, plain: list, marks: list, others: list) -> list[str]:
        """Plain rows checked and typed column by column; rows with a cell that fails go to
        ``others``."""
        by_column = list(zip(*(row[1] for row in plain), strict=True)) or [()] * self.width
        failed: set[int] = set()
        user_ids = self._answers(self.user_id, by_column[self.user_id.index], failed)
        vals = [self._answers(c, by_column[c.index], failed) for c in self.vals]
        custom = [self._answers(c, by_column[c.index], failed) for c in self.custom]
        vals_json = self._objects(vals, len(plain), failed)
        custom_json = self._objects(custom, len(plain), failed)
        imp = self.import_id
        lines = [
            f"{imp}\t{row[0]}\t{user_ids[i]}\t{vals_json[i]}\t{custom_json[i]}\t\\N\t\\N"
            f"\t{_digest_text(marks[i] and marks[i][0])}\t\\N\n"
            for i, row in enumerate(plain)
            if i not in failed
        ]
        others += [row for i, row in enumerate(plain) if i in failed]
        return lines


def rows_typed(
    import_id: int,
    width: int,
    columns: Sequence[Column],
    rows: Sequence[tuple[int, list, str]],
    digests: RowDigests | None = None,
) -> str:
    """A block of COPY text for (row number, cells, problem) rows, one row at a time (the
    reference for ``BlockTyper``)."""
    lines = []
    for number, cells, problem in rows:
        typed = row_type(cells, width, columns, problem)
        mark = digests.of(cells) if digests and not typed.errors else None
        lines.append(copy_line(import_id, number, cells, typed, mark and mark[0]))
    return "".join(lines)
