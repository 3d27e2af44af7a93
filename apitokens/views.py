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

NEW_TOKEN_KEY = "apitokens:new"  # noqa: S105 (a session key, not a secret)


@admin_required
@require_http_methods(["GET", "POST"])
def token_list(request: MemberRequest) -> HttpResponse:
    form = ApiTokenCreateForm(request.POST or None, initial={"member": request.user.pk})
    if request.method == "POST" and form.is_valid():
        token, plaintext = services.api_token_create(created_by=request.user, **form.cleaned_data)
        # Post/Redirect/Get: a reload must not create a second token. The plaintext rides in
        # the session for exactly one page view.
        request.session[NEW_TOKEN_KEY] = [token.pk, plaintext]
        return redirect("api-token-list")
    created = None
    if request.method == "GET" and (new := request.session.pop(NEW_TOKEN_KEY, None)):
        token = ApiToken.objects.filter(pk=new[0]).first()
        created = (token, new[1]) if token else None
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
