from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from customers.selectors import customer_total, customers_for_palette
from members.access import member_required
from members.models import Member
from workbench.http import MemberRequest
from workbench.navigation import palette_match


@member_required
@require_GET
def home(request: MemberRequest) -> HttpResponse:
    context = {
        "customer_total": customer_total(),
        "member_count": Member.objects.filter(is_active=True).count(),
    }
    return render(request, "home.html", context)


@member_required
@require_GET
def palette(request: MemberRequest) -> HttpResponse:
    """Command palette results (an htmx partial): pages, actions and customers by id or e-mail."""
    q = request.GET.get("q", "")[:200]
    context = {
        "q": q,
        "entries": palette_match(request.user, q),
        "customers": customers_for_palette(q),
    }
    return render(request, "components/palette.html#results", context)
