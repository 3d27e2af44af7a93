"""Segments over the REST API: create, list, read, edit, duplicate, delete, members, preview,
a customer's segments and the explanation of one customer's membership.

Any role reads (preview included: it stores nothing); writes need a Marketer, checked before
the body is read. Rule problems answer 422 with one error per problem, each naming its node
twice: ``node`` as segments/rules.py names it ("children[1].time") and ``field`` as a path in
the request body ("rules.children[1].time"). A name another segment has answers 409, as a tag
name clash does.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

from django.http import HttpRequest
from ninja import Path, Query, Router, Status
from ninja.errors import HttpError

from activity.services import Actor
from customers.api import customer_or_404
from customers.schemas import ErrorOut, body_doc
from members.roles import Role
from segments import query
from segments.explain import explain
from segments.models import Segment
from segments.rules import RulesInvalid
from segments.schemas import (
    MEMBERS_MAX,
    SEGMENT_ID_MAX,
    SORT_DESCRIPTION,
    CustomerSegmentsOut,
    ExplainOut,
    MembersPageOut,
    PreviewIn,
    PreviewOut,
    SegmentIn,
    SegmentInUseOut,
    SegmentListOut,
    SegmentOut,
    SegmentPatchIn,
)
from segments.selectors import (
    MEMBERS_PAGE,
    SEGMENT_SORTS,
    customer_segments,
    decode_cursor,
    segment_list,
    segment_members,
    used_by,
)
from segments.services import (
    SegmentChange,
    SegmentInUse,
    SegmentInvalid,
    SegmentNameTaken,
    segment_create,
    segment_delete,
    segment_duplicate,
    segment_rules_clean,
    segment_update,
    segment_users,
)
from workbench.api import Conflict, Invalid, require_role
from workbench.api_input import json_body, parse_as, query_text

router = Router(tags=["segments"])

_READ_ERRORS: dict[int, Any] = {404: ErrorOut, 422: ErrorOut}
_WRITE_ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 413: ErrorOut, 422: ErrorOut}
_SegmentId = Path(..., ge=1, le=SEGMENT_ID_MAX)


# --- Shapes and errors ----------------------------------------------------------------------


def _ref(segment: Segment) -> dict[str, Any]:
    return {"id": segment.pk, "name": segment.name}


def segment_json(segment: Segment, users: list[Segment]) -> dict[str, Any]:
    return {
        "id": segment.pk,
        "name": segment.name,
        "description": segment.description,
        "predefined": segment.predefined,
        "status": segment.status,
        "build_progress": segment.build_progress,
        "build_error": segment.build_error,
        "member_count": segment.member_count,
        "built_at": segment.built_at,
        "rules": segment.rules,
        "rules_version": segment.rules_version,
        "timezone": segment.timezone,
        "time_based": segment.time_based,
        "used_by": [_ref(s) for s in users],
        "created_at": segment.created_at,
        "updated_at": segment.updated_at,
    }


def _one(segment: Segment) -> dict[str, Any]:
    return segment_json(segment, segment_users(segment))


def _segment_or_404(segment_id: int) -> Segment:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise HttpError(404, "No segment with this id.")
    return segment


def rule_errors(exc: RulesInvalid) -> Invalid:
    return Invalid(
        [
            {
                "field": "rules" if e.node == "root" else f"rules.{e.node}",
                "node": e.node,
                "message": e.message,
            }
            for e in exc.errors
        ],
        detail="The rules are invalid.",
    )


def _segment_invalid(exc: SegmentInvalid) -> Exception:
    # Over the API a clash with an existing segment's name is a conflict (409), as for tags.
    if isinstance(exc, SegmentNameTaken):
        return Conflict(str(exc))
    return Invalid([{"field": exc.field, "message": str(exc)}])


def _timezone(request: HttpRequest, tz: str | None) -> str:
    """The preview's zone: given, or the member's, as a segment created now would get."""
    tz = tz or getattr(request.user, "timezone", "") or "UTC"
    if tz not in zoneinfo.available_timezones():
        raise Invalid(
            [
                {
                    "field": "timezone",
                    "message": f"“{tz}” is not an IANA time zone such as Europe/Paris.",
                }
            ]
        )
    return tz


def _not_null(body: SegmentPatchIn) -> None:
    if nulls := [key for key in sorted(body.model_fields_set) if getattr(body, key) is None]:
        raise Invalid(
            [{"field": key, "message": "Leave the key out to keep the value."} for key in nulls]
        )


# --- Segments -------------------------------------------------------------------------------


@router.get(
    "/segments",
    response={200: SegmentListOut, 422: ErrorOut},
    summary="List segments",
    description="Every segment (there are at most a few hundred), with what uses each.",
)
def segments_get(
    request: HttpRequest,
    q: str | None = Query(None, max_length=200, description="Name or description contains."),  # noqa: B008
    sort: str = Query("name", description=SORT_DESCRIPTION),  # noqa: B008
) -> dict[str, Any]:
    if sort not in SEGMENT_SORTS:
        raise Invalid([{"field": "sort", "message": SORT_DESCRIPTION}])
    q = (query_text(q, "q") or "").strip()
    users = used_by()
    return {"segments": [segment_json(s, users.get(s.pk, [])) for s in segment_list(q, sort)]}


@router.post(
    "/segments",
    response={201: SegmentOut, 409: ErrorOut, **_WRITE_ERRORS},
    summary="Create a segment",
    description="Membership is built in the background: the segment answers with status "
    "`computing` until it is `ready`.",
    openapi_extra=body_doc(SegmentIn),
)
def segments_post(request: HttpRequest) -> Status[dict[str, Any]]:
    require_role(request, Role.MARKETER)
    body = parse_as(SegmentIn, json_body(request))
    try:
        segment = segment_create(
            name=body.name,
            description=body.description,
            rules=body.rules,
            tz=body.timezone,
            actor=Actor.for_request(request),
        )
    except SegmentInvalid as exc:
        raise _segment_invalid(exc) from None
    except RulesInvalid as exc:
        raise rule_errors(exc) from None
    return Status(201, _one(segment))


# Registered before /segments/{segment_id}: Django resolves URL patterns in order, and the
# other pattern would take "preview" for an id (and answer 405 to the POST).
@router.post(
    "/segments/preview",
    response={200: PreviewOut, 422: ErrorOut, 413: ErrorOut},
    summary="Count and sample the customers some rules match",
    description="Stores nothing, so any role may preview. A count that runs past the time "
    "limit answers the planner's estimate with `estimated: true`.",
    openapi_extra=body_doc(PreviewIn),
)
def segments_preview(request: HttpRequest) -> dict[str, Any]:
    body = parse_as(PreviewIn, json_body(request))
    tz = _timezone(request, body.timezone)
    try:
        tree = segment_rules_clean(body.rules, tz)
    except RulesInvalid as exc:
        raise rule_errors(exc) from None
    result = query.preview(tree, tz, reach=body.reachable)
    out = result.as_json()
    # The preview counts prefixes only when there are several conditions to add up; with one,
    # the count after it is the count.
    if len(tree["children"]) == 1 and not result.estimated:
        out["conditions"] = [result.count]
    return out


@router.get(
    "/segments/{segment_id}",
    response={200: SegmentOut, **_READ_ERRORS},
    summary="One segment, with its build status and member count",
)
def segment_get(request: HttpRequest, segment_id: int = _SegmentId) -> dict[str, Any]:
    return _one(_segment_or_404(segment_id))


@router.patch(
    "/segments/{segment_id}",
    response={200: SegmentOut, 409: ErrorOut, **_WRITE_ERRORS},
    summary="Edit a segment",
    description="Only the keys given change. New rules (or a new time zone) start a rebuild: "
    "the segment answers with status `computing` until it is `ready`.",
    openapi_extra=body_doc(SegmentPatchIn),
)
def segment_patch(request: HttpRequest, segment_id: int = _SegmentId) -> dict[str, Any]:
    require_role(request, Role.MARKETER)
    segment = _segment_or_404(segment_id)
    body = parse_as(SegmentPatchIn, json_body(request))
    _not_null(body)
    change = SegmentChange(
        name=body.name,
        description=body.description,
        rules=body.rules,
        timezone=body.timezone,
    )
    try:
        segment = segment_update(segment=segment, change=change, actor=Actor.for_request(request))
    except SegmentInvalid as exc:
        raise _segment_invalid(exc) from None
    except RulesInvalid as exc:
        raise rule_errors(exc) from None
    return _one(segment)


@router.delete(
    "/segments/{segment_id}",
    response={204: None, 409: SegmentInUseOut, 403: ErrorOut, **_READ_ERRORS},
    summary="Delete a segment",
    description="Refused (409, naming them) while other segments' rules read this one.",
)
def segment_remove(request: HttpRequest, segment_id: int = _SegmentId) -> Status[Any]:
    require_role(request, Role.MARKETER)
    segment = _segment_or_404(segment_id)
    try:
        segment_delete(segment=segment, actor=Actor.for_request(request))
    except SegmentInUse as exc:
        return Status(409, {"detail": str(exc), "used_by": [_ref(s) for s in exc.users]})
    return Status(204, None)


@router.post(
    "/segments/{segment_id}/duplicate",
    response={201: SegmentOut, 403: ErrorOut, **_READ_ERRORS},
    summary="Copy a segment",
    description="The copy is named “Copy of …” and built like a new segment.",
)
def segment_copy(request: HttpRequest, segment_id: int = _SegmentId) -> Status[dict[str, Any]]:
    require_role(request, Role.MARKETER)
    segment = _segment_or_404(segment_id)
    try:
        copy = segment_duplicate(segment=segment, actor=Actor.for_request(request))
    except RulesInvalid as exc:
        # The original's rules can have gone stale (a custom field or tag deleted since).
        raise rule_errors(exc) from None
    return Status(201, _one(copy))


# --- Members --------------------------------------------------------------------------------


def _after(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        after = decode_cursor(query_text(cursor, "cursor") or "")
    except ValueError:
        after = -1
    if not 0 <= after <= SEGMENT_ID_MAX:
        raise Invalid(
            [{"field": "cursor", "message": "Not a cursor from a previous page's next_cursor."}]
        )
    return after


@router.get(
    "/segments/{segment_id}/members",
    response={200: MembersPageOut, **_READ_ERRORS},
    summary="A segment's members",
    description="In customer order, keyset-paginated: pass the answer's `next_cursor` as "
    "`cursor` for the next page. `q` keeps members whose user ID, e-mail or name starts with "
    "it. This is the stored membership: while the segment is `computing` it is the previous "
    "build's.",
)
def segment_members_get(
    request: HttpRequest,
    segment_id: int = _SegmentId,
    cursor: str | None = Query(None, max_length=200),  # noqa: B008
    limit: int = Query(MEMBERS_PAGE, ge=1, le=MEMBERS_MAX),  # noqa: B008
    q: str | None = Query(None, max_length=200),  # noqa: B008
) -> dict[str, Any]:
    segment = _segment_or_404(segment_id)
    after = _after(cursor)
    q = (query_text(q, "q") or "").strip()
    page = segment_members(segment, q=q, after=after, limit=limit)
    return {
        "members": [
            {
                "id": c.pk,
                "user_id": c.user_id,
                "name": c.display_name,
                "email": c.email,
                "entered_at": c.entered_at,
            }
            for c in page.members
        ],
        "next_cursor": page.next_cursor,
    }


# --- A customer's segments and the explanation ------------------------------------------------


@router.get(
    "/customers/{user_id}/segments",
    response={200: CustomerSegmentsOut, **_READ_ERRORS},
    summary="The segments a customer is in",
    description="By segment name, with when the customer entered each.",
)
def customer_segments_get(request: HttpRequest, user_id: str) -> dict[str, Any]:
    customer = customer_or_404(user_id)
    return {
        "segments": [
            {"id": s.pk, "name": s.name, "entered_at": entered_at}
            for s, entered_at in customer_segments(customer)
        ]
    }


@router.get(
    "/segments/{segment_id}/explain/{user_id}",
    response={200: ExplainOut, **_READ_ERRORS},
    summary="Why a customer is or isn't in a segment",
    description="Every condition with the value it read for the customer and whether it "
    "held, computed now by the same compiler as membership.",
)
def segment_explain(
    request: HttpRequest, user_id: str, segment_id: int = _SegmentId
) -> dict[str, Any]:
    segment = _segment_or_404(segment_id)
    customer = customer_or_404(user_id)
    return {"segment": _ref(segment), "user_id": customer.user_id, **explain(segment, customer.pk)}
