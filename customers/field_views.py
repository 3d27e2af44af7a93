"""Configuration → Custom fields (Admins only)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from activity.services import Actor
from customers import field_selectors as selectors
from customers import services
from customers.field_forms import CustomFieldCreateForm, CustomFieldRenameForm
from customers.services import CustomFieldInvalid
from members.access import admin_required
from workbench.http import MemberRequest


@admin_required
@require_http_methods(["GET", "POST"])
def field_list(request: MemberRequest) -> HttpResponse:
    form = CustomFieldCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            field = services.custom_field_create(
                label=form.cleaned_data["label"],
                type=form.cleaned_data["type"],
                actor=Actor.for_request(request),
            )
        except CustomFieldInvalid as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"Custom field “{field.label}” created. Its name is {field.key}; the name "
                "stays the same if you rename the label.",
            )
            return redirect("custom-field-list")
    context = {"fields": selectors.custom_fields_live(), "form": form}
    return render(request, "customers/field_list.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def field_edit(request: MemberRequest, pk: int) -> HttpResponse:
    field = selectors.custom_field_get(pk)
    form = CustomFieldRenameForm(request.POST or None, initial={"label": field.label})
    if request.method == "POST" and form.is_valid():
        old = field.label
        try:
            services.custom_field_rename(
                field=field, label=form.cleaned_data["label"], actor=Actor.for_request(request)
            )
        except CustomFieldInvalid as exc:
            form.add_error("label", str(exc))
        else:
            messages.success(request, f"“{old}” is now labelled “{field.label}”.")
            return redirect("custom-field-list")
    return render(request, "customers/field_edit.html", {"field": field, "form": form})


@admin_required
@require_GET
def field_stats(request: MemberRequest, pk: int) -> HttpResponse:
    """The lazily loaded figures for one field. Without htmx (the "Count values" link) the
    field's page, with the figures filled in."""
    field = selectors.custom_field_get(pk)
    context = {"field": field, "stats": selectors.custom_field_stats(field)}
    if request.htmx:
        return render(request, "customers/field_list.html#stats", context)
    context["form"] = CustomFieldRenameForm(initial={"label": field.label})
    return render(request, "customers/field_edit.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def field_delete(request: MemberRequest, pk: int) -> HttpResponse:
    field = selectors.custom_field_get(pk)
    if request.method == "POST":
        services.custom_field_delete(field=field, actor=Actor.for_request(request))
        selectors.custom_field_stats_forget(field)
        messages.success(
            request,
            f"Custom field “{field.label}” deleted. Its values are being removed in the "
            "background.",
        )
        return redirect("custom-field-list")
    context = {"field": field, "holders": selectors.custom_field_holders(field)}
    template = (
        "customers/field_delete.html#confirm" if request.htmx else "customers/field_delete.html"
    )
    return render(request, template, context)
