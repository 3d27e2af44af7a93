"""Custom field types: how a value is checked and stored in ``Customer.custom`` (JSONB).

Stored typed: text as a string (a text field may hold several comma-separated values), dates
as ISO-8601 UTC strings ("2024-05-01T00:00:00Z"), numbers as JSON numbers, booleans as JSON
booleans. ``None`` means "remove the value".
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from customers.models import CustomField, CustomFieldType

TEXT_MAX = 2000
NUMBER_LIMIT = 10**15
NAME_MAX = 63
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


@dataclass(frozen=True)
class CustomFieldSpec:
    name: str
    type: str
    label: str = ""


def custom_field_specs() -> dict[str, CustomFieldSpec]:
    """The live custom fields by name (one small query; there are at most a few hundred)."""
    return {
        f.name: CustomFieldSpec(f.name, f.type, f.label)
        for f in CustomField.objects.filter(deleted_at__isnull=True).only("name", "type", "label")
    }


def custom_field_name_for(label: str, taken: set[str]) -> str:
    """A stable identifier from a label: lower-case ASCII, digits and underscores, starting
    with a letter, unique among ``taken`` (suffix _2, _3, ...)."""
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "_", ascii_label.lower()).strip("_") or "field"
    if not base[0].isalpha():
        base = f"f_{base}"
    base = base[: NAME_MAX - 4].rstrip("_")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day(value: str) -> date:
    """The day a stripped "YYYY-MM-DD" names, or ValueError."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"“{value}” is not a date; there is no such day.") from None


def _parse_datetime(value: str) -> datetime:
    value = value.strip()
    if _DAY.fullmatch(value):
        return datetime.combine(_day(value), datetime.min.time(), tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"“{value}” is not a date; use ISO-8601, e.g. 2024-05-01 or 2024-05-01T09:30:00Z."
        ) from None
    if parsed.tzinfo is None:  # no offset given: the value is UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_date_value(moment: datetime) -> str:
    # isoformat, not strftime: strftime writes year 999 as "999", which does not parse back.
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def coerce_custom_value(field_type: str, value: Any, *, lenient: bool = False) -> Any:
    """The stored form of ``value`` for a field of ``field_type``, or ValueError with the
    reason. ``lenient`` accepts text spellings (forms, CSV): "3.5", "yes", "2024-05-01"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if field_type == CustomFieldType.TEXT:
        if not isinstance(value, str):
            if lenient and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            else:
                raise ValueError("Must be text.")
        value = value.strip()
        if "\x00" in value:
            raise ValueError("Must not contain NUL characters.")
        if len(value) > TEXT_MAX:
            raise ValueError(f"At most {TEXT_MAX} characters (got {len(value)}).")
        return value
    if field_type == CustomFieldType.NUMBER:
        if lenient and isinstance(value, str):
            plain = value.strip()
            if plain.isascii() and plain.isdigit() and len(plain) <= 15:
                return int(plain)  # the common spelling, without Decimal (imports check millions)
        if isinstance(value, bool):
            raise ValueError("Must be a number, not true/false.")
        if isinstance(value, str) and lenient:
            try:
                value = Decimal(value.strip().replace(" ", ""))
            except InvalidOperation:
                raise ValueError(f"“{value}” is not a number.") from None
            value = int(value) if value == value.to_integral_value() else float(value)
        if not isinstance(value, (int, float)):
            raise ValueError("Must be a number.")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("Must be a finite number.")
        # Beyond this, JSON readers (JavaScript among them) lose digits.
        if abs(value) >= NUMBER_LIMIT:
            raise ValueError("Must be between -10^15 and 10^15.")
        return value
    if field_type == CustomFieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if lenient and isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ValueError(f"“{value}” is not yes/no; use true or false.")
        raise ValueError("Must be true or false.")
    if field_type == CustomFieldType.DATE:
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        elif isinstance(value, date):
            moment = datetime.combine(value, datetime.min.time(), tzinfo=UTC)
        elif isinstance(value, str):
            day = value.strip()
            if _DAY.fullmatch(day):  # a plain day is stored as its midnight in UTC
                _day(day)
                return f"{day}T00:00:00Z"
            moment = _parse_datetime(value)
        else:
            raise ValueError("Must be an ISO-8601 date string.")
        if not 1 <= moment.year <= 9999:
            raise ValueError("The year must be between 1 and 9999.")
        return format_date_value(moment)
    raise ValueError(f"Unknown field type {field_type!r}.")


def display_custom_value(field_type: str, value: Any) -> str:
    """How a stored value reads on a page."""
    if value is None:
        return ""
    if field_type == CustomFieldType.BOOLEAN:
        return "Yes" if value else "No"
    if field_type == CustomFieldType.DATE and isinstance(value, str):
        return value[:10] if value.endswith("T00:00:00Z") else value.replace("T", " ")
    return str(value)
