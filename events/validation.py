"""Checking one incoming event. Pure Python, no database: every rule of the ingestion API
lives here, so a batch is validated event by event before anything is written, and one bad
event never costs the others their place."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from customers.profile import FieldError, clean_user_id
from events.analytics import CONTEXT_TEXT_KEYS, PLATFORMS
from events.builtin import SYSTEM_EVENTS

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
CLIENT_ID_MAX = 255
PROPERTIES_MAX_BYTES = 32 * 1024
CONTEXT_MAX_BYTES = 8 * 1024
MAX_DEPTH = 5
FUTURE_LIMIT = timedelta(hours=24)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
EVENT_KEYS = frozenset({"id", "user_id", "name", "timestamp", "properties", "context"})


@dataclass(frozen=True, slots=True)
class CleanEvent:
    user_id: str
    name: str
    occurred_at: datetime
    client_id: str | None
    properties: dict[str, Any]
    properties_json: str  # as it will be stored (already measured against the size limit)
    context: dict[str, Any]
    context_json: str
    platform: str  # "ios" | "android" | "web" | ""


class EventInvalid(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def event_clean(raw: Any, *, now: datetime) -> CleanEvent:
    """One event as an API client sent it → CleanEvent, or EventInvalid naming every problem."""
    if not isinstance(raw, dict):
        raise EventInvalid([FieldError("event", "Must be a JSON object.")])
    errors: list[FieldError] = [
        FieldError(key, "Unknown field.") for key in raw if key not in EVENT_KEYS
    ]

    def check(field: str, clean, value):
        try:
            return clean(value)
        except ValueError as exc:
            errors.append(FieldError(field, str(exc)))
            return None

    user_id = check("user_id", _user_id, raw.get("user_id"))
    name = check("name", _name, raw.get("name"))
    occurred_at = check("timestamp", lambda v: _timestamp(v, now), raw.get("timestamp"))
    client_id = check("id", _client_id, raw.get("id"))
    properties = check("properties", _object, raw.get("properties"))
    properties_json = context_json = ""
    if properties is not None:
        properties_json = check(
            "properties", lambda v: _stored_json(v, PROPERTIES_MAX_BYTES), properties
        )
    context = check("context", _object, raw.get("context"))
    platform = ""
    if context is not None:
        context_json = check("context", lambda v: _stored_json(v, CONTEXT_MAX_BYTES), context)
        platform = _context_fields(context, errors)
    if errors:
        raise EventInvalid(errors)
    return CleanEvent(
        user_id=user_id,
        name=name,
        occurred_at=occurred_at,
        client_id=client_id,
        properties=properties,
        properties_json=properties_json,
        context=context,
        context_json=context_json,
        platform=platform,
    )


def _user_id(value: Any) -> str:
    if value is None:
        raise ValueError("A user ID is required.")
    return _encodable(clean_user_id(value))


def _encodable(text: str) -> str:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError("Contains an unpaired UTF-16 surrogate escape.") from None
    return text


def _name(value: Any) -> str:
    if value is None:
        raise ValueError("An event name is required.")
    if not isinstance(value, str):
        raise ValueError("Must be text.")
    name = value.strip().casefold()
    if not name:
        raise ValueError("An event name is required.")
    # isascii first: case-folding maps some non-ASCII letters (the Kelvin sign) onto ASCII.
    if not value.isascii() or not NAME_RE.fullmatch(name):
        raise ValueError(
            "Use 1–100 characters: letters, digits, '_', '.' or '-', starting with a letter or"
            " digit."
        )
    if name in SYSTEM_EVENTS:
        raise ValueError(f"{name} is emitted by Workbench itself and cannot be sent.")
    return name


def _timestamp(value: Any, now: datetime) -> datetime:
    """ISO-8601; without an offset it is taken as UTC. Missing means "now"."""
    if value is None:
        return now
    if not isinstance(value, str):
        raise ValueError("Must be an ISO-8601 date-time text, e.g. 2026-11-23T09:30:00Z.")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("Not an ISO-8601 date-time (e.g. 2026-11-23T09:30:00Z).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > now + FUTURE_LIMIT:
        raise ValueError("Is more than 24 hours in the future.")
    if moment < EARLIEST:
        raise ValueError("Is before 1970.")
    return moment.astimezone(UTC)


def _client_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("Must be text or an integer.")
    text = str(value).strip()
    if not text:
        raise ValueError("Must not be empty (leave it out instead).")
    if len(text) > CLIENT_ID_MAX:
        raise ValueError(f"At most {CLIENT_ID_MAX} characters.")
    if "\x00" in text:
        raise ValueError("Must not contain NUL characters.")
    return _encodable(text)


def _object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("Must be a JSON object.")
    return value


def _stored_json(value: dict[str, Any], max_bytes: int) -> str:
    """The value as the compact JSON text to store, checked. orjson serialises the usual
    value; anything it would not write as given (NaN and Infinity become null, integers
    beyond 64 bits and lone surrogates raise) goes the slow, exact way for its message."""
    try:
        data = orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return _stored_json_checked(value, max_bytes)
    if b"null" in data or b"\\u0000" in data:
        return _stored_json_checked(value, max_bytes)  # a non-finite number or a NUL, maybe
    # Each level of nesting opens a bracket, so few brackets means shallow enough.
    if data.count(b"{") + data.count(b"[") > MAX_DEPTH and _shape(value)[0] > MAX_DEPTH:
        raise ValueError(f"Nested deeper than {MAX_DEPTH} levels.")
    if len(data) > max_bytes:
        raise ValueError(f"Larger than {max_bytes // 1024} KB.")
    return data.decode()


def _stored_json_checked(value: dict[str, Any], max_bytes: int) -> str:
    depth, has_nul = _shape(value)
    if depth > MAX_DEPTH:
        raise ValueError(f"Nested deeper than {MAX_DEPTH} levels.")
    if has_nul:
        raise ValueError("Must not contain NUL characters.")
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        size = len(text.encode())
    except ValueError as exc:  # NaN / Infinity: not JSON, and jsonb refuses them
        if isinstance(exc, UnicodeEncodeError):
            raise ValueError("Contains an unpaired UTF-16 surrogate escape.") from None
        raise ValueError("Numbers must be finite (no NaN or Infinity).") from None
    if size > max_bytes:
        raise ValueError(f"Larger than {max_bytes // 1024} KB.")
    return text


def _shape(value: Any) -> tuple[int, bool]:
    """Levels of objects and arrays ({} is 1, {"a": {"b": 1}} is 2), and whether any key or
    text holds a NUL character (PostgreSQL cannot store one in jsonb)."""
    if isinstance(value, str):
        return 0, "\x00" in value
    if isinstance(value, dict):
        children = [_shape(v) for v in value.values()]
        nul = any("\x00" in k for k in value)
    elif isinstance(value, list):
        children = [_shape(v) for v in value]
        nul = False
    else:
        return 0, False
    return (
        1 + max((d for d, _ in children), default=0),
        nul or any(n for _, n in children),
    )


def _context_fields(context: dict[str, Any], errors: list[FieldError]) -> str:
    """Check the context keys that feed analytics fields; return the platform."""
    platform = context.get("platform")
    if platform is not None:
        if not isinstance(platform, str) or platform.strip().lower() not in PLATFORMS:
            errors.append(FieldError("context.platform", "Must be ios, android or web."))
            platform = ""
        else:
            platform = platform.strip().lower()
    for key, max_length in CONTEXT_TEXT_KEYS.items():
        value = context.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            errors.append(FieldError(f"context.{key}", "Must be text."))
        elif len(str(value)) > max_length:
            errors.append(FieldError(f"context.{key}", f"At most {max_length} characters."))
    return platform or ""
