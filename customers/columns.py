"""The Customers table's columns: standard, custom and analytics fields, chosen per member."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.formats import date_format

from customers.custom_fields import CustomFieldSpec, display_custom_value
from customers.models import Customer
from customers.profile import ANALYTICS_FIELDS, STANDARD_FIELDS

PREFERENCE_KEY = "customer_columns"
DEFAULT_COLUMNS = ["name", "email", "country", "user_type", "tags", "last_seen", "created_at"]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    group: str  # Profile, Custom fields, Analytics

    def value(self, customer: Customer, custom: dict[str, CustomFieldSpec]) -> str:
        if self.key.startswith("custom."):
            name = self.key.removeprefix("custom.")
            spec = custom.get(name)
            raw = customer.custom.get(name)
            return display_custom_value(spec.type, raw) if spec else ""
        if self.key == "tags":
            return ", ".join(t.name for t in getattr(customer, "tag_list", []))
        if self.key == "name":
            return customer.display_name if customer.display_name != customer.user_id else ""
        value: Any = getattr(customer, self.key)
        if isinstance(value, datetime):
            return date_format(timezone.localtime(value), "j M Y, H:i")
        if self.key == "user_type":
            return customer.get_user_type_display()
        return value or ""


def available_columns(custom: dict[str, CustomFieldSpec]) -> dict[str, Column]:
    columns = [Column(f.name, f.label, "Profile") for f in STANDARD_FIELDS.values()]
    columns += [
        Column("tags", "Tags", "Profile"),
        Column("created_at", "Created", "Profile"),
        Column("updated_at", "Updated", "Profile"),
    ]
    columns += [Column(f"custom.{s.name}", s.label, "Custom fields") for s in custom.values()]
    columns += [Column(name, label, "Analytics") for name, label, _ in ANALYTICS_FIELDS]
    return {c.key: c for c in columns}


def chosen_columns(member, available: dict[str, Column]) -> list[Column]:
    keys = member.preferences.get(PREFERENCE_KEY) or DEFAULT_COLUMNS
    return [available[k] for k in keys if k in available]


def columns_save(member, keys: list[str], available: dict[str, Column]) -> None:
    """Remember the member's choice (unknown keys dropped, order of the registry kept)."""
    wanted = set(keys)
    member.preferences[PREFERENCE_KEY] = [k for k in available if k in wanted] or DEFAULT_COLUMNS
    member.save(update_fields=["preferences"])
