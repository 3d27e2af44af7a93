"""Imports over the REST API: upload a CSV with a mapping and options (or a dry run), watch it,
cancel it, undo it, fetch its error report. Any role reads; writes need a Marketer."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Path, Router, Status
from ninja.errors import HttpError

from activity.services import Actor
from customers.schemas import ErrorOut
from imports import selectors
from imports.models import Import
from imports.reader import FileRejected
from imports.report import report_response
from imports.schemas import ImportListOut, ImportOut
from imports.services import (
    ImportInvalid,
    default_tag_name,
    import_cancel,
    import_configure,
    import_discard,
    import_start,
    import_undo,
    import_upload,
    mapping_from,
)
from imports.uploads import limit_uploads, too_big_message
from members.roles import Role
from workbench.api import Invalid, require_role

router = Router(tags=["imports"])

_ERRORS: dict[int, Any] = {
    400: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    413: ErrorOut,
    422: ErrorOut,
}
_Id = Path(..., ge=1, le=2**63 - 1)


def import_out(imp: Import) -> dict[str, Any]:
    return {
        "id": imp.pk,
        "file_name": imp.file_name,
        "file_size": imp.file_size,
        "status": imp.status,
        "phase": imp.phase,
        "dry_run": imp.dry_run,
        "progress": imp.progress,
        "counts": {
            "rows": imp.total_rows or imp.rows_read,
            "created": imp.created,
            "updated": imp.updated,
            "unchanged": imp.unchanged,
            "failed": imp.failed,
            "tagged": imp.tagged,
        },
        "message": imp.message,
        "headers": imp.headers,
        "mapping": imp.mapping,
        "options": imp.options,
        "created_at": imp.created_at,
        "started_at": imp.started_at,
        "finished_at": imp.finished_at,
        "duration_seconds": imp.duration.total_seconds() if imp.duration else None,
        "undo_until": imp.undo_until if imp.can_undo else None,
        "errors_url": reverse("api-v1:import_errors", args=[imp.pk]) if imp.failed else None,
    }


def _get(import_id: int) -> Import:
    imp = selectors.import_get(import_id)
    if imp is None:
        raise HttpError(404, "No import with this id.")
    return imp


def _json_field(request: HttpRequest, name: str) -> Any:
    raw = request.POST.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise Invalid([{"field": name, "message": "Must be JSON."}]) from None


def _options(raw: Any) -> tuple[list[str], list[str]]:
    """(tags, fill_empty). ``tag``: the import's own tag (default "Import <time>"; null for
    none); ``tags``: more tag names; ``fill_empty``: headers that only fill empty values."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise Invalid([{"field": "options", "message": "Must be an object."}])
    unknown = set(raw) - {"tag", "tags", "fill_empty"}
    if unknown:
        raise Invalid([{"field": f"options.{sorted(unknown)[0]}", "message": "Unknown option."}])
    tag = raw.get("tag", default_tag_name())
    tags, fill = raw.get("tags", []), raw.get("fill_empty", [])
    for name, value in (("tags", tags), ("fill_empty", fill)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Invalid([{"field": f"options.{name}", "message": "Must be a list of text."}])
    if tag is not None and not isinstance(tag, str):
        raise Invalid([{"field": "options.tag", "message": "Must be text or null."}])
    return ([tag] if tag else []) + tags, fill


@router.post(
    "/imports",
    response={202: ImportOut, **_ERRORS},
    summary="Import customers from a CSV file",
    description="multipart/form-data: `file` (CSV, < 128 MB, < 100 columns); optional `mapping` "
    "(JSON: a list with one target per column, or {header: target}; targets are `id`, a "
    "profile field, `custom.<name>`, `new.<text|date|number|boolean>` or `skip`; default: "
    'matched from the headers), `options` (JSON: {"tag": name or null, "tags": [...], '
    '"fill_empty": [headers]}) and `dry_run` (true: count only, write nothing).',
)
def import_create(request: HttpRequest):
    require_role(request, Role.MARKETER)
    limit_uploads(request)
    upload = request.FILES.get("file")
    if getattr(request, "upload_too_big", False):
        raise HttpError(413, too_big_message())
    if upload is None:
        raise Invalid([{"field": "file", "message": "Attach the CSV file as `file`."}])
    mapping, options = _json_field(request, "mapping"), _json_field(request, "options")
    dry_run = request.POST.get("dry_run", "").strip().lower() in ("1", "true", "yes", "on")
    tags, fill = _options(options)
    actor = Actor.for_request(request)
    try:
        imp = import_upload(chunks=upload.chunks(), file_name=upload.name, actor=actor)
    except FileRejected as exc:
        raise Invalid([{"field": "file", "message": exc.message}]) from None
    try:
        import_configure(imp=imp, mapping=mapping_from(imp, mapping), tags=tags, fill_empty=fill)
        imp = import_start(imp=imp, actor=actor, dry_run=dry_run)
    except (ImportInvalid, Invalid) as exc:
        import_discard(imp)
        if isinstance(exc, Invalid):
            raise
        raise Invalid([{"field": exc.field or "file", "message": exc.message}]) from None
    return Status(202, import_out(imp))


@router.get("/imports", response={200: ImportListOut}, summary="Recent imports")
def import_list(request: HttpRequest):
    return {"items": [import_out(i) for i in selectors.import_list()[:100]]}


@router.get("/imports/{import_id}", response={200: ImportOut, 404: ErrorOut}, summary="An import")
def import_detail(request: HttpRequest, import_id: int = _Id):
    return import_out(_get(import_id))


@router.get(
    "/imports/{import_id}/errors",
    response={200: None, 404: ErrorOut},
    summary="The error report (CSV)",
    url_name="import_errors",
)
def import_errors(request: HttpRequest, import_id: int = _Id):
    return report_response(_get(import_id))


def _act(request: HttpRequest, import_id: int, action) -> Any:
    require_role(request, Role.MARKETER)
    imp = _get(import_id)
    try:
        imp = action(imp=imp, actor=Actor.for_request(request))
    except ImportInvalid as exc:
        raise HttpError(409, exc.message) from None
    return import_out(imp)


@router.post(
    "/imports/{import_id}/cancel",
    response={200: ImportOut, **_ERRORS},
    summary="Cancel a queued or running import",
)
def import_cancel_api(request: HttpRequest, import_id: int = _Id):
    return _act(request, import_id, import_cancel)


@router.post(
    "/imports/{import_id}/undo",
    response={200: ImportOut, **_ERRORS},
    summary="Undo a finished import (within 7 days)",
)
def import_undo_api(request: HttpRequest, import_id: int = _Id):
    return _act(request, import_id, import_undo)
