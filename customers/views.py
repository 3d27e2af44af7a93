from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from customers import selectors
from customers.models import Customer
from members.access import member_required
from workbench.http import MemberRequest


@member_required
@require_GET
def customer_list(request: MemberRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    try:
        before = int(request.GET["before"]) if request.GET.get("before") else None
    except ValueError:
        before = None
    page = selectors.customer_page(q=q, before=before)
    template = "customers/list.html#results" if request.htmx else "customers/list.html"
    return render(request, template, {"page": page, "q": q})


@member_required
@require_GET
def customer_detail(request: MemberRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=pk)
    return render(request, "customers/detail.html", {"customer": customer})
