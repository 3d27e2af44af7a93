"""The field registry: every customer field a segment can filter on, with its type, its SQL
expression over the customers table (alias ``c``) and the operators its type allows.

Only fields listed here can be compiled. Standard and analytics columns are constants in this
module; a custom field's name is only ever a bound parameter (``c.custom->>%s``), never part of
the SQL text, and must name a live custom field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from customers.custom_fields import CustomFieldSpec, custom_field_specs
from customers.models import CustomFieldType, UserType
from customers.profile import ANALYTICS_FIELDS, STANDARD_FIELDS


class FieldType:
    TEXT = "text"
    MULTI_TEXT = "multi_text"  # a custom text field: may hold several comma-separated values
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    CHOICE = "choice"


COMMON_OPS = ("is", "is_not", "is_empty", "is_not_empty")
ORDER_OPS = ("lt", "lte", "gte", "gt")
TEXT_OPS = ("starts_with", "ends_with", "contains", "not_contains")
RELATIVE_DATE_OPS = (
    "will_be_in",
    "will_be_within",
    "will_be_more_than",
    "was",
    "was_within",
    "was_more_than",
)
ABSOLUTE_DATE_OPS = ("before", "until", "since", "after")

OPERATORS: dict[str, tuple[str, ...]] = {
    FieldType.TEXT: (*COMMON_OPS, *TEXT_OPS),
    FieldType.MULTI_TEXT: (*COMMON_OPS, *TEXT_OPS, "has_value"),
    FieldType.NUMBER: (*COMMON_OPS, *ORDER_OPS),
    FieldType.DATE: (*COMMON_OPS, *ORDER_OPS, *RELATIVE_DATE_OPS, *ABSOLUTE_DATE_OPS),
    FieldType.BOOLEAN: COMMON_OPS,
    FieldType.CHOICE: COMMON_OPS,
}

OPERATOR_LABELS: dict[str, str] = {
    "is": "is",
    "is_not": "is not",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "lt": "is less than",
    "lte": "is at most",
    "gte": "is at least",
    "gt": "is more than",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "contains": "contains",
    "not_contains": "does not contain",
    "has_value": "has the value",
    "will_be_in": "will be in",
    "will_be_within": "will be within",
    "will_be_more_than": "will be more than",
    "was": "was",
    "was_within": "was within",
    "was_more_than": "was more than",
    "before": "is before",
    "until": "is until",
    "since": "is since",
    "after": "is after",
}


class ChangeKind:
    """What changed about a customer; a segment re-evaluates only for kinds its rules read."""

    PROFILE = 1  # standard or custom profile fields
    TAGS = 2
    EVENTS = 4  # events, and the analytics fields ingest keeps
    CREATED = 8  # a new customer: every segment may now match
    MEMBERSHIP = 16  # another segment's membership (for "in segment" rules)
    DO_NOT_CONTACT = 32  # a Do Not Contact entry for the customer's e-mail or phone
    ALL = 63


@dataclass(frozen=True)
class Field:
    key: str  # the rule's "field": "city", "last_seen", "custom.plan"
    label: str
    type: str
    group: str  # profile | custom | analytics
    sql: str  # a typed SQL expression over alias c; NULL when the customer has no value
    params: tuple[Any, ...] = ()
    choices: tuple[tuple[str, str], ...] = ()
    change_kind: int = ChangeKind.PROFILE

    @property
    def operators(self) -> tuple[str, ...]:
        return OPERATORS[self.type]

    @property
    def custom_name(self) -> str | None:
        return self.key.removeprefix("custom.") if self.group == "custom" else None


def _text_column(name: str) -> str:
    # Standard text columns hold '' for "no value"; NULLIF makes empty mean NULL everywhere.
    return f"NULLIF(c.{name}, '')"


def _standard_fields() -> list[Field]:
    fields = [Field("user_id", "User ID", FieldType.TEXT, "profile", "c.user_id")]
    for name, spec in STANDARD_FIELDS.items():
        if name == "user_type":
            fields.append(
                Field(
                    name,
                    spec.label,
                    FieldType.CHOICE,
                    "profile",
                    _text_column(name),
                    choices=tuple(UserType.choices),
                )
            )
        else:
            fields.append(Field(name, spec.label, FieldType.TEXT, "profile", _text_column(name)))
    fields.append(Field("created_at", "Created", FieldType.DATE, "profile", "c.created_at"))
    fields.append(Field("updated_at", "Updated", FieldType.DATE, "profile", "c.updated_at"))
    for name, label, is_datetime in ANALYTICS_FIELDS:
        fields.append(
            Field(
                name,
                label,
                FieldType.DATE if is_datetime else FieldType.TEXT,
                "analytics",
                f"c.{name}" if is_datetime else _text_column(name),
                change_kind=ChangeKind.EVENTS,
            )
        )
    return fields


STATIC_FIELDS: dict[str, Field] = {f.key: f for f in _standard_fields()}


# The typed expression of each custom field type. The same strings are used by the expression
# indexes in segments/indexes.py, so the planner can match them. A value of the wrong JSON type
# (never written by our validators, but possible in principle) reads as NULL instead of failing.
CUSTOM_SQL: dict[str, tuple[str, str]] = {
    CustomFieldType.TEXT: (FieldType.MULTI_TEXT, "NULLIF(c.custom->>%s, '')"),
    CustomFieldType.NUMBER: (
        FieldType.NUMBER,
        "(CASE WHEN jsonb_typeof(c.custom->%s) = 'number' THEN (c.custom->>%s)::numeric END)",
    ),
    # Dates are stored as fixed-width ISO-8601 UTC text ("2024-05-01T00:00:00Z"), so byte order
    # is time order: they are compared as text in the "C" collation, which an index can serve.
    CustomFieldType.DATE: (
        FieldType.DATE,
        "(CASE WHEN jsonb_typeof(c.custom->%s) = 'string' THEN c.custom->>%s END) COLLATE \"C\"",
    ),
    CustomFieldType.BOOLEAN: (
        FieldType.BOOLEAN,
        "(CASE WHEN jsonb_typeof(c.custom->%s) = 'boolean' THEN (c.custom->>%s)::boolean END)",
    ),
}


def custom_field(spec: CustomFieldSpec) -> Field:
    field_type, sql = CUSTOM_SQL[spec.type]
    return Field(
        f"custom.{spec.name}",
        spec.label or spec.name,
        field_type,
        "custom",
        sql,
        params=(spec.name,) * sql.count("%s"),
    )


@dataclass
class Registry:
    """The fields a rule may name, for one evaluation (custom fields read once)."""

    fields: dict[str, Field] = field(default_factory=dict)

    @classmethod
    def load(cls, specs: dict[str, CustomFieldSpec] | None = None) -> Registry:
        specs = custom_field_specs() if specs is None else specs
        fields = dict(STATIC_FIELDS)
        for spec in specs.values():
            f = custom_field(spec)
            fields[f.key] = f
        return cls(fields)

    def get(self, key: str) -> Field | None:
        return self.fields.get(key)

    def by_group(self) -> dict[str, list[Field]]:
        groups: dict[str, list[Field]] = {"profile": [], "custom": [], "analytics": []}
        for f in self.fields.values():
            groups[f.group].append(f)
        return groups
