from __future__ import annotations

from django.http import HttpRequest

from workbench.navigation import sidebar_for


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"sidebar": sidebar_for(user), "current_path": request.path}
