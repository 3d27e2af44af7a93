"""The Do Not Contact list over the REST API: list, add (one or up to 1,000), remove, and the
check "is this contact suppressed here, and by which entries". Any role reads and checks;
adding and removing need a Marketer. Contacts are normalised as everywhere else
(donotcontact/contacts.py): a bad contact is a 422 saying why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from ninja import Path, Query, Router, Status
from ninja.errors import HttpError
from pydantic import ValidationError

from activity.services import Actor
from customers.schemas import ErrorOut, body_doc
from donotcontact.contacts import (
    CleanEntry,
    ContactInvalid,
    account_clean,
    channel_clean,
    contact_clean,
    sender_clean,
)
from donotcontact.filters import EVERY, EntryFilter
from donotcontact.models import Channel, Entry
from donotcontact.schemas import (
    ADD_MAX,
    ENTRY_ID_MAX,
    AddOut,
    CheckOut,
    EntriesIn,
    EntryIn,
    EntryOut,
    EntryPageOut,
)
from donotcontact.selectors import entries_suppressing
from donotcontact.services import entries_add, entries_remove, note_clean, reason_clean
from members.roles import Role
from workbench.api import Invalid, cursor_decode, cursor_encode, require_role
from workbench.api_input import as_utc, json_body, query_text

router = Router(tags=["do-not-contact"])

PAGE_DEFAULT = 100
PAGE_MAX = 1000
_CURSOR_PREFIX = "d1:"
_EntryId = Path(..., ge=1, le=ENTRY_ID_MAX)
_ANY_CHANNEL = ("", "all", "any", "*")


def entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "contact": entry.contact,
        "channel": entry.channel,
        "sender": entry.sender,
        "account": entry.account,
        "source": entry.source,
        "reason": entry.reason,
        "note": entry.note,
        "added_at": entry.added_at,
        "added_by": entry.added_by.email if entry.added_by else None,
    }


def _field_error(field: str, exc: Exception) -> Invalid:
    return Invalid([{"field": field, "message": str(exc)}])


def _checked(field: str, clean: Callable[..., str], *args: Any) -> str:
    """``clean(*args)``, its ContactInvalid turned into a 422 naming ``field``."""
    try:
        return clean(*args)
    except ContactInvalid as exc:
        raise _field_error(field, exc) from None


# --- The check ----------------------------------------------------------------------------
# Registered before /do-not-contact/{entry_id}, so "check" is never read as an id.


@router.get(
    "/do-not-contact/check",
    response={200: CheckOut, 422: ErrorOut},
    summary="Is this contact suppressed?",
    description="Answers whether a message to `contact` on `channel` from `sender` through "
    "`account` must not be sent, and which entries say so. Without a channel: suppressed on "
    "some channel. Without a sender (account): only entries for every sender (account) count; "
    "with one, its own entries count too.",
)
def dnc_check(
    request: HttpRequest,
    contact: str = Query(..., max_length=254),  # noqa: B008
    channel: str | None = Query(None, max_length=32),  # noqa: B008
    sender: str | None = Query(None, max_length=100),  # noqa: B008
    account: str | None = Query(None, max_length=100),  # noqa: B008
) -> dict[str, Any]:
    clean_contact = _checked("contact", contact_clean, query_text(contact, "contact"))
    clean_channel: str | None = None
    if (query_text(channel, "channel") or "").strip().lower() not in _ANY_CHANNEL:
        clean_channel = _checked("channel", channel_clean, channel, clean_contact)
    clean_sender = _checked("sender", sender_clean, query_text(sender, "sender"))
    clean_account = _checked("account", account_clean, query_text(account, "account"))
    entries = entries_suppressing(clean_contact, clean_channel, clean_sender, clean_account)
    return {
        "contact": clean_contact,
        "channel": clean_channel,
        "sender": clean_sender,
        "account": clean_account,
        "suppressed": bool(entries),
        "entries": [entry_json(e) for e in entries],
    }


# --- The list -----------------------------------------------------------------------------


@router.get(
    "/do-not-contact",
    response={200: EntryPageOut, 422: ErrorOut},
    summary="List Do Not Contact entries",
    description="Oldest first, keyset-paginated: pass the answer's `next_cursor` as `cursor`. "
    "`channel`, `sender`, `account` and `source` are repeatable (any of the values); `*` selects "
    "the entries for every channel, sender or account.",
)
def dnc_list(
    request: HttpRequest,
    contact: str | None = Query(None, max_length=254, description="Exactly this contact."),  # noqa: B008
    channel: list[str] | None = Query(None),  # noqa: B008
    sender: list[str] | None = Query(None),  # noqa: B008
    account: list[str] | None = Query(None),  # noqa: B008
    source: list[str] | None = Query(None),  # noqa: B008
    added_from: datetime | None = Query(None, description="Added at or after (ISO-8601)."),  # noqa: B008
    added_to: datetime | None = Query(None, description="Added before (ISO-8601)."),  # noqa: B008
    limit: int = Query(PAGE_DEFAULT, ge=1, le=PAGE_MAX),  # noqa: B008
    cursor: str | None = Query(None, max_length=64),  # noqa: B008
) -> dict[str, Any]:
    params = QueryDict(mutable=True)
    if contact := query_text(contact, "contact"):
        try:
            params["contact"] = contact_clean(contact)
        except ContactInvalid as exc:
            raise _field_error("contact", exc) from None
    for name, values in (
        ("channel", channel),
        ("sender", sender),
        ("account", account),
        ("source", source),
    ):
        for value in values or []:
            query_text(value, name)
        if values:
            # Channel labels ("WhatsApp") are accepted here as in every other input.
            params.setlist(
                name, [_channel_value(v) for v in values] if name == "channel" else values
            )
    filterset = EntryFilter(params, queryset=Entry.objects.all())
    if not filterset.is_valid():
        raise Invalid(
            [
                {"field": field, "message": " ".join(messages)}
                for field, messages in filterset.errors.items()
            ]
        )
    qs: QuerySet[Entry] = filterset.qs
    if added_from:
        qs = qs.filter(added_at__gte=as_utc(added_from))
    if added_to:
        qs = qs.filter(added_at__lt=as_utc(added_to))
    if cursor:
        qs = qs.filter(pk__gt=cursor_decode(_CURSOR_PREFIX, cursor))
    rows = list(qs.select_related("added_by").order_by("pk")[: limit + 1])
    page = rows[:limit]
    return {
        "entries": [entry_json(e) for e in page],
        "next_cursor": cursor_encode(_CURSOR_PREFIX, page[-1].pk) if len(rows) > limit else None,
    }


_CHANNEL_NAMES = {
    **{value: value for value in Channel.values},
    **{label.lower(): value for value, label in Channel.choices},
    **dict.fromkeys(_ANY_CHANNEL[1:], EVERY),
}


def _channel_value(value: str) -> str:
    """A channel filter value: its name or label ("WhatsApp"); "*" or "all" for the entries
    for every channel. Unknown names pass through for the FilterSet to refuse."""
    return _CHANNEL_NAMES.get(value.strip().lower(), value)


@router.get(
    "/do-not-contact/{entry_id}",
    response={200: EntryOut, 404: ErrorOut, 422: ErrorOut},
    summary="One entry",
)
def dnc_get(request: HttpRequest, entry_id: int = _EntryId) -> dict[str, Any]:
    entry = Entry.objects.select_related("added_by").filter(pk=entry_id).first()
    if entry is None:
        raise HttpError(404, "No Do Not Contact entry with this id.")
    return entry_json(entry)


# --- Adding and removing ------------------------------------------------------------------


def _pydantic_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in e["loc"]) or "body",
            "message": "Unknown field." if e["type"] == "extra_forbidden" else e["msg"],
        }
        for e in exc.errors()
    ]


def _item(raw: Any) -> tuple[str | None, CleanEntry | None, EntryIn | None, list[dict]]:
    """(normalised contact, clean entry, parsed item, errors) for one body item."""
    if not isinstance(raw, dict):
        return None, None, None, [{"field": "entry", "message": "Must be a JSON object."}]
    try:
        item = EntryIn.model_validate(raw)
    except ValidationError as exc:
        return None, None, None, _pydantic_errors(exc)
    try:
        contact = contact_clean(item.contact)
    except ContactInvalid as exc:
        return None, None, item, [{"field": "contact", "message": str(exc)}]
    errors = []
    # entry_clean's steps one by one, so each error names its field.
    steps = (
        ("channel", lambda value: channel_clean(value, contact)),
        ("sender", sender_clean),
        ("account", account_clean),
        ("reason", reason_clean),
        ("note", note_clean),
    )
    values: dict[str, str] = {}
    errors = []
    for name, clean in steps:
        try:
            values[name] = clean(getattr(item, name))
        except ContactInvalid as exc:
            errors.append({"field": name, "message": str(exc)})
    if errors:
        return contact, None, item, errors
    entry = CleanEntry(contact, values["channel"], values["sender"], values["account"])
    return contact, entry, item, []


@router.post(
    "/do-not-contact",
    response={200: AddOut, 201: AddOut, 403: ErrorOut, 413: ErrorOut, 422: ErrorOut},
    summary=f"Add one entry or up to {ADD_MAX}",
    description='Send one entry object, or `{"entries": [...]}`. Each entry gets its own '
    "status: `added`, `already_present` (an identical entry exists; it keeps its time and "
    "source) or `rejected` with the reason; the valid ones are stored even when others are "
    "rejected. One entry: 201 when added, 200 when already present, 422 when rejected. "
    "`source` defaults to `api`.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            body_doc(EntryIn)["requestBody"]["content"]["application/json"][
                                "schema"
                            ],
                            body_doc(EntriesIn)["requestBody"]["content"]["application/json"][
                                "schema"
                            ],
                        ]
                    }
                }
            },
        }
    },
)
def dnc_add(request: HttpRequest) -> Status[dict[str, Any]]:
    require_role(request, Role.MARKETER)
    body = json_body(request)
    single = "entries" not in body
    if single:
        items: list[Any] = [body]
    else:
        if unknown := [key for key in body if key != "entries"]:
            raise Invalid([{"field": key, "message": "Unknown field."} for key in unknown])
        items = body["entries"]
        if not isinstance(items, list):
            raise Invalid([{"field": "entries", "message": "Must be a list of entries."}])
        if len(items) > ADD_MAX:
            raise Invalid(
                [
                    {
                        "field": "entries",
                        "message": f"At most {ADD_MAX} entries per request (got {len(items)});"
                        " split the batch.",
                    }
                ],
                detail=f"Too many entries in one request: the limit is {ADD_MAX}.",
            )
    parsed = [_item(raw) for raw in items]
    if single and parsed[0][3]:
        raise Invalid(parsed[0][3])

    # One add per source: the service stamps a source on a whole batch.
    by_source: dict[str, list[tuple[CleanEntry, EntryIn]]] = {}
    for _, entry, item, _ in parsed:
        if entry is not None and item is not None:
            by_source.setdefault(item.source, []).append((entry, item))
    actor = Actor.for_request(request)
    added_keys: set[tuple[str, str, str, str]] = set()
    for source, pairs in by_source.items():
        result = entries_add(
            entries=[entry for entry, _ in pairs],
            source=source,
            actor=actor,
            details=[(item.reason, item.note) for _, item in pairs],
        )
        added_keys |= result.added_keys
    stored = _entries_by_key({entry.key for _, entry, _, _ in parsed if entry is not None})

    results = []
    first_seen: set[tuple[str, str, str, str]] = set()
    for index, (contact, entry, _, errors) in enumerate(parsed):
        if entry is None:
            results.append(
                {"index": index, "contact": contact, "status": "rejected", "errors": errors}
            )
            continue
        # Repeats within the request: only the first can have added the entry.
        status = (
            "added"
            if entry.key in added_keys and entry.key not in first_seen
            else "already_present"
        )
        first_seen.add(entry.key)
        stored_entry = stored.get(entry.key)
        results.append(
            {
                "index": index,
                "contact": contact,
                "status": status,
                "entry": entry_json(stored_entry) if stored_entry else None,
                "errors": [],
            }
        )
    statuses = [r["status"] for r in results]
    out = {
        "results": results,
        "added": statuses.count("added"),
        "already_present": statuses.count("already_present"),
        "rejected": statuses.count("rejected"),
    }
    if single:
        return Status(201 if statuses[0] == "added" else 200, out)
    return Status(200, out)


def _entries_by_key(keys: set[tuple[str, str, str, str]]) -> dict[tuple, Entry]:
    if not keys:
        return {}
    rows = Entry.objects.select_related("added_by").filter(contact__in={k[0] for k in keys})
    return {
        (e.contact, e.channel, e.sender, e.account): e
        for e in rows
        if (e.contact, e.channel, e.sender, e.account) in keys
    }


@router.delete(
    "/do-not-contact/{entry_id}",
    response={204: None, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Remove an entry",
    description="The contact may be contacted again where no other entry covers it.",
)
def dnc_remove(request: HttpRequest, entry_id: int = _EntryId) -> Status[None]:
    require_role(request, Role.MARKETER)
    if not entries_remove(ids=[entry_id], actor=Actor.for_request(request)):
        raise HttpError(404, "No Do Not Contact entry with this id.")
    return Status(204, None)
