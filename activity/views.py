"""Configuration → Activity: the change log (Marketers and Admins)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from activity import selectors
from activity.actions import ACTION_LABELS, TARGET_TYPES
from members.access import marketer_required
from tags.models import Source
from workbench.http import MemberRequest

_ACTION_RE = re.compile(r"[a-z_]{1,19}\.[a-z_]{1,20}")


def _filters(params) -> dict[str, str]:
    """Only known values pass; anything else means "no filter"."""
    source = params.get("source", "")
    target_type = params.get("target_type", "")
    action = params.get("action", "")
    return {
        "source": source if source in Source.values else "",
        "target_type": target_type if target_type in TARGET_TYPES else "",
        "action": action if _ACTION_RE.fullmatch(action) else "",
    }


@marketer_required
@require_GET
def activity_list(request: MemberRequest) -> HttpResponse:
    filters = _filters(request.GET)
    page = selectors.activity_page(**filters, before=request.GET.get("before"))
    actions = sorted(ACTION_LABELS.items(), key=lambda item: item[1])
    if filters["action"] and filters["action"] not in ACTION_LABELS:
        actions.append((filters["action"], filters["action"]))
    context = {
        "page": page,
        "filters": filters,
        "filter_query": urlencode({k: v for k, v in filters.items() if v}),
        "sources": Source.choices,
        "target_types": TARGET_TYPES.items(),
        "actions": actions,
        "paged": bool(request.GET.get("before")),
    }
    template = "activity/list.html#results" if request.htmx else "activity/list.html"
    return render(request, template, context)
