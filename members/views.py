from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from members import services, throttle
from members.access import admin_required, member_required
from members.forms import LoginForm, MemberCreateForm, MemberUpdateForm, ProfileForm
from members.models import Member
from members.roles import DESCRIPTIONS, Role
from workbench.http import HtmxHttpRequest, MemberRequest, client_ip


def _next_url(request: HtmxHttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return "/"


@require_http_methods(["GET", "POST"])
def login_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.method == "GET":
        return redirect(_next_url(request))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].lower()
        ip = client_ip(request)
        state = throttle.login_throttle_state(email, ip)
        if state.blocked:
            minutes = max(1, round(state.retry_after / 60))
            form.add_error(None, f"Too many failed sign-in attempts. Try again in {minutes} min.")
            status = 429
        else:
            user = authenticate(request, email=email, password=form.cleaned_data["password"])
            if user is None:
                throttle.login_failure_record(email, ip)
                form.add_error(None, "That e-mail and password do not match an active member.")
                status = 400
            else:
                throttle.login_success_record(email, ip)
                login(request, user)
                return redirect(_next_url(request))
    response = render(request, "members/login.html", {"form": form, "next": _next_url(request)})
    response.status_code = status
    if status == 429:
        response["Retry-After"] = str(state.retry_after)
    return response


@require_POST
def logout_view(request: HtmxHttpRequest) -> HttpResponse:
    logout(request)
    return redirect("login")


@member_required
@require_http_methods(["GET", "POST"])
def profile(request: MemberRequest) -> HttpResponse:
    member = request.user
    form = ProfileForm(instance=member)
    password_form = PasswordChangeForm(member)
    if request.method == "POST" and request.POST.get("action") == "password":
        password_form = PasswordChangeForm(member, request.POST)
        if password_form.is_valid():
            password_form.save()
            update_session_auth_hash(request, member)
            messages.success(request, "Your password was changed.")
            return redirect("profile")
    elif request.method == "POST":
        form = ProfileForm(request.POST, instance=Member.objects.get(pk=member.pk))
        if form.is_valid():
            services.profile_update(
                member=member,
                name=form.cleaned_data["name"],
                timezone=form.cleaned_data["timezone"],
            )
            messages.success(request, "Profile saved.")
            return redirect("profile")
    # Django's form autofocuses "Old password"; on this page the profile form comes first.
    password_form.fields["old_password"].widget.attrs.pop("autofocus", None)
    return render(request, "members/profile.html", {"form": form, "password_form": password_form})


@admin_required
@require_http_methods(["GET", "POST"])
def member_list(request: MemberRequest) -> HttpResponse:
    form = MemberCreateForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.member_create(**form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            form = MemberCreateForm()
    context = {
        "members": Member.objects.all(),
        "form": form,
        "created": created,
        "roles": [(Role(r), DESCRIPTIONS[Role(r)]) for r in Role],
    }
    if request.htmx and request.method == "POST":
        return render(request, "members/list.html#members", context)
    return render(request, "members/list.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def member_edit(request: MemberRequest, pk: int) -> HttpResponse:
    member = get_object_or_404(Member, pk=pk)
    # The form validates into a copy: the service must still see the stored role to protect
    # the last Admin.
    form = MemberUpdateForm(request.POST or None, instance=Member.objects.get(pk=pk))
    new_password = None
    if request.method == "POST" and request.POST.get("action") == "reset-password":
        new_password = services.member_reset_password(member=member)
        form = MemberUpdateForm(instance=member)
    elif request.method == "POST" and form.is_valid():
        try:
            services.member_update(member=member, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc.messages[0])
        else:
            messages.success(request, f"{member.email} saved.")
            return redirect("member-list")
    return render(
        request,
        "members/edit.html",
        {"member_obj": member, "form": form, "new_password": new_password},
    )
