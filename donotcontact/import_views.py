"""The Do Not Contact import wizard: upload → start row and columns → analysis → accounts →
import (progress polled over htmx). Views parse input, call one service, render."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from activity.services import Actor
from donotcontact import importing
from donotcontact.filereader import FileRejected, too_big_message
from donotcontact.import_forms import ALL_ACCOUNTS, TARGET_CHOICES, AccountsForm, MappingForm
from donotcontact.models import EntryImport, ImportStatus
from donotcontact.selectors import account_choices
from imports.reader import size_text
from imports.uploads import limit_uploads
from members.access import marketer_required, member_required
from workbench.http import MemberRequest


def _get(pk: int) -> EntryImport:
    imp = EntryImport.objects.select_related("created_by").filter(pk=pk).first()
    if imp is None:
        raise Http404
    return imp


def _editable(pk: int) -> EntryImport:
    """An import still in the wizard (not started)."""
    imp = _get(pk)
    if imp.status not in (ImportStatus.DRAFT, ImportStatus.ANALYZED):
        raise Http404
    return imp


# --- 1. upload -------------------------------------------------------------------------------


@csrf_exempt  # the upload handler must be in place before the body is read; CSRF is checked below
@marketer_required
@require_http_methods(["GET", "POST"])
def dnc_import_new(request: MemberRequest) -> HttpResponse:
    if request.method == "POST":
        limit_uploads(request, max_bytes=settings.DNC_IMPORT_MAX_BYTES)
        return _upload(request)
    return render(request, "donotcontact/import_new.html", _new_context())


@csrf_protect
def _upload(request: MemberRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if getattr(request, "upload_too_big", False):
        error = too_big_message()
    elif upload is None:
        error = "Choose a file to upload."
    else:
        try:
            imp = importing.entry_import_upload(
                chunks=upload.chunks(), file_name=upload.name, actor=Actor.for_request(request)
            )
        except FileRejected as exc:
            error = exc.message
        else:
            return redirect("dnc-import-map", imp.pk)
    return render(request, "donotcontact/import_new.html", _new_context(error), status=422)


def _new_context(error: str = "") -> dict:
    return {
        "error": error,
        "max_size": size_text(settings.DNC_IMPORT_MAX_BYTES),
        "max_expanded": size_text(settings.DNC_IMPORT_MAX_EXPANDED),
    }


# --- 2. start row and columns ----------------------------------------------------------------


def _start_row(value: str | None, default: int) -> int:
    try:
        return max(1, min(int(value or default), 1_000_000))
    except ValueError:
        return default


def _targets(data, columns: int) -> dict[int, str]:
    """The column targets chosen on the page (target-0 … target-N), without "skip"."""
    allowed = {value for value, _ in TARGET_CHOICES} - {"skip"}
    chosen = {i: data.get(f"target-{i}", "skip") for i in range(columns)}
    return {i: t for i, t in chosen.items() if t in allowed}


def _map_context(
    imp: EntryImport, form: MappingForm, start_row: int, targets: dict[int, str] | None = None
) -> dict:
    preview = importing.import_preview(imp, start_row)
    if targets is None:
        targets = {index: target for target, index in imp.mapping.items() if index is not None}
    columns = [
        {"index": i, "letter": _letter(i), "target": targets.get(i, "skip")}
        for i in range(preview["columns"])
    ]
    labels = dict(TARGET_CHOICES)
    mapped = [
        {"target": t, "label": labels[t], "letter": _letter(i)}
        for i, t in sorted(targets.items())
        if i < preview["columns"]
    ]
    return {
        "imp": imp,
        "form": form,
        "start_row": start_row,
        "preview": preview["rows"],
        "columns": columns,
        "column_count": preview["columns"],
        "mapped": mapped,
        "choices": TARGET_CHOICES,
        "ignored": imp.file_info.get("ignored", []),
    }


def _letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: the column names a spreadsheet shows."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


@marketer_required
@require_http_methods(["GET", "POST"])
def dnc_import_map(request: MemberRequest, pk: int) -> HttpResponse:
    imp = _editable(pk)
    if request.method == "GET":
        start_row = _start_row(request.GET.get("start_row"), imp.start_row)
        columns = importing.import_preview(imp, start_row)["columns"]
        form = MappingForm(columns=columns, initial={"start_row": start_row})
        if request.htmx:
            # The start row or a column changed, or a mapping was undone ("clear"): show the
            # rows from the start row with the choices made so far.
            targets = _targets(request.GET, columns)
            clear = request.GET.get("clear")
            targets = {i: t for i, t in targets.items() if t != clear}
            context = _map_context(imp, form, start_row, targets)
            return render(request, "donotcontact/import_map.html#mapping", context)
        return render(request, "donotcontact/import_map.html", _map_context(imp, form, start_row))
    try:
        columns = int(request.POST.get("columns") or 0)
    except ValueError:
        columns = 0  # a tampered form: the form then finds no column to map
    form = MappingForm(request.POST, columns=max(0, min(columns, 200)))
    start_row = _start_row(request.POST.get("start_row"), imp.start_row)
    if form.is_valid():
        try:
            importing.entry_import_configure(
                imp=imp,
                start_row=form.cleaned_data["start_row"],
                mapping=form.cleaned_data["mapping"],
                columns=form.columns,
            )
            importing.entry_import_analyze_start(imp=imp)
        except importing.ImportInvalid as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("dnc-import-detail", imp.pk)
    context = _map_context(imp, form, start_row, _targets(request.POST, form.columns))
    return render(request, "donotcontact/import_map.html", context, status=422)


# --- 3–5. analysis, accounts, import ---------------------------------------------------------


def _detail_context(imp: EntryImport) -> dict:
    existing = account_choices()
    return {
        "imp": imp,
        "form": AccountsForm(existing=existing, initial={"account": [ALL_ACCOUNTS]}),
        "existing_accounts": existing,
        "all_accounts": ALL_ACCOUNTS,
    }


@member_required  # any role may follow an import's progress and read its results
@require_GET
def dnc_import_detail(request: MemberRequest, pk: int) -> HttpResponse:
    imp = _get(pk)
    template = (
        "donotcontact/import_detail.html#status"
        if request.htmx
        else "donotcontact/import_detail.html"
    )
    response = render(request, template, _detail_context(imp))
    if request.htmx and imp.finished:
        # The poll that sees the end is the last one: let the bell pick up the notification.
        trigger_client_event(response, "notifications-changed")
    return response


@marketer_required
@require_POST
def dnc_import_run(request: MemberRequest, pk: int) -> HttpResponse:
    imp = _get(pk)
    form = AccountsForm(request.POST, existing=account_choices())
    if not form.is_valid():
        # Back to the page with the reason, as the customer import does: the page shows the
        # import as it now is (a second click on Import finds it already running).
        messages.error(request, " ".join(form.non_field_errors() or ["Check the accounts."]))
        return redirect("dnc-import-detail", imp.pk)
    try:
        importing.entry_import_start(
            imp=imp, accounts=form.cleaned_data["accounts"], actor=Actor.for_request(request)
        )
    except importing.ImportInvalid as exc:
        messages.error(request, exc.message)
    return redirect("dnc-import-detail", imp.pk)
