"""The shapes the customer and custom field endpoints accept and answer.

Customer bodies are free JSON objects validated by ``customers.profile.profile_clean`` (the
validator the form and the import use), so the customer request models here only describe the
shape for the OpenAPI document (``body_doc``); they never validate. Small bodies (a label, a
type) are validated against the strict models at the end.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field, create_model

from customers.profile import (
    ANALYTICS_FIELDS,
    MAX_CUSTOM_KEYS,
    MAX_DEVICE_TOKENS,
    MAX_TAGS_PER_WRITE,
    STANDARD_FIELDS,
    USER_ID_MAX,
)

BULK_MAX = 1000


# --- OpenAPI documentation of free-form bodies ------------------------------------------------


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace "#/$defs/..." references by their definitions: a schema placed inline in an
    operation cannot point at its own $defs (references resolve against the document root)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


def body_doc(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON body the endpoint reads itself."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": _inline_refs(model.model_json_schema())}},
        }
    }


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceTokenDoc(_Doc):
    token: str = Field(max_length=4096)
    platform: Literal["ios", "android"]


def _standard_field_docs() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, spec in STANDARD_FIELDS.items():
        kind: Any = Literal["live", "test"] if name == "user_type" else str
        fields[name] = (kind | None, Field(None, description=spec.label))
    return fields


_customer_fields: dict[str, Any] = {
    **_standard_field_docs(),
    "custom": (
        dict[str, Any] | None,
        Field(
            None,
            description=f"Custom field name → value (at most {MAX_CUSTOM_KEYS}); null or an "
            "empty string removes a value. Names must exist (GET /custom-fields).",
        ),
    ),
    "tags": (
        list[str] | None,
        Field(
            None,
            max_length=MAX_TAGS_PER_WRITE,
            description="Tag names to add (created when missing); existing tags stay.",
        ),
    ),
    "device_tokens": (
        list[DeviceTokenDoc] | None,
        Field(None, max_length=MAX_DEVICE_TOKENS, description="Replaces the list."),
    ),
}

CustomerIn = create_model(
    "CustomerIn",
    __base__=_Doc,
    __doc__="Only the keys given change. Unknown and read-only keys are refused (422).",
    **_customer_fields,
)

CustomerBulkItem = create_model(
    "CustomerBulkItem",
    __base__=_Doc,
    user_id=(str, Field(max_length=USER_ID_MAX)),
    **_customer_fields,
)


class CustomerBulkIn(_Doc):
    customers: list[CustomerBulkItem] = Field(max_length=BULK_MAX)  # type: ignore[valid-type]


class TagNamesIn(_Doc):
    tags: list[str] = Field(max_length=MAX_TAGS_PER_WRITE)


# --- Responses ----------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str
    errors: list[dict[str, str]] = []


CustomerAnalyticsOut = create_model(
    "CustomerAnalyticsOut",
    __base__=Schema,
    **{
        name: ((datetime | None, None) if is_datetime else (str, ""))
        for name, _, is_datetime in ANALYTICS_FIELDS
    },
)


class CustomerOut(Schema):
    id: int
    user_id: str
    name: str
    first_name: str
    last_name: str
    email: str
    phone: str
    city: str
    country: str
    region: str
    timezone: str
    external_id: str
    user_type: str
    custom: dict[str, Any]
    tags: list[str]
    device_tokens: list[dict[str, str]]
    analytics: CustomerAnalyticsOut  # type: ignore[valid-type]
    created_at: datetime
    updated_at: datetime


class CustomerPageOut(Schema):
    customers: list[CustomerOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class FieldErrorOut(Schema):
    field: str
    message: str


class BulkResultOut(Schema):
    index: int
    user_id: str | None
    status: Literal["created", "updated", "error"]
    errors: list[FieldErrorOut] = []


class BulkOut(Schema):
    results: list[BulkResultOut]
    created: int
    updated: int
    failed: int


class CustomerTagOut(Schema):
    id: int
    name: str
    added_at: datetime
    source: str


class CustomerTagsOut(Schema):
    tags: list[CustomerTagOut]


# --- Custom fields ------------------------------------------------------------------------


class CustomFieldIn(_Doc):
    label: str = Field(max_length=100)
    type: Literal["text", "date", "number", "boolean"]


class CustomFieldRenameIn(_Doc):
    label: str = Field(max_length=100)


class CustomFieldOut(Schema):
    name: str
    label: str
    type: str
    created_at: datetime


class CustomFieldListOut(Schema):
    custom_fields: list[CustomFieldOut]
