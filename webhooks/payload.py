"""What a delivery's body holds, built in SQL by the relay and the hand-over so a batch of
thousands of items is one statement.

Every body has one shape::

    {"type": "segment-entered" | "segment-exited" | "customers-sent" | "webhook-test",
     "timestamp": "<when the delivery was created, ISO 8601>",
     "data": [<item>, ...]}

A segment item: ``{"id": <transition id>, "event": "segment-entered", "segment": {"id", "name"},
"user_id", "occurred_at", "profile": {...}}``; a customers-sent item: ``{"user_id",
"profile": {...}}``. ``profile`` holds only the fields the endpoint chose (null when the
customer has since been erased).

The profile field names come from PROFILE_FIELDS (a fixed registry) and custom field names
are passed as bound parameters: nothing an Admin typed becomes SQL.
"""

from __future__ import annotations

from customers.models import CustomField

# Field name -> label. The names are customers_customer columns.
PROFILE_FIELDS: dict[str, str] = {
    "name": "Name",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "E-mail",
    "phone": "Phone",
    "city": "City",
    "country": "Country",
    "region": "Region",
    "timezone": "Timezone",
    "external_id": "External ID",
    "user_type": "User type",
    "created_at": "Created",
    "first_seen": "First seen",
    "last_seen": "Last seen",
}
CUSTOM_PREFIX = "custom."
# The chosen custom fields of customer {alias}, as a jsonb object.
_CUSTOM_SQL = (
    "COALESCE((SELECT jsonb_object_agg(k, v) FROM jsonb_each({alias}.custom) AS e(k, v)"
    " WHERE k = ANY(%s::text[])), '{{}}'::jsonb)"
)


def profile_field_choices() -> list[tuple[str, str]]:
    """Every field an endpoint may add, standard ones first."""
    custom = CustomField.objects.filter(deleted_at__isnull=True).order_by("label")
    return [*PROFILE_FIELDS.items(), *((f.key, f"{f.label} (custom)") for f in custom)]


def profile_sql(fields: list[str], alias: str = "c") -> tuple[str, list]:
    """A jsonb expression with the chosen fields of customer ``alias`` (NULL when the
    customer row is missing)."""
    standard = [f for f in fields if f in PROFILE_FIELDS]
    custom = [f.removeprefix(CUSTOM_PREFIX) for f in fields if f.startswith(CUSTOM_PREFIX)]
    parts, params = [], []
    if standard:
        pairs = ", ".join(f"'{name}', {alias}.{name}" for name in standard)
        parts.append(f"jsonb_build_object({pairs})")
    if custom:
        parts.append(_CUSTOM_SQL.format(alias=alias))
        params.append(custom)
    expression = " || ".join(parts) if parts else "'{}'::jsonb"
    return f"CASE WHEN {alias}.id IS NULL THEN NULL ELSE {expression} END", params
