"""Reading API input: JSON bodies and query text, refused with the API's error format
before anything reaches the database (shared by every app's router)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from pydantic import BaseModel, ValidationError

from workbench.api import Invalid


def json_body(request: HttpRequest, *, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object; 400 when it is not JSON, 422 when it is JSON but not
    an object or holds text PostgreSQL cannot store. Reading ``request.body`` raises
    RequestDataTooBig above DATA_UPLOAD_MAX_MEMORY_SIZE, which the API answers with 413."""
    raw = request.body
    if not raw.strip():
        if allow_empty:
            return {}
        raise Invalid([{"field": "body", "message": "A JSON object is required."}])
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise Invalid(
            [{"field": "body", "message": f"Must be a JSON object, not {_json_type(data)}."}]
        )
    try:
        # "\ud800" escapes decode to lone surrogates, which psycopg cannot encode for any text
        # column; refuse them here rather than fail at the INSERT.
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise Invalid(
            [{"field": "body", "message": "Contains an unpaired UTF-16 surrogate escape."}]
        ) from None
    return data


def parse_json(raw: bytes) -> Any:
    """Any JSON value, or 400."""
    try:
        return json.loads(raw)
    # ValueError covers malformed JSON, bad UTF-8 and integers beyond Python's digit limit;
    # RecursionError a body nested thousands deep.
    except (ValueError, RecursionError) as exc:
        raise HttpError(400, f"The body is not valid JSON: {_short(exc)}") from None


def as_utc(value: datetime | None) -> datetime | None:
    """A query-parameter time; one written without an offset is taken as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "…"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def parse_as[M: BaseModel](model: type[M], data: dict[str, Any]) -> M:
    """Validate a small body against a strict model; field errors become a 422."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(
            [
                {
                    "field": ".".join(str(p) for p in e["loc"]) or "body",
                    "message": "Unknown field." if e["type"] == "extra_forbidden" else e["msg"],
                }
                for e in exc.errors()
            ]
        ) from None


def query_text(value: str | None, field: str) -> str | None:
    """A free-text query parameter; NUL characters cannot reach PostgreSQL."""
    if value is not None and "\x00" in value:
        raise Invalid([{"field": field, "message": "Must not contain NUL characters."}])
    return value
