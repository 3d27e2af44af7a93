"""Custom field reads for the Configuration screen: the live fields, one field by id, and per
field how many customers hold a value and which values are most common."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from customers.custom_fields import display_custom_value
from customers.models import Customer, CustomField, CustomFieldType

STATS_TTL = 60  # seconds; each computation is a scan of the customer table
TOP_VALUES = 5


def custom_fields_live() -> QuerySet[CustomField]:
    """Fields not deleted; deleted ones wait for the purge job and are never listed."""
    return CustomField.objects.filter(deleted_at__isnull=True).select_related("created_by")


def custom_field_get(pk: int) -> CustomField:
    """A live field or 404 (a deleted one is gone as far as members are concerned)."""
    return get_object_or_404(custom_fields_live(), pk=pk)


def custom_field_holders(field: CustomField) -> int:
    """How many customers hold a value for the field (exact; a table scan)."""
    return Customer.objects.filter(custom__has_key=field.name).count()


@dataclass(frozen=True)
class TopValue:
    value: str  # as shown on a page
    customers: int


@dataclass(frozen=True)
class CustomFieldStats:
    holders: int
    top: list[TopValue]


# Text fields may hold several comma-separated values; each counts separately, once per
# customer (the inner DISTINCT is per row, so it costs no global sort). The field name is a
# parameter, never part of the SQL text.
_TOP_TEXT_SQL = f"""
    SELECT s.v, count(*) AS n
    FROM {Customer._meta.db_table} c
    CROSS JOIN LATERAL (
        SELECT DISTINCT btrim(part) AS v
        FROM regexp_split_to_table(c.custom ->> %s, ',') AS part
    ) s
    WHERE c.custom ? %s AND s.v <> ''
    GROUP BY s.v
    ORDER BY n DESC, s.v
    LIMIT %s
"""  # noqa: S608 (the table name comes from the model)

_TOP_TYPED_SQL = f"""
    SELECT (c.custom -> %s)::text AS v, count(*) AS n
    FROM {Customer._meta.db_table} c
    WHERE c.custom ? %s AND jsonb_typeof(c.custom -> %s) <> 'null'
    GROUP BY 1
    ORDER BY n DESC, 1
    LIMIT %s
"""  # noqa: S608 (the table name comes from the model)


def _top_values(field: CustomField) -> list[TopValue]:
    with connection.cursor() as cursor:
        if field.type == CustomFieldType.TEXT:
            cursor.execute(_TOP_TEXT_SQL, [field.name, field.name, TOP_VALUES])
        else:
            cursor.execute(_TOP_TYPED_SQL, [field.name, field.name, field.name, TOP_VALUES])
        rows: list[tuple[Any, int]] = cursor.fetchall()
    if field.type != CustomFieldType.TEXT:
        # Typed values come back as JSON text (cast above, whatever loaders are registered).
        rows = [(json.loads(value), n) for value, n in rows]
    return [TopValue(display_custom_value(field.type, value), n) for value, n in rows]


def _stats_key(field: CustomField) -> str:
    return f"custom-field-stats:{field.pk}:{field.name}"


def custom_field_stats(field: CustomField) -> CustomFieldStats:
    """Holders and top values, cached for STATS_TTL seconds: at a million customers each
    figure is a table scan, and the list page asks for every field at once."""

    def compute() -> CustomFieldStats:
        return CustomFieldStats(custom_field_holders(field), _top_values(field))

    return cache.get_or_set(_stats_key(field), compute, STATS_TTL)


def custom_field_stats_forget(field: CustomField) -> None:
    cache.delete(_stats_key(field))
