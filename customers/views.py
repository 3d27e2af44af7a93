from __future__ import annotations

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from activity.selectors import activity_for_customer
from activity.services import Actor, activity_record
from customers import selectors, services
from customers.columns import available_columns, chosen_columns, columns_save
from customers.custom_fields import custom_field_specs, display_custom_value
from customers.export import customers_csv
from customers.filters import customers_filtered, sort_from
from customers.forms import CustomerForm, SelectionForm
from customers.models import Customer
from customers.profile import ANALYTICS_FIELDS, ProfileInvalid, profile_clean
from donotcontact.models import Channel
from donotcontact.selectors import customer_dnc_status
from events.selectors import customer_timeline
from exports.views import export_new
from members.access import marketer_required, member_required
from members.models import timezone_choices
from tags.models import CustomerTag, Tag
from tags.selectors import tags_named
from tags.services import (
    TagInvalid,
    customer_tags_add,
    customer_tags_remove,
    customers_tag,
    customers_untag,
    tags_ensure,
)
from workbench.http import MemberRequest

COUNTRIES_CACHE_SECONDS = 300


def _countries() -> list[str]:
    """Distinct countries for the filter's suggestions, cached: a scan at a million rows."""
    countries = cache.get("customers:countries")
    if countries is None:
        countries = list(
            Customer.objects.exclude(country="")
            .order_by("country")
            .values_list("country", flat=True)
            .distinct()[:500]
        )
        cache.set("customers:countries", countries, COUNTRIES_CACHE_SECONDS)
    return countries


def _with_tags(rows: list[Customer]) -> list[Customer]:
    assignments = CustomerTag.objects.filter(customer__in=rows).select_related("tag")
    by_customer: dict[int, list[Tag]] = {}
    for a in sorted(assignments, key=lambda a: a.tag.name.lower()):
        by_customer.setdefault(a.customer_id, []).append(a.tag)
    for row in rows:
        row.tag_list = by_customer.get(row.pk, [])
    return rows


def _list_context(request: MemberRequest) -> dict:
    params = request.GET
    filterset, qs = customers_filtered(params)
    sort = sort_from(params)
    page = selectors.customer_page(qs, sort=sort, after=params.get("after", ""))
    _with_tags(page.rows)
    custom = custom_field_specs()
    available = available_columns(custom)
    columns = chosen_columns(request.user, available)
    query = params.copy()
    query.pop("after", None)
    return {
        "filter": filterset,
        "page": page,
        "sort": sort,
        "sorts": selectors.SORTS,
        "rows": [(c, [col.value(c, custom) for col in columns]) for c in page.rows],
        "columns": columns,
        "available_columns": available.values(),
        "chosen_keys": {c.key for c in columns},
        "query": query.urlencode(),
        "filtered": any(v for k, v in params.items() if k not in ("sort", "after")),
        "all_tags": Tag.objects.all(),
        "countries": _countries(),
    }


@member_required
@require_http_methods(["GET"])
def customer_list(request: MemberRequest) -> HttpResponse:
    context = _list_context(request)
    template = "customers/list.html#results" if request.htmx else "customers/list.html"
    return render(request, template, context)


@member_required
@require_POST
def customer_columns(request: MemberRequest) -> HttpResponse:
    available = available_columns(custom_field_specs())
    columns_save(request.user, request.POST.getlist("columns"), available)
    return redirect(f"{reverse('customer-list')}?{request.POST.get('query', '')}")


@marketer_required
@require_POST
def customer_bulk(request: MemberRequest) -> HttpResponse:
    """Tag, untag, export or erase the selected customers (ticked or all matching)."""
    form = SelectionForm(request.POST)
    back = f"{reverse('customer-list')}?{request.POST.get('filter', '')}"
    if not form.is_valid():
        messages.error(request, " ".join(form.non_field_errors()) or "Invalid selection.")
        return redirect(back)
    if form.cleaned_data["all"]:
        _, qs = customers_filtered(form.filter_params())
    else:
        qs = Customer.objects.filter(pk__in=form.cleaned_data["ids"])
    actor = Actor.for_request(request)
    action = request.POST.get("action")
    if action == "export" and request.POST.get("format"):
        # Format and columns chosen: the same export as the Exports form (exports/views.py).
        return export_new(request)
    if action == "export":
        # Scripts post here without a format: today's CSV, every column, streamed.
        leave_out = request.POST.get("leave_out", "")
        if leave_out and leave_out not in Channel.values:
            messages.error(request, f"Unknown channel “{leave_out}”.")
            return redirect(back)
        exported = selectors.customer_count(qs)
        activity_record(
            actor,
            "customers.exported",
            target_type="customer",
            changes={"approximate": exported.estimate},
            count=exported.value,
        )
        response = StreamingHttpResponse(
            customers_csv(qs, custom_field_specs(), leave_out=leave_out),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="customers-{stamp}.csv"'
        return response
    if action == "delete":
        if request.POST.get("confirm") != "yes":
            count = selectors.customer_count(qs)
            return render(
                request,
                "customers/bulk_delete.html",
                {
                    "total": count,
                    "ids": form.cleaned_data["ids"],
                    "all": form.cleaned_data["all"],
                    "filter": request.POST.get("filter", ""),
                    "back": back,
                },
            )
        erased = services.customers_erase(qs, actor)
        messages.success(request, f"Erased {erased:,} customer{'s' if erased != 1 else ''}.")
        return redirect(back)
    if action in ("tag", "untag"):
        names = [n for n in request.POST.get("tags", "").split(",") if n.strip()]
        names += [t.name for t in Tag.objects.filter(pk__in=_ints(request.POST.getlist("tag")))]
        if not names:
            messages.error(request, "Choose or type at least one tag.")
            return redirect(back)
        try:
            if action == "tag":
                tags = tags_ensure(names, actor)
                done = customers_tag(qs, tags, actor)
                verb = "Added"
            else:
                tags = list(tags_named(names))
                done = customers_untag(qs, tags, actor)
                verb = "Removed"
        except TagInvalid as exc:
            messages.error(request, str(exc))
            return redirect(back)
        label = ", ".join(t.name for t in tags) or "—"
        messages.success(request, f"{verb} {label}: {done:,} tag assignment{'s' * (done != 1)}.")
        return redirect(back)
    messages.error(request, "Unknown action.")
    return redirect(back)


def _ints(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


@marketer_required
@require_http_methods(["GET", "POST"])
def customer_new(request: MemberRequest) -> HttpResponse:
    custom = custom_field_specs()
    form = CustomerForm(request.POST or None, custom_fields=custom)
    if request.method == "POST" and form.is_valid():
        try:
            profile = profile_clean(form.profile_data(), custom, lenient=True)
            customer = services.customer_create(
                user_id=form.cleaned_data["user_id"].strip(),
                profile=profile,
                actor=Actor.for_request(request),
            )
        except ProfileInvalid as exc:
            form.add_profile_errors(exc.errors)
        else:
            messages.success(request, f"Customer {customer.user_id} added.")
            return redirect("customer-detail", pk=customer.pk)
    return render(request, "customers/edit.html", {"form": form, "timezones": timezone_choices()})


@member_required
@require_http_methods(["GET"])
def customer_detail(request: MemberRequest, pk: int) -> HttpResponse:
    customer = selectors.customer_get(pk)
    custom = custom_field_specs()
    return render(
        request,
        "customers/detail.html",
        {
            "customer": customer,
            "custom_values": [
                (spec, display_custom_value(spec.type, customer.custom.get(name)))
                for name, spec in custom.items()
            ],
            "analytics": [
                (label, getattr(customer, name), is_time)
                for name, label, is_time in ANALYTICS_FIELDS
            ],
            "activity": activity_for_customer(customer.pk),
            "dnc": customer_dnc_status(customer),
            **customer_timeline(customer.pk),
            **_tags_context(customer),
        },
    )


def _tags_context(customer: Customer) -> dict:
    assignments = (
        CustomerTag.objects.filter(customer=customer)
        .select_related("tag", "added_by")
        .order_by("tag__name")
    )
    return {"customer": customer, "assignments": assignments, "all_tags": Tag.objects.all()}


@marketer_required
@require_http_methods(["GET", "POST"])
def customer_edit(request: MemberRequest, pk: int) -> HttpResponse:
    customer = selectors.customer_get(pk)
    custom = custom_field_specs()
    form = CustomerForm(request.POST or None, custom_fields=custom, customer=customer)
    if request.method == "POST" and form.is_valid():
        try:
            profile = profile_clean(form.profile_data(), custom, lenient=True)
            services.customer_update(
                customer=customer, profile=profile, actor=Actor.for_request(request)
            )
        except ProfileInvalid as exc:
            form.add_profile_errors(exc.errors)
        else:
            messages.success(request, "Changes saved.")
            return redirect("customer-detail", pk=customer.pk)
    return render(
        request,
        "customers/edit.html",
        {"form": form, "customer": customer, "timezones": timezone_choices()},
    )


@marketer_required
@require_http_methods(["GET", "POST"])
def customer_delete(request: MemberRequest, pk: int) -> HttpResponse:
    customer = selectors.customer_get(pk)
    if request.method == "POST":
        services.customer_erase(customer=customer, actor=Actor.for_request(request))
        messages.success(request, "The customer was erased.")
        return redirect("customer-list")
    return render(request, "customers/delete.html", {"customer": customer})


def _render_tags(request: MemberRequest, customer: Customer, error: str = "") -> HttpResponse:
    context = {**_tags_context(customer), "tag_error": error}
    if request.htmx:
        return render(request, "customers/detail.html#tags", context)
    if error:
        messages.error(request, error)
    return redirect("customer-detail", pk=customer.pk)


@marketer_required
@require_POST
def customer_tags(request: MemberRequest, pk: int) -> HttpResponse:
    """Add tags (existing or new, comma-separated) to one customer."""
    customer = selectors.customer_get(pk)
    names = [n for n in request.POST.get("tags", "").split(",") if n.strip()]
    if not names:
        return _render_tags(request, customer, "Type a tag name.")
    try:
        customer_tags_add(customer=customer, names=names, actor=Actor.for_request(request))
    except TagInvalid as exc:
        return _render_tags(request, customer, str(exc))
    return _render_tags(request, customer)


@marketer_required
@require_POST
def customer_tag_remove(request: MemberRequest, pk: int, tag_id: int) -> HttpResponse:
    customer = selectors.customer_get(pk)
    tags = list(Tag.objects.filter(pk=tag_id))
    customer_tags_remove(customer=customer, tags=tags, actor=Actor.for_request(request))
    return _render_tags(request, customer)
