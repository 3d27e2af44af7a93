"""Customers over the REST API: create-or-update by user ID, bulk upsert, read, list, erase,
and a customer's tags.

Bodies are read here (``json_body``) and validated by ``profile_clean``, so the API refuses
exactly what the form and the import refuse, with the same messages. Roles are checked before a
body is looked at: a Viewer learns nothing about the validity of a write it may not make.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.db.models import Exists, OuterRef
from django.db.models.functions import Lower
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.errors import HttpError

from activity.services import Actor
from customers.custom_fields import CustomFieldSpec, custom_field_specs
from customers.models import Customer
from customers.profile import (
    ANALYTICS_FIELDS,
    STANDARD_FIELDS,
    FieldError,
    ProfileInvalid,
    clean_user_id,
    profile_clean,
)
from customers.schemas import (
    BULK_MAX,
    BulkOut,
    CustomerBulkIn,
    CustomerIn,
    CustomerOut,
    CustomerPageOut,
    CustomerTagsOut,
    ErrorOut,
    TagNamesIn,
    body_doc,
)
from customers.services import customer_erase
from customers.upsert import UpsertItem, customers_upsert
from members.roles import Role
from tags.models import CustomerTag
from tags.selectors import tags_named
from tags.services import TagInvalid, customer_tags_add, customer_tags_remove
from workbench.api import Invalid, cursor_decode, cursor_encode, require_role
from workbench.api_input import as_utc, json_body, query_text

router = Router(tags=["customers"])

PAGE_DEFAULT = 100
PAGE_MAX = 1000
_CURSOR_PREFIX = "c1:"

_WRITE_ERRORS: dict[int, Any] = {403: ErrorOut, 413: ErrorOut, 422: ErrorOut}


def field_errors(errors: list[FieldError]) -> list[dict[str, str]]:
    return [e.as_dict() for e in errors]


# --- Customers ------------------------------------------------------------------------------


def _user_id(value: str) -> str:
    try:
        return clean_user_id(value)
    except ValueError as exc:
        raise Invalid([{"field": "user_id", "message": str(exc)}]) from None


def customer_or_404(user_id: str) -> Customer:
    customer = Customer.objects.filter(user_id=_user_id(user_id)).first()
    if customer is None:
        raise HttpError(404, "No customer with this user ID.")
    return customer


def _tag_names(customer_ids: list[int]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {pk: [] for pk in customer_ids}
    rows = (
        CustomerTag.objects.filter(customer_id__in=customer_ids)
        .order_by(Lower("tag__name"))
        .values_list("customer_id", "tag__name")
    )
    for customer_id, name in rows:
        names[customer_id].append(name)
    return names


def customer_json(customer: Customer, tags: list[str]) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "user_id": customer.user_id,
        **{name: getattr(customer, name) for name in STANDARD_FIELDS},
        "custom": customer.custom,
        "tags": tags,
        "device_tokens": customer.device_tokens,
        "analytics": {name: getattr(customer, name) for name, _, _ in ANALYTICS_FIELDS},
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }


def _one(customer: Customer) -> dict[str, Any]:
    return customer_json(customer, _tag_names([customer.pk])[customer.pk])


def _bulk_item(
    item: Any, specs: dict[str, CustomFieldSpec]
) -> tuple[str | None, list[dict[str, str]], UpsertItem | None]:
    """One bulk item's user ID (when valid), its errors, and what to upsert when it has none."""
    if not isinstance(item, dict):
        return None, [{"field": "customer", "message": "Must be a JSON object."}], None
    fields = dict(item)
    user_id: str | None = None
    errors: list[FieldError] = []
    try:
        if (raw := fields.pop("user_id", None)) is None:
            raise ValueError("A user ID is required.")
        user_id = clean_user_id(raw)
    except ValueError as exc:
        errors.append(FieldError("user_id", str(exc)))
    try:
        profile = profile_clean(fields, specs)
    except ProfileInvalid as exc:
        errors.extend(exc.errors)
    if errors or user_id is None:
        return user_id, field_errors(errors), None
    return user_id, [], UpsertItem(user_id, profile)


# Registered before /customers/{user_id}: Django resolves URL patterns in order, and the
# other pattern would otherwise take "bulk" for a user ID.
@router.post(
    "/customers/bulk",
    response={200: BulkOut, **_WRITE_ERRORS},
    summary=f"Create or update up to {BULK_MAX} customers",
    description="Each item is validated on its own and answered with its own status and errors; "
    "the valid items are stored even when others fail. Items with the same user ID apply in "
    "order.",
    openapi_extra=body_doc(CustomerBulkIn),
)
def customers_bulk(request: HttpRequest) -> dict[str, Any]:
    require_role(request, Role.MARKETER)
    body = json_body(request)
    if unknown := [key for key in body if key != "customers"]:
        raise Invalid([{"field": key, "message": "Unknown field."} for key in unknown])
    items = body.get("customers")
    if not isinstance(items, list):
        raise Invalid([{"field": "customers", "message": "Must be a list of customers."}])
    if len(items) > BULK_MAX:
        raise Invalid(
            [
                {
                    "field": "customers",
                    "message": f"At most {BULK_MAX} customers per request (got {len(items)}); "
                    "split the batch.",
                }
            ],
            detail=f"Too many customers in one request: the limit is {BULK_MAX}.",
        )

    specs = custom_field_specs()
    results: list[dict[str, Any]] = []
    valid: list[UpsertItem] = []
    for index, item in enumerate(items):
        user_id, errors, upsert = _bulk_item(item, specs)
        if upsert is None:
            results.append(
                {"index": index, "user_id": user_id, "status": "error", "errors": errors}
            )
            continue
        valid.append(upsert)
        results.append({"index": index, "user_id": user_id, "status": None, "errors": []})

    outcome = customers_upsert(valid, Actor.for_request(request)) if valid else {}
    # Items sharing a user ID ran in order: only the first can have created the customer.
    seen: set[str] = set()
    for result in results:
        if result["status"] is None:
            uid = result["user_id"]
            created = outcome[uid].created and uid not in seen
            result["status"] = "created" if created else "updated"
            seen.add(uid)
    statuses = [r["status"] for r in results]
    return {
        "results": results,
        "created": statuses.count("created"),
        "updated": statuses.count("updated"),
        "failed": statuses.count("error"),
    }


@router.put(
    "/customers/{user_id}",
    response={200: CustomerOut, 201: CustomerOut, **_WRITE_ERRORS},
    summary="Create or update a customer",
    description="Partial: only the keys given change. `custom` sets custom field values, "
    "`tags` adds tags. 201 when the customer was created, 200 when updated.",
    openapi_extra=body_doc(CustomerIn, required=False),
)
def customer_put(request: HttpRequest, user_id: str) -> Status[dict[str, Any]]:
    require_role(request, Role.MARKETER)
    user_id = _user_id(user_id)
    try:
        profile = profile_clean(json_body(request, allow_empty=True), custom_field_specs())
    except ProfileInvalid as exc:
        raise Invalid(field_errors(exc.errors)) from None
    result = customers_upsert([UpsertItem(user_id, profile)], Actor.for_request(request))
    customer = Customer.objects.get(pk=result[user_id].id)
    return Status(201 if result[user_id].created else 200, _one(customer))


@router.get(
    "/customers/{user_id}",
    response={200: CustomerOut, 404: ErrorOut, 422: ErrorOut},
    summary="One customer",
)
def customer_get(request: HttpRequest, user_id: str) -> dict[str, Any]:
    return _one(customer_or_404(user_id))


@router.delete(
    "/customers/{user_id}",
    response={204: None, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Erase a customer",
    description="Deletes the profile with its tags, events and segment memberships. The "
    "activity log keeps an entry without personal data.",
)
def customer_delete(request: HttpRequest, user_id: str) -> Status[None]:
    require_role(request, Role.MARKETER)
    customer_erase(customer=customer_or_404(user_id), actor=Actor.for_request(request))
    return Status(204, None)


# Django takes "/customers/bulk" for the bulk pattern registered above, so a customer whose
# user ID is "bulk" is reached through these undocumented twins of the three operations.
@router.put(
    "/customers/bulk", response={200: CustomerOut, 201: CustomerOut}, include_in_schema=False
)
def customer_put_bulk_id(request: HttpRequest) -> Status[dict[str, Any]]:
    return customer_put(request, "bulk")


@router.get("/customers/bulk", response=CustomerOut, include_in_schema=False)
def customer_get_bulk_id(request: HttpRequest) -> dict[str, Any]:
    return customer_get(request, "bulk")


@router.delete("/customers/bulk", response={204: None}, include_in_schema=False)
def customer_delete_bulk_id(request: HttpRequest) -> Status[None]:
    return customer_delete(request, "bulk")


@router.get(
    "/customers",
    response={200: CustomerPageOut, 422: ErrorOut},
    summary="List customers",
    description="Oldest first, keyset-paginated: pass the answer's `next_cursor` as `cursor` "
    "for the next page.",
)
def customer_list(
    request: HttpRequest,
    limit: int = Query(PAGE_DEFAULT, ge=1, le=PAGE_MAX),  # noqa: B008
    cursor: str | None = Query(None, max_length=64),  # noqa: B008
    tag: str | None = Query(None, description="Only customers with this tag (name)."),  # noqa: B008
    user_type: Literal["live", "test"] | None = None,
    updated_since: datetime | None = Query(  # noqa: B008
        None, description="Only customers updated at or after this time (ISO-8601)."
    ),
) -> dict[str, Any]:
    qs = Customer.objects.order_by("pk")
    if cursor:
        qs = qs.filter(pk__gt=cursor_decode(_CURSOR_PREFIX, cursor))
    if tag := query_text(tag, "tag"):
        tag_ids = tags_named([tag])
        qs = qs.filter(
            Exists(
                CustomerTag.objects.filter(
                    customer_id=OuterRef("pk"), tag_id__in=tag_ids.values("pk")
                )
            )
        )
    if user_type:
        qs = qs.filter(user_type=user_type)
    if updated_since:
        qs = qs.filter(updated_at__gte=as_utc(updated_since))
    rows = list(qs[: limit + 1])
    page = rows[:limit]
    tags = _tag_names([c.pk for c in page])
    return {
        "customers": [customer_json(c, tags[c.pk]) for c in page],
        "next_cursor": cursor_encode(_CURSOR_PREFIX, page[-1].pk) if len(rows) > limit else None,
    }


# --- A customer's tags --------------------------------------------------------------------


def _customer_tags(customer: Customer) -> dict[str, Any]:
    rows = (
        CustomerTag.objects.filter(customer=customer)
        .select_related("tag")
        .order_by(Lower("tag__name"))
    )
    return {
        "tags": [
            {"id": ct.tag_id, "name": ct.tag.name, "added_at": ct.added_at, "source": ct.source}
            for ct in rows
        ]
    }


def _tag_names_in(value: Any) -> list[str]:
    """Tag names checked as a customer write checks them (profile_clean's ``tags``)."""
    try:
        return profile_clean({"tags": value}, {}).tags
    except ProfileInvalid as exc:
        raise Invalid(field_errors(exc.errors)) from None


@router.get(
    "/customers/{user_id}/tags",
    response={200: CustomerTagsOut, 404: ErrorOut, 422: ErrorOut},
    summary="A customer's tags, with when and how each was added",
)
def customer_tags_get(request: HttpRequest, user_id: str) -> dict[str, Any]:
    return _customer_tags(customer_or_404(user_id))


@router.post(
    "/customers/{user_id}/tags",
    response={200: CustomerTagsOut, 404: ErrorOut, **_WRITE_ERRORS},
    summary="Add tags to a customer",
    description="Missing tags are created; tags the customer already has keep their time.",
    openapi_extra=body_doc(TagNamesIn),
)
def customer_tags_post(request: HttpRequest, user_id: str) -> dict[str, Any]:
    require_role(request, Role.MARKETER)
    customer = customer_or_404(user_id)
    body = json_body(request)
    if unknown := [key for key in body if key != "tags"]:
        raise Invalid([{"field": key, "message": "Unknown field."} for key in unknown])
    if "tags" not in body:
        raise Invalid([{"field": "tags", "message": "Give the tag names to add."}])
    names = _tag_names_in(body["tags"])
    try:
        customer_tags_add(customer=customer, names=names, actor=Actor.for_request(request))
    except TagInvalid as exc:
        raise Invalid([{"field": "tags", "message": str(exc)}]) from None
    return _customer_tags(customer)


@router.delete(
    "/customers/{user_id}/tags",
    response={200: CustomerTagsOut, 404: ErrorOut, **_WRITE_ERRORS},
    summary="Remove tags from a customer",
    description='Name the tags in the body (`{"tags": [...]}`) or, for clients that cannot '
    "send a body with DELETE, as `?tag=a&tag=b`. Names the customer does not have are ignored. "
    "Answers the tags that remain.",
    openapi_extra=body_doc(TagNamesIn, required=False),
)
def customer_tags_delete(
    request: HttpRequest,
    user_id: str,
    tag: list[str] | None = Query(None, description="A tag name to remove; repeatable."),  # noqa: B008
) -> dict[str, Any]:
    require_role(request, Role.MARKETER)
    customer = customer_or_404(user_id)
    body = json_body(request, allow_empty=True)
    if unknown := [key for key in body if key != "tags"]:
        raise Invalid([{"field": key, "message": "Unknown field."} for key in unknown])
    wanted: list[str] = []
    if "tags" in body:
        wanted += _tag_names_in(body["tags"])
    if tag:
        wanted += _tag_names_in(tag)
    if not wanted:
        raise Invalid([{"field": "tags", "message": "Give the tag names to remove."}])
    tags = list(tags_named(wanted))
    customer_tags_remove(customer=customer, tags=tags, actor=Actor.for_request(request))
    return _customer_tags(customer)
