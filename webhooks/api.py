"""Webhooks over the REST API, for Admins: list and create endpoints (the secret is in the
create answer only), send a test event, read the delivery log, replay a delivery."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Path, Query, Router, Status
from ninja.errors import HttpError

from activity.services import Actor
from customers.schemas import ErrorOut, body_doc
from members.roles import Role
from webhooks import services
from webhooks.models import Delivery, DeliveryStatus, Endpoint, EventType
from webhooks.schemas import (
    DeliveryListOut,
    EndpointCreatedOut,
    EndpointIn,
    EndpointListOut,
    EndpointOut,
    TestOut,
)
from workbench.api import Invalid, require_role
from workbench.api_input import json_body, parse_as

router = Router(tags=["webhooks"])

_ERRORS: dict[int, Any] = {403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
_Id = Path(..., ge=1, le=2**63 - 1)


def _out(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "events": endpoint.events,
        "segment_ids": None if endpoint.all_segments else endpoint.segment_ids,
        "profile_fields": endpoint.profile_fields,
        "batch_size": endpoint.batch_size,
        "consecutive_failures": endpoint.consecutive_failures,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at,
    }


def _delivery_out(item: Delivery) -> dict[str, Any]:
    return {
        "id": item.pk,
        "webhook_id": item.webhook_id,
        "event": item.event,
        "status": item.status,
        "item_count": item.item_count,
        "attempts": item.attempts,
        "created_at": item.created_at,
        "next_attempt_at": item.next_attempt_at if item.status == DeliveryStatus.PENDING else None,
        "delivered_at": item.delivered_at,
        "last_status_code": item.last_status_code,
        "last_error": item.last_error,
    }


def _endpoint_or_404(endpoint_id: int) -> Endpoint:
    endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise HttpError(404, "No webhook endpoint with this id.")
    return endpoint


@router.get("/webhooks", response={200: EndpointListOut, 403: ErrorOut}, summary="List endpoints")
def endpoint_list(request: HttpRequest) -> dict[str, Any]:
    require_role(request, Role.ADMIN)
    return {"endpoints": [_out(e) for e in Endpoint.objects.order_by("id")]}


@router.post(
    "/webhooks",
    response={201: EndpointCreatedOut, **_ERRORS},
    summary="Create an endpoint",
    description="The answer holds the signing secret; it is not shown again. URLs that "
    "resolve to private, loopback, link-local or metadata addresses are refused (422).",
    openapi_extra=body_doc(EndpointIn),
)
def endpoint_post(request: HttpRequest) -> Status[dict[str, Any]]:
    require_role(request, Role.ADMIN)
    payload = parse_as(EndpointIn, json_body(request))
    data = services.EndpointData(
        url=payload.url,
        description=payload.description,
        events=payload.events,
        all_segments=payload.segment_ids is None,
        segment_ids=payload.segment_ids or [],
        profile_fields=payload.profile_fields,
        batch_size=payload.batch_size,
    )
    try:
        endpoint, secret = services.endpoint_create(data=data, actor=Actor.for_request(request))
    except services.WebhookInvalid as exc:
        raise Invalid([{"field": exc.field or "body", "message": str(exc)}]) from None
    return Status(201, {**_out(endpoint), "secret": secret})


@router.get("/webhooks/{endpoint_id}", response={200: EndpointOut, **_ERRORS})
def endpoint_get(request: HttpRequest, endpoint_id: int = _Id) -> dict[str, Any]:
    require_role(request, Role.ADMIN)
    return _out(_endpoint_or_404(endpoint_id))


@router.post(
    "/webhooks/{endpoint_id}/test",
    response={200: TestOut, **_ERRORS},
    summary="Send a test event now",
)
def endpoint_test(request: HttpRequest, endpoint_id: int = _Id) -> dict[str, Any]:
    require_role(request, Role.ADMIN)
    endpoint = _endpoint_or_404(endpoint_id)
    test, attempt = services.endpoint_send_test(endpoint=endpoint, actor=Actor.for_request(request))
    return {"delivery": _delivery_out(test), "attempt": attempt}


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    response={200: DeliveryListOut, **_ERRORS},
    summary="The delivery log, newest first",
)
def delivery_list(
    request: HttpRequest,
    endpoint_id: int = _Id,
    status: str | None = Query(None, description="pending, delivered or failed"),  # noqa: B008
    event: str | None = Query(None, max_length=20),  # noqa: B008
    limit: int = Query(50, ge=1, le=500),  # noqa: B008
) -> dict[str, Any]:
    require_role(request, Role.ADMIN)
    endpoint = _endpoint_or_404(endpoint_id)
    qs = Delivery.objects.filter(endpoint=endpoint).defer("body", "transition_ids")
    if status:
        if status not in DeliveryStatus.values:
            raise Invalid([{"field": "status", "message": "Unknown status."}])
        qs = qs.filter(status=status)
    if event:
        if event not in EventType.values:
            raise Invalid([{"field": "event", "message": "Unknown event."}])
        qs = qs.filter(event=event)
    return {"deliveries": [_delivery_out(d) for d in qs.order_by("-created_at", "-id")[:limit]]}


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay",
    response={202: None, **_ERRORS},
    summary="Send a delivery again (same webhook-id and body)",
)
def delivery_replay(
    request: HttpRequest, endpoint_id: int = _Id, delivery_id: int = _Id
) -> Status[None]:
    require_role(request, Role.ADMIN)
    endpoint = _endpoint_or_404(endpoint_id)
    item = Delivery.objects.filter(endpoint=endpoint, pk=delivery_id).first()
    if item is None:
        raise HttpError(404, "No delivery with this id.")
    services.delivery_replay(item=item, actor=Actor.for_request(request))
    return Status(202, None)
