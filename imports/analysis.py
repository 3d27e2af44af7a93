"""What the wizard shows about a file before anything is written: the first rows, and per
column the sample values and how many of the first rows the chosen target would refuse."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from customers.custom_fields import CustomFieldSpec, custom_field_specs
from customers.models import CustomFieldType
from customers.profile import STANDARD_FIELDS
from imports.models import Import
from imports.pipeline import import_file
from imports.reader import Dialect, preview_rows
from imports.rows import MappingInvalid, columns_for

SCAN_ROWS = 200

NEW_FIELD_TYPES = [
    (f"new.{value}", f"New custom field ({label.lower()})")
    for value, label in CustomFieldType.choices
]


def target_choices(custom: dict[str, CustomFieldSpec]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The mapping dropdown, grouped."""
    return [
        ("", [("skip", "Skip this column"), ("id", "User ID (id) — required")]),
        ("Profile fields", [(name, f.label) for name, f in STANDARD_FIELDS.items()]),
        (
            "Custom fields",
            [(f"custom.{s.name}", s.label or s.name) for s in custom.values()],
        ),
        ("Create", NEW_FIELD_TYPES),
    ]


@dataclass
class ColumnInfo:
    index: int
    header: str
    target: str
    samples: list[str] = field(default_factory=list)
    checked: int = 0
    problems: int = 0
    first_problem: str = ""


class FileAnalysis:
    def __init__(self, imp: Import, custom: dict[str, CustomFieldSpec] | None = None) -> None:
        self.imp = imp
        self.custom = custom_field_specs() if custom is None else custom

    @cached_property
    def rows(self) -> list[list[str]]:
        dialect = Dialect(self.imp.encoding, self.imp.delimiter)
        return preview_rows(import_file(self.imp), dialect, limit=SCAN_ROWS)

    @property
    def preview(self) -> list[list[str]]:
        return self.rows[:5]

    def column(self, index: int, target: str) -> ColumnInfo:
        info = ColumnInfo(index, self.imp.headers[index], target)
        values = [r[index] for r in self.rows if index < len(r) and r[index].strip()]
        info.samples = list(dict.fromkeys(values))[:5]
        if target == "skip":
            return info
        # Check the values as the import will: one mapped column at a time, so another
        # column's mapping problem does not hide this one's. A new field is checked by its type.
        specs = self.custom
        if target.startswith("new."):
            specs = {**specs, "": CustomFieldSpec("", target[4:])}
            target = "custom."
        headers, mapping = [info.header], [target]
        if target != "id":
            headers, mapping = [*headers, ""], [*mapping, "id"]
        try:
            columns = columns_for(headers, mapping, specs)
        except MappingInvalid as exc:
            info.first_problem = str(exc)
            return info
        clean = next(c for c in columns if c.index == 0).clean
        for value in (
            values if target != "id" else [r[index] if index < len(r) else "" for r in self.rows]
        ):
            info.checked += 1
            try:
                clean(value)
            except ValueError as exc:
                info.problems += 1
                message = str(exc)
                if value[:60] not in message:  # most messages quote the value themselves
                    message = f"“{value[:60]}”: {message}"
                info.first_problem = info.first_problem or message
        return info

    def columns(self, mapping: list[str]) -> list[ColumnInfo]:
        return [self.column(i, t) for i, t in enumerate(mapping)]
