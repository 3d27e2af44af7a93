"""Turning a file row into a staged row: the user ID, typed standard and custom values, or the
reasons the row cannot be imported. The same validators as the form and the API
(customers/profile.py, customers/custom_fields.py), read leniently as text.

An empty cell means "no value given": it leaves the customer's value as it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from customers.custom_fields import CustomFieldSpec, coerce_custom_value
from customers.profile import STANDARD_FIELDS, clean_user_id

# A column's validator is called once per distinct value up to this many values; files repeat
# countries, time zones, plans and booleans, so most cells are a dictionary hit.
_MEMO_LIMIT = 50_000
_MEMO_SAMPLE = 1_000


class MappingInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    target: str  # "id", a standard field or "custom.<name>"
    clean: Callable[[str], Any]
    custom: str | None = None  # the custom field's name, for "custom.<name>" targets


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
        columns.append(Column(index, header, target, _memoised(clean), custom_name))
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


def copy_line(import_id: int, row_no: int, cells: Sequence[str], typed: StagedValues) -> str:
    """The staging row as one line of COPY text (faster than handing psycopg a tuple)."""
    if typed.errors:
        # Messages quote the cell, which may hold bytes or NUL that JSON in PostgreSQL refuses.
        errors = _copy_text(
            json.dumps([[c, _printable(m)] for c, m in typed.errors], ensure_ascii=False)
        )
        raw = _copy_text(json.dumps([_printable(c) for c in cells], ensure_ascii=False))
        user_id = _copy_text(_UNSAFE_IN_COPY.sub("\ufffd", typed.user_id))
        return f"{import_id}\t{row_no}\t{user_id}\t\\N\t\\N\t{errors}\t{raw}\n"
    vals = _copy_text(json.dumps(typed.vals, ensure_ascii=False))
    custom = _copy_text(json.dumps(typed.custom, ensure_ascii=False))
    return f"{import_id}\t{row_no}\t{_copy_text(typed.user_id)}\t{vals}\t{custom}\t\\N\t\\N\n"


def rows_typed(
    import_id: int, width: int, columns: Sequence[Column], rows: Sequence[tuple[int, list, str]]
) -> str:
    """A block of COPY text for (row number, cells, problem) rows."""
    return "".join(
        copy_line(import_id, number, cells, row_type(cells, width, columns, problem))
        for number, cells, problem in rows
    )
