"""Configuration → Events (the catalog) and a customer's event timeline."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from customers.selectors import customer_get
from events.selectors import CATALOG_SORTS, customer_timeline, event_catalog
from members.access import member_required
from workbench.http import MemberRequest


@member_required
@require_GET
def event_list(request: MemberRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:100]
    kind = request.GET.get("kind", "")
    sort = request.GET.get("sort", "name")
    sort = sort if sort in CATALOG_SORTS else "name"
    ctx = {
        "event_types": event_catalog(q=q, kind=kind, sort=sort),
        "q": q,
        "kind": kind,
        "sort": sort,
    }
    return render(request, "events/list.html#rows" if request.htmx else "events/list.html", ctx)


@member_required
@require_GET
def customer_events(request: MemberRequest, pk: int) -> HttpResponse:
    customer = customer_get(pk)
    ctx = {
        "customer": customer,
        **customer_timeline(customer.pk, request.GET.get("name", ""), request.GET.get("cursor")),
    }
    if request.htmx:
        # "Older events" appends a page; the name filter swaps the whole timeline.
        part = "page" if request.GET.get("cursor") else "timeline"
        return render(request, f"events/timeline.html#{part}", ctx)
    return render(request, "events/timeline.html", ctx)
