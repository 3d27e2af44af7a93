"""View guards. Every page and every htmx partial goes through one of these, so a client that
requests a partial URL directly meets the same check as the page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from members.roles import Role


def role_required(minimum: str = Role.VIEWER) -> Callable:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                if getattr(request, "htmx", False):
                    # A redirect would be swapped into the page; ask htmx to navigate instead.
                    # Come back to the page the member was on, not to the partial's URL.
                    page = request.htmx.current_url_abs_path or "/"
                    response = HttpResponse(status=401)
                    response["HX-Redirect"] = redirect_to_login(page).url
                    return response
                return redirect_to_login(request.get_full_path())
            if not user.has_role(minimum):
                raise PermissionDenied(f"This needs the {Role(minimum).label} role.")
            return view(request, *args, **kwargs)

        wrapper.minimum_role = minimum  # type: ignore[attr-defined]  # read by the URL sweep test
        return wrapper

    return decorator


member_required = role_required(Role.VIEWER)
marketer_required = role_required(Role.MARKETER)
admin_required = role_required(Role.ADMIN)
