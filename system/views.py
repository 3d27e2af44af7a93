from __future__ import annotations

import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from members.access import admin_required
from system import selectors, services
from webhooks.selectors import endpoints_disabled_count
from workbench.http import MemberRequest


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = selectors.database_status()
    redis = selectors.redis_status()
    healthy = database.ok and redis.ok
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": "ok" if database.ok else "unavailable",
        "redis": "ok" if redis.ok else "unavailable",
    }
    return JsonResponse(body, status=200 if healthy else 503)


@admin_required
@require_GET
def status(request: MemberRequest) -> HttpResponse:
    context = {
        "engines": [selectors.database_status(), selectors.redis_status()],
        "embedded": {
            "PostgreSQL": bool(os.environ.get("WORKBENCH_EMBEDDED_POSTGRES")),
            "Redis": bool(os.environ.get("WORKBENCH_EMBEDDED_REDIS")),
        },
        "queues": selectors.queue_depths(),
        "checks": selectors.recent_worker_checks(),
        "environment": settings.WORKBENCH_ENV,
        "webhooks_disabled": endpoints_disabled_count(),
    }
    template = "system/status.html#checks" if request.htmx else "system/status.html"
    return render(request, template, context)


@admin_required
@require_POST
def worker_check(request: MemberRequest) -> HttpResponse:
    queue = request.POST.get("queue", settings.QUEUE_SHORT)
    if queue not in (settings.QUEUE_SHORT, settings.QUEUE_LONG):
        queue = settings.QUEUE_SHORT
    services.worker_check_request(queue=queue, requested_by=request.user)
    if request.htmx:
        return render(
            request, "system/status.html#checks", {"checks": selectors.recent_worker_checks()}
        )
    return redirect("system-status")
