"""Configuration → Do Not Contact: every member may look, Marketers and Admins may add, remove
and export. The list is one page with a partial (#results) that filters, sorts and pages
through htmx and as plain links; adding happens in the list's first row."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from activity.services import Actor
from donotcontact import selectors, services
from donotcontact.export import (
    CONTENT_TYPES,
    XLSX_MAX_ROWS,
    entries_csv,
    entries_xlsx,
)
from donotcontact.filters import CHANNEL_CHOICES, EVERY, entries_filtered
from donotcontact.forms import EntryForm, SelectionForm
from donotcontact.models import Entry, Source
from members.access import marketer_required, member_required
from workbench.http import MemberRequest

CHANGED_EVENT = "dnc-changed"  # sent after an add, so other regions can refresh themselves
FILTER_KEYS = ("q", "contact", "channel", "source", "sender", "account", "added_from", "added_to")

# The list's columns in order: (sort key, header).
COLUMNS = (
    ("contact", "Contact"),
    ("channel", "Channel"),
    ("sender", "Sender"),
    ("account", "Account"),
    ("source", "Source"),
    ("added", "Added"),
)
# Reason and note share the last column: one header, a sort link for each.
TEXT_COLUMNS = (("reason", "Reason"), ("note", "Note"))


def _filter_query(params: QueryDict) -> QueryDict:
    """Only the filter's own parameters (no sort, no cursor)."""
    query = QueryDict(mutable=True)
    for key in FILTER_KEYS:
        values = [v for v in params.getlist(key) if v.strip()]
        if values:
            query.setlist(key, values)
    return query


def _headers(
    filter_query: QueryDict, sort: str, columns: tuple[tuple[str, str], ...] = COLUMNS
) -> list[dict]:
    headers = []
    for key, label in columns:
        current = sort.lstrip("-") == key
        descending = sort.startswith("-")
        # A first click sorts the dates newest first, text A–Z.
        first = f"-{key}" if key == "added" else key
        following = (key if descending else f"-{key}") if current else first
        query = filter_query.copy()
        query["sort"] = following
        headers.append(
            {
                "key": key,
                "label": label,
                "url": f"{reverse('dnc-list')}?{query.urlencode()}",
                "order": ("descending" if descending else "ascending") if current else "",
            }
        )
    return headers


def _list_context(params: QueryDict, form: EntryForm | None = None) -> dict:
    filterset, qs = entries_filtered(params)
    sort = selectors.sort_from(params.get("sort"))
    page = selectors.entry_page(qs, sort=sort, after=params.get("after", ""))
    filter_query = _filter_query(params)
    sorted_query = filter_query.copy()
    if sort != selectors.DEFAULT_SORT:
        sorted_query["sort"] = sort
    form_data = filterset.form.data
    without_contact = sorted_query.copy()
    without_contact.pop("contact", None)
    return {
        "filter": filterset,
        "page": page,
        "sort": sort,
        "headers": _headers(filter_query, sort),
        "text_headers": _headers(filter_query, sort, TEXT_COLUMNS),
        "query": sorted_query.urlencode(),
        "filter_query": filter_query.urlencode(),
        "filtered": bool(filter_query),
        "without_contact": f"{reverse('dnc-list')}?{without_contact.urlencode()}",
        "form": form or EntryForm(),
        "chosen": {key: form_data.getlist(key) for key in FILTER_KEYS if key in form_data},
        "channel_choices": CHANNEL_CHOICES,
        "source_choices": Source.choices,
        "senders": selectors.sender_choices(),
        "accounts": selectors.account_choices(),
        "every": EVERY,
    }


@member_required
@require_GET
def dnc_list(request: MemberRequest) -> HttpResponse:
    context = _list_context(request.GET)
    if request.htmx:
        return render(request, "donotcontact/list.html#results", context)
    context["recent_imports"] = selectors.entry_imports_recent()
    return render(request, "donotcontact/list.html", context)


def _back(filter_query: str) -> str:
    """The list with the filter a form carried; re-encoded, so only filter parameters (never
    raw text from the request) reach the redirect."""
    url = reverse("dnc-list")
    query = _filter_query(QueryDict(filter_query[:4000])).urlencode()
    return f"{url}?{query}" if query else url


@marketer_required
@require_http_methods(["GET", "POST"])
def dnc_add(request: MemberRequest) -> HttpResponse:
    filter_query = request.POST.get("filter", "")[:4000]
    if request.method == "GET":  # e.g. reloading the page after a refused entry
        return redirect("dnc-list")
    form = EntryForm(request.POST)
    added = None
    if form.is_valid():
        data = form.cleaned_data
        result = services.entries_add(
            entries=[data["entry"]],
            source=Source.MANUAL,
            reason=data["reason"],
            note=data["note"],
            actor=Actor.for_request(request),
        )
        entry = data["entry"]
        label = str(Entry(contact=entry.contact, channel=entry.channel))
        added = (
            f"Added {label} to the list."
            if result.added
            else f"{label} is already on the list; nothing changed."
        )
        if not request.htmx:
            messages.success(request, added)
            return redirect(_back(filter_query))
    params = QueryDict(filter_query)
    if request.htmx:
        context = _list_context(params, None if added else form)
        context["added_message"] = added
        response = render(request, "donotcontact/list.html#results", context)
        if added:
            trigger_client_event(response, CHANGED_EVENT)
        return response
    return render(request, "donotcontact/list.html", _list_context(params, form))


@marketer_required
@require_http_methods(["GET", "POST"])
def dnc_remove(request: MemberRequest, pk: int) -> HttpResponse:
    entry = selectors.entry_get(pk)
    filter_query = (request.POST.get("filter") or request.GET.get("filter", ""))[:4000]
    if request.method == "POST":
        services.entry_remove(entry=entry, actor=Actor.for_request(request))
        messages.success(request, f"Removed {entry} from the Do Not Contact list.")
        return redirect(_back(filter_query))
    context = {"entry": entry, "filter_query": filter_query, "back": _back(filter_query)}
    template = (
        "donotcontact/delete.html#confirm-one" if request.htmx else "donotcontact/delete.html"
    )
    return render(request, template, context)


def _selection(form: SelectionForm):
    if form.cleaned_data["all"]:
        _, qs = entries_filtered(form.filter_params())
        return qs
    return Entry.objects.filter(pk__in=form.cleaned_data["ids"])


@marketer_required
@require_POST
def dnc_bulk(request: MemberRequest) -> HttpResponse:
    """Delete the ticked entries or all matching the filter, after a confirmation."""
    form = SelectionForm(request.POST)
    back = _back(request.POST.get("filter", "")[:4000])
    if not form.is_valid():
        messages.error(request, " ".join(form.non_field_errors()) or "Invalid selection.")
        return redirect(back)
    qs = _selection(form)
    if request.POST.get("action") != "delete":
        messages.error(request, "Unknown action.")
        return redirect(back)
    if request.POST.get("confirm") != "yes":
        context = {
            "total": selectors.entry_count(qs),
            "ids": form.cleaned_data["ids"],
            "all": form.cleaned_data["all"],
            "filter_query": form.cleaned_data["filter"],
            "back": back,
        }
        return render(request, "donotcontact/delete.html", context)
    removed = services.entries_remove_matching(qs, actor=Actor.for_request(request))
    messages.success(request, f"Removed {removed:,} entr{'ies' if removed != 1 else 'y'}.")
    return redirect(back)


@marketer_required
@require_http_methods(["GET", "POST"])
def dnc_export(request: MemberRequest) -> HttpResponse:
    """CSV (streamed) or XLSX of the ticked entries or all matching the filter. A GET exports
    everything matching the filter in its query string (a plain link)."""
    if request.method == "POST":
        form = SelectionForm(request.POST)
        back = _back(request.POST.get("filter", "")[:4000])
        if not form.is_valid():
            messages.error(request, " ".join(form.non_field_errors()) or "Invalid selection.")
            return redirect(back)
        qs = _selection(form)
        fmt = request.POST.get("format", "csv")
    else:
        filterset, qs = entries_filtered(request.GET)
        back = _back(_filter_query(request.GET).urlencode())
        if not filterset.is_valid():
            messages.error(request, "Fix the filter before exporting.")
            return redirect(back)
        fmt = request.GET.get("format", "csv")
    if fmt not in CONTENT_TYPES:
        messages.error(request, "Choose CSV or XLSX.")
        return redirect(back)
    total = selectors.entry_count(qs)
    if fmt == "xlsx" and total.value > XLSX_MAX_ROWS:
        messages.error(
            request,
            f"About {total.value:,} entries match: more than a spreadsheet holds. Export CSV,"
            " or narrow the filter.",
        )
        return redirect(back)
    services.entries_exported(count=total.value, fmt=fmt, actor=Actor.for_request(request))
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    filename = f"do-not-contact-{stamp}.{fmt}"
    if fmt == "xlsx":
        return FileResponse(
            entries_xlsx(qs), as_attachment=True, filename=filename, content_type=CONTENT_TYPES[fmt]
        )
    response = StreamingHttpResponse(entries_csv(qs), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
