"""Events over the REST API: batch ingestion, a customer's timeline and the event catalog.

POST /events answers with plain JSON (orjson) rather than a validated ninja schema: building
and checking a 1,000-item answer through pydantic costs more than storing the batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from activity.services import Actor
from customers.api import customer_or_404
from customers.schemas import ErrorOut
from events.ingest import MAX_BATCH, events_ingest
from events.models import Event, EventType
from events.selectors import BadCursor, event_catalog, event_timeline
from members.roles import Role
from workbench.api import Invalid, require_role
from workbench.api_input import as_utc, parse_json, query_text

router = Router(tags=["events"])

_EVENT_SCHEMA = {
    "type": "object",
    "required": ["user_id", "name"],
    "properties": {
        "id": {
            "type": "string",
            "description": "Your id for the event: sent again for the "
            "same customer, it is stored once and answered with the same stored id.",
        },
        "user_id": {"type": "string", "description": "Unknown user IDs get a new profile."},
        "name": {
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9_.-]{0,99}$",
            "description": "Case-folded. Built-in analytics names or any custom name.",
        },
        "timestamp": {
            "type": "string",
            "format": "date-time",
            "description": "ISO-8601; UTC when no offset is given; default now; at "
            "most 24 h ahead.",
        },
        "properties": {"type": "object", "description": "At most 32 KB, 5 levels deep."},
        "context": {
            "type": "object",
            "description": "platform (ios/android/web), "
            "sdk_version, os_version, device, user_agent, browser, browser_version, "
            "os: they keep the customer's analytics fields current. At most 8 KB.",
        },
    },
}
_INGEST_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "maxItems": MAX_BATCH,
                                    "items": _EVENT_SCHEMA,
                                }
                            },
                        },
                        {"type": "array", "maxItems": MAX_BATCH, "items": _EVENT_SCHEMA},
                        _EVENT_SCHEMA,
                    ]
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "Per event, in request order: `{index, status: accepted, id, "
            "client_id}` or `{index, status: rejected, errors}`; totals `accepted`, "
            "`rejected`. 422 when every event was rejected."
        },
    },
}


def _read_events(request: HttpRequest) -> list[Any]:
    """The body's events: {"events": [...]}, a bare array, or one event object."""
    length = request.META.get("CONTENT_LENGTH") or ""
    limit = settings.EVENTS_MAX_BODY_BYTES
    if length.isdigit() and int(length) > limit:
        raise HttpError(413, f"The request body is larger than {limit:,} bytes.")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise HttpError(413, f"The request body is larger than {limit:,} bytes.")
    data = parse_json(raw)
    if isinstance(data, dict) and "events" in data:
        if unknown := [key for key in data if key != "events"]:
            raise Invalid([{"field": key, "message": "Unknown field."} for key in unknown])
        data = data["events"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise Invalid([{"field": "events", "message": "Must be an array of events."}])
    if not data:
        raise Invalid([{"field": "events", "message": "Give at least one event."}])
    if len(data) > MAX_BATCH:
        raise Invalid(
            [
                {
                    "field": "events",
                    "message": f"At most {MAX_BATCH:,} events per request (got {len(data):,}).",
                }
            ]
        )
    return data


@router.post(
    "/events",
    response={200: dict, 400: ErrorOut, 403: ErrorOut, 413: ErrorOut, 422: ErrorOut},
    summary="Send events (up to 1,000 per request)",
    description="Each event is answered with its own status; valid events are stored even "
    "when others in the batch are rejected. Send a client `id` with each event to make "
    "retries safe: the same id for the same customer is stored once.",
    openapi_extra=_INGEST_DOC,
)
def events_post(request: HttpRequest):
    require_role(request, Role.MARKETER)
    outcome = events_ingest(_read_events(request), actor=Actor.for_request(request))
    body = {
        "accepted": outcome.accepted,
        "rejected": outcome.rejected,
        "results": outcome.results,
    }
    return HttpResponse(
        orjson.dumps(body),
        content_type="application/json",
        status=200 if outcome.accepted else 422,
    )


class EventOut(Schema):
    id: int
    name: str
    timestamp: datetime
    received_at: datetime
    client_id: str | None
    properties: dict[str, Any]
    context: dict[str, Any]


class EventPageOut(Schema):
    events: list[EventOut]
    next_cursor: str | None


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.pk,
        "name": event.event_type.name,
        "timestamp": event.occurred_at,
        "received_at": event.received_at,
        "client_id": event.client_id,
        "properties": event.properties,
        "context": event.context,
    }


@router.get(
    "/customers/{user_id}/events",
    response={200: EventPageOut, 404: ErrorOut, 422: ErrorOut},
    summary="A customer's events, newest first",
    description="Keyset-paginated: pass the answer's `next_cursor` as `cursor`. Filter by "
    "`name` (repeat it for several) and by time: `since` (inclusive) and `until` (exclusive).",
)
def customer_events(
    request: HttpRequest,
    user_id: str,
    name: list[str] | None = Query(None),  # noqa: B008
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = Query(None, max_length=200),  # noqa: B008
    limit: int = Query(50, ge=1, le=500),  # noqa: B008
) -> dict[str, Any]:
    customer = customer_or_404(user_id)
    names = [query_text(n, "name").strip().casefold() for n in name] if name else None
    try:
        page = event_timeline(
            customer.pk,
            names=names,
            since=as_utc(since),
            until=as_utc(until),
            cursor=query_text(cursor, "cursor"),
            limit=limit,
        )
    except BadCursor as exc:
        raise Invalid([{"field": "cursor", "message": str(exc)}]) from None
    return {"events": [event_json(e) for e in page.events], "next_cursor": page.next_cursor}


class EventTypeOut(Schema):
    name: str
    builtin: bool
    label: str
    description: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    properties: dict[str, str]


def event_type_json(event_type: EventType) -> dict[str, Any]:
    return {
        "name": event_type.name,
        "builtin": event_type.builtin,
        "label": event_type.label,
        "description": event_type.description,
        "count": event_type.event_count,
        "first_seen": event_type.first_seen,
        "last_seen": event_type.last_seen,
        "properties": event_type.properties,
    }


@router.get(
    "/event-types",
    response={200: list[EventTypeOut]},
    summary="The event catalog",
    description="Every event name (built-in analytics events and custom events seen), with "
    "counts, first and last seen, and the property keys observed with their inferred types.",
)
def event_types(request: HttpRequest) -> list[dict[str, Any]]:
    return [event_type_json(t) for t in event_catalog()]
