"""The REST API root: /api/v1/. Each app mounts its own ninja Router here.

Errors are always JSON: {"detail": "...", "errors": [{"field": "...", "message": "..."}]}.
"""

from __future__ import annotations

import base64
import binascii

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from apitokens.ratelimit import api_rate_limit_hit
from apitokens.services import api_token_authenticate
from members.roles import Role


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


class Conflict(Exception):
    """The request is valid but clashes with what exists (e.g. a duplicate key): 409."""


class Invalid(Exception):
    """Field errors found by the app's own validation (profile_clean, services): 422."""

    def __init__(
        self, errors: list[dict[str, str]], detail: str = "The request has invalid fields."
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        api_token = api_token_authenticate(token)
        if api_token is None:
            return None
        if retry_after := api_rate_limit_hit(api_token.pk):
            raise RateLimited(retry_after)
        request.user = api_token.member
        request.api_token = api_token  # type: ignore[attr-defined]
        return api_token


def cursor_encode(prefix: str, pk: int) -> str:
    """An opaque "after this id" cursor for a list endpoint; ``prefix`` names the list, so a
    cursor from one list is refused by another."""
    return base64.urlsafe_b64encode(f"{prefix}{pk}".encode()).decode().rstrip("=")


def cursor_decode(prefix: str, cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(prefix):
            raise ValueError
        pk = int(text.removeprefix(prefix))
        if not 0 <= pk < 2**63:
            raise ValueError
    except (ValueError, binascii.Error):
        raise Invalid(
            [{"field": "cursor", "message": "Not a cursor from a previous page's next_cursor."}]
        ) from None
    return pk


def require_role(request: HttpRequest, minimum: str) -> None:
    """Raise 403 unless the token's member has at least ``minimum``."""
    if not request.user.has_role(minimum):
        raise HttpError(403, f"This needs the {Role(minimum).label} role.")


api = NinjaAPI(
    title="Workbench API",
    version="1",
    urls_namespace="api-v1",
    auth=BearerToken(),
    docs_url="/docs",
    openapi_url="/openapi.json",
    description="Authenticate with `Authorization: Bearer <token>`; create tokens under "
    "Configuration → API tokens or with `manage.py create_api_token`.",
)


def _error(
    request: HttpRequest, status: int, detail: str, errors: list | None = None
) -> HttpResponse:
    body: dict = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return api.create_response(request, body, status=status)


def _field_path(loc: list | tuple) -> str:
    # ninja prefixes locations with where the value came from ("body", "query", "path") and
    # the parameter name; the member wants the field inside the payload.
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "form", "cookie"}:
        parts = parts[2:] if len(parts) > 2 else parts[1:]
    return ".".join(parts) or "body"


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": _field_path(e.get("loc", [])), "message": e.get("msg", "Invalid value.")}
        for e in exc.errors
    ]
    return _error(request, 422, "The request has invalid fields.", errors)


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(request, 401, "Missing, unknown or revoked API token.")
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(RateLimited)
def on_rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = _error(request, 429, "Rate limit exceeded for this API token.")
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, str(exc) or "Not found.")


@api.exception_handler(PermissionDenied)
def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, str(exc) or "Not allowed.")


@api.exception_handler(Conflict)
def on_conflict(request: HttpRequest, exc: Conflict) -> HttpResponse:
    return _error(request, 409, str(exc) or "Conflict.")


@api.exception_handler(Invalid)
def on_invalid(request: HttpRequest, exc: Invalid) -> HttpResponse:
    return _error(request, 422, exc.detail, exc.errors)


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, "The request body is too large.")


def _mount_routers() -> None:
    from customers.api import router as customers_router
    from customers.custom_field_api import router as custom_fields_router
    from donotcontact.api import router as donotcontact_router
    from events.api import router as events_router
    from imports.api import router as imports_router
    from members.api import router as members_router
    from segments.api import router as segments_router
    from tags.api import router as tags_router
    from webhooks.api import router as webhooks_router

    api.add_router("/", members_router)
    api.add_router("/", customers_router)
    api.add_router("/", custom_fields_router)
    api.add_router("/", tags_router)
    api.add_router("/", events_router)
    api.add_router("/", segments_router)
    api.add_router("/", imports_router)
    api.add_router("/", donotcontact_router)
    api.add_router("/", webhooks_router)


_mount_routers()
