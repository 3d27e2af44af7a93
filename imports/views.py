"""The CSV import wizard (upload → map and options → dry run → import) and the Customer data
importer page. Views parse input, call one service or selector, render."""

from __future__ import annotations

import csv
import io
from itertools import islice

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from activity.services import Actor
from customers.custom_fields import custom_field_specs
from customers.profile import STANDARD_FIELDS
from imports import selectors
from imports.analysis import FileAnalysis, target_choices
from imports.models import Import, ImportStatus
from imports.reader import Dialect, FileRejected, size_text
from imports.report import report_lines, report_response
from imports.services import (
    ImportInvalid,
    default_tag_name,
    import_cancel,
    import_configure,
    import_start,
    import_undo,
    import_upload,
)
from imports.uploads import limit_uploads, too_big_message
from members.access import marketer_required, member_required
from tags.models import Tag
from workbench.http import MemberRequest

REVIEW_ERRORS = 20


def _get(pk: int) -> Import:
    imp = selectors.import_get(pk)
    if imp is None:
        raise Http404
    return imp


def _draft(pk: int) -> Import:
    """An import still in the wizard: a draft, or a finished dry run."""
    imp = _get(pk)
    if imp.status != ImportStatus.DRAFT and not (imp.dry_run and imp.finished):
        raise Http404
    return imp


# --- 1. upload ------------------------------------------------------------------------------


@csrf_exempt  # the upload handler must be in place before the body is read; CSRF is checked below
@marketer_required
@require_http_methods(["GET", "POST"])
def import_new(request: MemberRequest) -> HttpResponse:
    if request.method == "POST":
        limit_uploads(request)
        return _upload(request)
    return render(request, "imports/new.html", _new_context())


@csrf_protect
def _upload(request: MemberRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if getattr(request, "upload_too_big", False):
        error = too_big_message()
    elif upload is None:
        error = "Choose a CSV file to upload."
    else:
        try:
            imp = import_upload(
                chunks=upload.chunks(), file_name=upload.name, actor=Actor.for_request(request)
            )
        except FileRejected as exc:
            error = exc.message
        else:
            return redirect("import-map", imp.pk)
    return render(request, "imports/new.html", _new_context(error), status=422)


def _new_context(error: str = "") -> dict:
    return {
        "error": error,
        "max_size": size_text(settings.IMPORTS_MAX_BYTES),
        "max_columns": settings.IMPORTS_MAX_COLUMNS,
    }


@member_required
@require_GET
def import_sample(request: MemberRequest) -> HttpResponse:
    """A header with id, every standard profile field and every custom field."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(
        ["id", *STANDARD_FIELDS, *(f"custom.{name}" for name in custom_field_specs())]
    )
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="customers-sample.csv"'
    return response


# --- 2–4. analyse, map, options -------------------------------------------------------------


def _map_context(imp: Import, mapping: list[str], error: str = "", field: str = "") -> dict:
    custom = custom_field_specs()
    analysis = FileAnalysis(imp, custom)
    tags = imp.options.get("tags", [])
    default = next((t for t in tags if t.startswith("Import ")), None)
    chosen = {t.lower() for t in tags if t != default}
    existing = list(Tag.objects.order_by("name"))
    return {
        "imp": imp,
        "preview": analysis.preview,
        "columns": analysis.columns(mapping),
        "choices": target_choices(custom),
        "fill_empty": set(imp.options.get("fill_empty", [])),
        "tag_records": default is not None or imp.status == ImportStatus.DRAFT and not tags,
        "default_tag": default or default_tag_name(),
        "existing_tags": existing,
        "chosen_tags": chosen,
        "error": error,
        "error_field": field,
        "dialect": Dialect(imp.encoding, imp.delimiter),
    }


@marketer_required
@require_http_methods(["GET", "POST"])
def import_map(request: MemberRequest, pk: int) -> HttpResponse:
    imp = _draft(pk)
    if request.method == "GET":
        return render(request, "imports/map.html", _map_context(imp, list(imp.mapping)))
    mapping = [request.POST.get(f"target-{i}", "skip") for i in range(len(imp.headers))]
    tags = [t.name for t in Tag.objects.filter(pk__in=_ints(request.POST.getlist("tag")))]
    if request.POST.get("tag_records"):
        tags.insert(0, request.POST.get("default_tag", "").strip() or default_tag_name())
    fill = [h for i, h in enumerate(imp.headers) if request.POST.get(f"mode-{i}") == "fill"]
    try:
        import_configure(imp=imp, mapping=mapping, tags=tags, fill_empty=fill)
        import_start(imp=imp, actor=Actor.for_request(request), dry_run=True)
    except ImportInvalid as exc:
        imp.mapping = mapping
        context = _map_context(imp, mapping, exc.message, exc.field)
        return render(request, "imports/map.html", context, status=422)
    return redirect("import-review", imp.pk)


@marketer_required
@require_GET
def import_column(request: MemberRequest, pk: int, index: int) -> HttpResponse:
    """One column's samples and problems for the target just chosen (htmx)."""
    imp = _draft(pk)
    if not 0 <= index < len(imp.headers):
        raise Http404
    column = FileAnalysis(imp).column(index, request.GET.get(f"target-{index}", "skip"))
    return render(request, "imports/map.html#column-check", {"column": column})


# --- 5–6. dry run, import -------------------------------------------------------------------


@member_required  # any role reads an import's progress and results (as over the API)
@require_GET
def import_review(request: MemberRequest, pk: int) -> HttpResponse:
    imp = _get(pk)
    context = {
        "imp": imp,
        "errors": list(islice(report_lines(imp), REVIEW_ERRORS)) if imp.finished else [],
        "started": request.GET.get("started") == "1",
        "step": 3 if imp.dry_run else 4,
    }
    template = "imports/review.html#review" if request.htmx else "imports/review.html"
    return render(request, template, context)


@marketer_required
@require_POST
def import_run_view(request: MemberRequest, pk: int) -> HttpResponse:
    imp = _draft(pk)
    try:
        import_start(imp=imp, actor=Actor.for_request(request), dry_run=False)
    except ImportInvalid as exc:
        messages.error(request, exc.message)
        return redirect("import-review", imp.pk)
    return redirect(f"{reverse('import-review', args=[imp.pk])}?started=1")


# --- the Customer data importer -------------------------------------------------------------


@member_required
@require_GET
def import_list(request: MemberRequest) -> HttpResponse:
    imports = list(selectors.import_list()[:100])
    context = {
        "imports": imports,
        "live": any(not i.finished for i in imports),
    }
    template = "imports/list.html#table" if request.htmx else "imports/list.html"
    return render(request, template, context)


@marketer_required
@require_POST
def import_action(request: MemberRequest, pk: int, action: str) -> HttpResponse:
    imp = _get(pk)
    service = {"cancel": import_cancel, "undo": import_undo}.get(action)
    if service is None:
        raise Http404
    try:
        service(imp=imp, actor=Actor.for_request(request))
    except ImportInvalid as exc:
        messages.error(request, exc.message)
    else:
        verb = "Cancelling" if action == "cancel" else "Undoing"
        messages.success(request, f"{verb} the import of {imp.file_name}.")
    return redirect("import-list")


@member_required
@require_GET
def import_errors(request: MemberRequest, pk: int) -> HttpResponse:
    return report_response(_get(pk))


def _ints(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]
