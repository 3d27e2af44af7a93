from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apitokens import services
from apitokens.forms import ApiTokenCreateForm
from apitokens.models import ApiToken
from members.access import admin_required
from workbench.http import MemberRequest


@admin_required
@require_http_methods(["GET", "POST"])
def token_list(request: MemberRequest) -> HttpResponse:
    form = ApiTokenCreateForm(request.POST or None, initial={"member": request.user.pk})
    created = None
    if request.method == "POST" and form.is_valid():
        created = services.api_token_create(created_by=request.user, **form.cleaned_data)
        form = ApiTokenCreateForm(initial={"member": request.user.pk})
    context = {
        "tokens": ApiToken.objects.select_related("member"),
        "form": form,
        "created": created,
        "rate_limit": settings.API_RATE_LIMIT_PER_MINUTE,
    }
    return render(request, "apitokens/list.html", context)


@admin_required
@require_POST
def token_revoke(request: MemberRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk)
    services.api_token_revoke(token=token)
    messages.success(request, f"Token “{token.name}” revoked. Requests using it now get 401.")
    return redirect("api-token-list")
