"""Custom fields over the REST API. Any role reads; only an Admin creates, renames or deletes,
as in the UI. A field's name is generated from its first label and never changes, so it is the
key in the path and in customers' ``custom`` objects."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from ninja import Router, Status
from ninja.errors import HttpError

from activity.services import Actor
from customers.models import CustomField
from customers.schemas import (
    CustomFieldIn,
    CustomFieldListOut,
    CustomFieldOut,
    CustomFieldRenameIn,
    ErrorOut,
    body_doc,
)
from customers.services import (
    CustomFieldInvalid,
    custom_field_create,
    custom_field_delete,
    custom_field_rename,
)
from members.roles import Role
from workbench.api import Invalid, require_role
from workbench.api_input import json_body, parse_as

router = Router(tags=["custom fields"])

# The shape custom_field_name_for generates; anything else cannot name a field, and checking
# first keeps NUL characters and the like away from the database.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")

_WRITE_ERRORS: dict[int, Any] = {403: ErrorOut, 413: ErrorOut, 422: ErrorOut}


def _out(field: CustomField) -> dict[str, Any]:
    return {
        "name": field.name,
        "label": field.label,
        "type": field.type,
        "created_at": field.created_at,
    }


def _field_or_404(name: str) -> CustomField:
    field = (
        CustomField.objects.filter(name=name, deleted_at__isnull=True).first()
        if _NAME.fullmatch(name)
        else None
    )
    if field is None:
        raise HttpError(404, "No custom field with this name.")
    return field


def _invalid(exc: CustomFieldInvalid) -> Invalid:
    # The type was checked by the schema, so what the service refuses is the label (empty,
    # too long, or taken by another field).
    return Invalid([{"field": "label", "message": str(exc)}])


@router.get("/custom-fields", response=CustomFieldListOut, summary="List custom fields")
def custom_field_list(request: HttpRequest) -> dict[str, Any]:
    fields = CustomField.objects.filter(deleted_at__isnull=True).order_by("label")
    return {"custom_fields": [_out(f) for f in fields]}


@router.post(
    "/custom-fields",
    response={201: CustomFieldOut, **_WRITE_ERRORS},
    summary="Create a custom field (Admin)",
    description="Answers the field with its generated `name`, the key to use in a customer's "
    "`custom` object.",
    openapi_extra=body_doc(CustomFieldIn),
)
def custom_field_post(request: HttpRequest) -> Status[dict[str, Any]]:
    require_role(request, Role.ADMIN)
    payload = parse_as(CustomFieldIn, json_body(request))
    try:
        field = custom_field_create(
            label=payload.label, type=payload.type, actor=Actor.for_request(request)
        )
    except CustomFieldInvalid as exc:
        raise _invalid(exc) from None
    return Status(201, _out(field))


@router.get(
    "/custom-fields/{name}",
    response={200: CustomFieldOut, 404: ErrorOut},
    summary="One custom field",
)
def custom_field_get(request: HttpRequest, name: str) -> dict[str, Any]:
    return _out(_field_or_404(name))


@router.patch(
    "/custom-fields/{name}",
    response={200: CustomFieldOut, 404: ErrorOut, **_WRITE_ERRORS},
    summary="Rename a custom field (Admin)",
    description="Changes the label only; the name stays.",
    openapi_extra=body_doc(CustomFieldRenameIn),
)
def custom_field_patch(request: HttpRequest, name: str) -> dict[str, Any]:
    require_role(request, Role.ADMIN)
    field = _field_or_404(name)
    payload = parse_as(CustomFieldRenameIn, json_body(request))
    try:
        custom_field_rename(field=field, label=payload.label, actor=Actor.for_request(request))
    except CustomFieldInvalid as exc:
        raise _invalid(exc) from None
    return _out(field)


@router.delete(
    "/custom-fields/{name}",
    response={204: None, 403: ErrorOut, 404: ErrorOut},
    summary="Delete a custom field (Admin)",
    description="The field disappears at once; its values are removed from every customer in "
    "the background.",
)
def custom_field_remove(request: HttpRequest, name: str) -> Status[None]:
    require_role(request, Role.ADMIN)
    custom_field_delete(field=_field_or_404(name), actor=Actor.for_request(request))
    return Status(204, None)
