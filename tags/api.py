"""Tags over the REST API: list with customer counts, create, rename, delete, merge. Any role
reads; writes need a Marketer. Names are unique regardless of case; a clash answers 409."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest
from ninja import Path, Query, Router, Status
from ninja.errors import HttpError

from activity.services import Actor
from customers.schemas import ErrorOut, body_doc
from members.roles import Role
from tags.models import Tag
from tags.schemas import TAG_ID_MAX, TagIn, TagListOut, TagMergeIn, TagMergeOut, TagOut
from tags.services import TagInvalid, tag_create, tag_delete, tag_merge, tag_name_clean, tag_rename
from workbench.api import Conflict, Invalid, require_role
from workbench.api_input import json_body, parse_as, query_text

router = Router(tags=["tags"])

_WRITE_ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 413: ErrorOut, 422: ErrorOut}
_TagId = Path(..., ge=1, le=TAG_ID_MAX)


def _with_counts() -> QuerySet[Tag]:
    # Meta.ordering does not apply to aggregating queries, hence the explicit order.
    return Tag.objects.annotate(customer_count=Count("customer_tags")).order_by(Lower("name"), "pk")


def _out(tag: Tag, count: int | None = None) -> dict[str, Any]:
    return {
        "id": tag.pk,
        "name": tag.name,
        "customers": count if count is not None else tag.customer_count,  # type: ignore[attr-defined]
        "created_at": tag.created_at,
    }


def _tag_or_404(tag_id: int) -> Tag:
    tag = _with_counts().filter(pk=tag_id).first()
    if tag is None:
        raise HttpError(404, "No tag with this id.")
    return tag


def _name(raw: str) -> str:
    """The normalised name, or 422. A TagInvalid from the service after this passed can only
    mean the name is taken, which is a conflict rather than bad input."""
    try:
        return tag_name_clean(raw)
    except TagInvalid as exc:
        raise Invalid([{"field": "name", "message": str(exc)}]) from None


@router.get("/tags", response={200: TagListOut, 422: ErrorOut}, summary="List tags")
def tag_list(
    request: HttpRequest,
    q: str | None = Query(None, max_length=100, description="Names containing this."),  # noqa: B008
) -> dict[str, Any]:
    tags = _with_counts()
    if q := (query_text(q, "q") or "").strip():
        tags = tags.filter(name__icontains=q)
    return {"tags": [_out(t) for t in tags]}


@router.post(
    "/tags",
    response={201: TagOut, 409: ErrorOut, **_WRITE_ERRORS},
    summary="Create a tag",
    openapi_extra=body_doc(TagIn),
)
def tag_post(request: HttpRequest) -> Status[dict[str, Any]]:
    require_role(request, Role.MARKETER)
    name = _name(parse_as(TagIn, json_body(request)).name)
    try:
        tag = tag_create(name=name, actor=Actor.for_request(request))
    except TagInvalid as exc:
        raise Conflict(str(exc)) from None
    return Status(201, _out(tag, 0))


@router.get("/tags/{tag_id}", response={200: TagOut, 404: ErrorOut, 422: ErrorOut})
def tag_get(request: HttpRequest, tag_id: int = _TagId) -> dict[str, Any]:
    return _out(_tag_or_404(tag_id))


@router.patch(
    "/tags/{tag_id}",
    response={200: TagOut, 409: ErrorOut, **_WRITE_ERRORS},
    summary="Rename a tag",
    openapi_extra=body_doc(TagIn),
)
def tag_patch(request: HttpRequest, tag_id: int = _TagId) -> dict[str, Any]:
    require_role(request, Role.MARKETER)
    tag = _tag_or_404(tag_id)
    name = _name(parse_as(TagIn, json_body(request)).name)
    try:
        tag_rename(tag=tag, name=name, actor=Actor.for_request(request))
    except TagInvalid as exc:
        raise Conflict(str(exc)) from None
    return _out(tag)


@router.delete(
    "/tags/{tag_id}",
    response={204: None, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Delete a tag",
    description="Removes the tag from every customer who has it.",
)
def tag_remove(request: HttpRequest, tag_id: int = _TagId) -> Status[None]:
    require_role(request, Role.MARKETER)
    tag_delete(tag=_tag_or_404(tag_id), actor=Actor.for_request(request))
    return Status(204, None)


@router.post(
    "/tags/{tag_id}/merge",
    response={200: TagMergeOut, **_WRITE_ERRORS},
    summary="Merge a tag into another",
    description="Moves every assignment onto the tag `into` (a customer with both keeps the "
    "older assignment) and deletes this tag.",
    openapi_extra=body_doc(TagMergeIn),
)
def tag_merge_post(request: HttpRequest, tag_id: int = _TagId) -> dict[str, Any]:
    require_role(request, Role.MARKETER)
    source = _tag_or_404(tag_id)
    payload = parse_as(TagMergeIn, json_body(request))
    target = Tag.objects.filter(pk=payload.into).first()
    if target is None:
        raise Invalid([{"field": "into", "message": "No tag with this id."}])
    try:
        moved = tag_merge(source=source, target=target, actor=Actor.for_request(request))
    except TagInvalid as exc:
        raise Invalid([{"field": "into", "message": str(exc)}]) from None
    return {"tag": _out(_tag_or_404(target.pk)), "moved": moved}
