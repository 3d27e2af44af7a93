from __future__ import annotations

from collections.abc import Iterator

from django.contrib import messages
from django.http import FileResponse, Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from activity.services import Actor
from customers.custom_fields import custom_field_specs
from customers.export import default_column_keys
from customers.forms import SelectionForm
from exports import selectors
from exports.forms import ExportForm
from exports.models import ExportFormat, ExportSource
from exports.services import Streamed, export_request, exports_dir, stream_max_rows
from exports.sources import (
    Source,
    SourceGone,
    source_columns,
    source_for_segment,
    source_for_selection,
    source_leaving_out,
)
from exports.writers import CONTENT_TYPES
from members.access import marketer_required
from segments.selectors import segment_get
from workbench.http import MemberRequest

SELECTION_KEYS = ("ids", "all", "filter")


def _source(data: QueryDict) -> tuple[Source | None, str]:
    """The export's source from the request, or (None, the reason it is invalid)."""
    if data.get("segment"):
        return source_for_segment(segment_get(data["segment"])), ""
    if not any(key in data for key in SELECTION_KEYS):
        return source_for_selection(ids=[], all_matching=True, filter_query=""), ""
    form = SelectionForm(data)
    if not form.is_valid():
        return None, " ".join(form.non_field_errors()) or "Invalid selection."
    return source_for_selection(
        ids=form.cleaned_data["ids"],
        all_matching=form.cleaned_data["all"],
        filter_query=form.cleaned_data["filter"],
    ), ""


def _hidden_inputs(source: Source, data: QueryDict) -> list[tuple[str, str]]:
    """The source again, as hidden fields of the export form."""
    if source.kind == ExportSource.SEGMENT:
        return [("segment", str(source.query["segment"]))]
    if source.kind == ExportSource.SELECTION:
        return [("ids", str(pk)) for pk in source.query["ids"]]
    return [("all", "on"), ("filter", data.get("filter", ""))]


def _back(source: Source, data: QueryDict) -> str:
    if source.kind == ExportSource.SEGMENT:
        return reverse("segment-detail", args=[source.query["segment"]])
    return f"{reverse('customer-list')}?{data.get('filter', '')}"


def _default_columns(source: Source, custom: dict) -> list[str]:
    """Today's export header, and for a segment the time each member entered it."""
    keys = default_column_keys(custom)
    return [*keys, "entered_at"] if source.kind == ExportSource.SEGMENT else keys


def _send(streamed: Streamed) -> HttpResponse:
    disposition = f'attachment; filename="{streamed.filename}"'
    if isinstance(streamed.content, Iterator):
        response: HttpResponse = StreamingHttpResponse(
            streamed.content, content_type=streamed.content_type
        )
        response["Content-Disposition"] = disposition
        return response
    return FileResponse(
        streamed.content,
        as_attachment=True,
        filename=streamed.filename,
        content_type=streamed.content_type,
    )


@marketer_required
@require_http_methods(["GET", "POST"])
def export_new(request: MemberRequest) -> HttpResponse:
    """Choose the format and the columns, then export: the ticked customers or all matching
    the list's filter (posted from the Customers list), a segment (?segment=<id>), or, with
    neither, every customer. Small sets download at once; large ones are built in the
    background and wait on the Exports page."""
    data = request.POST if request.method == "POST" else request.GET
    source, problem = _source(data)
    if source is None:
        messages.error(request, problem)
        return redirect(f"{reverse('customer-list')}?{data.get('filter', '')}")
    custom = custom_field_specs()
    available = source_columns(source, custom)
    submitted = request.method == "POST" and "format" in data
    form = ExportForm(
        data if submitted else None,
        available=available,
        initial={"format": ExportFormat.CSV, "columns": _default_columns(source, custom)},
    )
    if submitted and form.is_valid():
        try:
            requested = export_request(
                actor=Actor.for_request(request),
                source=source_leaving_out(source, form.cleaned_data["leave_out"]),
                fmt=form.cleaned_data["format"],
                column_keys=form.cleaned_data["columns"],
            )
        except SourceGone:
            raise Http404("No such segment.") from None
        if requested.streamed is not None:
            return _send(requested.streamed)
        messages.success(
            request,
            "The export is being built in the background; download it here when it is ready.",
        )
        return redirect("export-list")
    chosen = form["columns"].value() or []
    context = {
        "form": form,
        "source": source,
        "hidden": _hidden_inputs(source, data),
        "available": available.values(),
        "chosen": set(chosen),
        "back": _back(source, data),
        "stream_max": stream_max_rows(),
    }
    return render(request, "exports/new.html", context)


@marketer_required
@require_GET
def export_list(request: MemberRequest) -> HttpResponse:
    exports = list(selectors.exports_for_member(request.user))
    context = {"exports": exports, "polling": any(e.in_progress for e in exports)}
    template = "exports/list.html#table" if request.htmx else "exports/list.html"
    return render(request, template, context)


@marketer_required
@require_GET
def export_download(request: MemberRequest, pk: int) -> HttpResponse:
    export = selectors.export_get_for_download(request.user, pk)
    stamp = (export.finished_at or export.created_at).strftime("%Y%m%d-%H%M")
    name = (
        f"segment-{export.query.get('segment')}-{stamp}"
        if export.source == ExportSource.SEGMENT
        else f"customers-{stamp}"
    )
    return FileResponse(
        open(exports_dir() / export.file_path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=f"{name}.{export.format}",
        content_type=CONTENT_TYPES[export.format],
    )
