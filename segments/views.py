"""Segment pages: the list, a segment's page (status, rules in words, members), duplicate,
delete, the members CSV, and the customer page's segments card with its "why" explanation.
The builder (new and edit) lives in segments/builder_views.py."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from activity.services import Actor, activity_record
from customers.models import Customer
from customers.selectors import customer_get
from donotcontact.models import Channel
from members.access import marketer_required, member_required
from segments import selectors, services
from segments.charts import sparkline
from segments.describe import DescribeContext, annotate, describe, summary
from segments.explain import explain
from segments.export import members_csv
from segments.models import Segment, SegmentStatus
from segments.rules import RulesInvalid
from webhooks.selectors import endpoints_by_segment
from workbench.http import MemberRequest

# The list's columns in order: (sort key, header). Every column sorts; "description" and
# "used" are not in selectors.SEGMENT_SORTS and sort in Python (there are at most a few
# hundred segments, all on one page).
COLUMNS = (
    ("name", "Name"),
    ("description", "Description"),
    ("size", "Size"),
    ("used", "Used by"),
    ("created", "Created"),
    ("updated", "Updated"),
)
SORT_KEYS = {key for key, _ in COLUMNS} | {f"-{key}" for key, _ in COLUMNS}
HISTORY_DAYS = 30
BUILT_EVENT = "segment-built"  # sent when a polled build finishes; the members list reloads


# --- the list -------------------------------------------------------------------------------


def _sorted(segments: list[Segment], sort: str, used: dict[int, int]) -> list:
    key, descending = sort.lstrip("-"), sort.startswith("-")
    if key == "description":
        segments.sort(key=lambda s: (s.description.lower(), s.name.lower()), reverse=descending)
    elif key == "used":
        segments.sort(key=lambda s: (used.get(s.pk, 0), s.name.lower()), reverse=descending)
    return segments


def _headers(q: str, sort: str) -> list[dict]:
    headers = []
    for key, label in COLUMNS:
        current = sort.lstrip("-") == key
        descending = sort.startswith("-")
        following = f"-{key}" if current and not descending else key
        query = urlencode({k: v for k, v in (("q", q), ("sort", following)) if v})
        headers.append(
            {
                "key": key,
                "label": label,
                "url": f"{reverse('segment-list')}?{query}",
                "order": ("descending" if descending else "ascending") if current else "",
            }
        )
    return headers


def _list_context(request: MemberRequest) -> dict:
    q = request.GET.get("q", "").strip()
    sort = request.GET.get("sort", "name")
    if sort not in SORT_KEYS:
        sort = "name"
    segments = list(selectors.segment_list(q, sort))
    users = selectors.used_by()
    hooks = endpoints_by_segment()
    used = {pk: len(users.get(pk, [])) + len(hooks.get(pk, [])) for pk in users.keys() | hooks}
    _sorted(segments, sort, used)
    histories = selectors.size_histories(segments, HISTORY_DAYS)
    rows = [
        {
            "segment": s,
            "used_by": users.get(s.pk, []),
            "webhooks": hooks.get(s.pk, []),
            "spark": sparkline(histories[s.pk]),
        }
        for s in segments
    ]
    params = {"q": q} if q else {}
    if sort != "name":
        params["sort"] = sort
    return {
        "rows": rows,
        "q": q,
        "sort": sort,
        "headers": _headers(q, sort),
        "computing": any(s.status == SegmentStatus.COMPUTING for s in segments),
        # The rows poll this URL (same search and order) while a segment is being built.
        "self_url": reverse("segment-list") + (f"?{urlencode(params)}" if params else ""),
    }


@member_required
@require_GET
def segment_list(request: MemberRequest) -> HttpResponse:
    template = "segments/list.html#rows" if request.htmx else "segments/list.html"
    return render(request, template, _list_context(request))


# --- a segment's page -----------------------------------------------------------------------


def _members_context(segment: Segment, q: str, cursor: str) -> dict:
    try:
        after = selectors.decode_cursor(cursor) if cursor else None
    except ValueError:
        after = None  # a mangled link: start from the first page
    page = selectors.segment_members(segment, q=q, after=after)
    base = reverse("segment-detail", args=[segment.pk])
    query = {"q": q} if q else {}
    return {
        "members": [(c, c.entered_at) for c in page.members],
        "q": q,
        "paged": after is not None,
        "first_url": f"{base}?{urlencode(query)}" if query else base,
        "next_url": (
            f"{base}?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else ""
        ),
    }


@member_required
@require_GET
def segment_detail(request: MemberRequest, pk: int) -> HttpResponse:
    segment = selectors.segment_get(pk)
    if request.htmx and request.htmx.target == "segment-status":
        # The page polls its status while the segment is being built.
        response = render(request, "segments/detail.html#status", _status_context(segment))
        if segment.status != SegmentStatus.COMPUTING:
            trigger_client_event(response, BUILT_EVENT)
        return response
    members = _members_context(
        segment, request.GET.get("q", "").strip(), request.GET.get("cursor", "")
    )
    if request.htmx:
        return render(request, "segments/detail.html#members", {"segment": segment, **members})
    words = DescribeContext.load(segment.rules)
    context = {
        **_status_context(segment),
        **members,
        "rules": describe(segment.rules, words),
        "rules_summary": summary(segment.rules, words),
        "used_by": services.segment_users(segment),
        "reads": Segment.objects.filter(pk__in=segment.depends_on).order_by("name"),
    }
    return render(request, "segments/detail.html", context)


def _status_context(segment: Segment) -> dict:
    history = selectors.size_histories([segment], HISTORY_DAYS)[segment.pk]
    return {
        "segment": segment,
        "spark": sparkline(history, width=220, height=48),
        "history_days": len(history),
    }


@marketer_required
@require_POST
def segment_duplicate(request: MemberRequest, pk: int) -> HttpResponse:
    segment = selectors.segment_get(pk)
    try:
        copy = services.segment_duplicate(segment=segment, actor=Actor.for_request(request))
    except (RulesInvalid, services.SegmentInvalid) as exc:
        # The original's rules may name a tag or segment deleted since it was saved.
        messages.error(request, f"“{segment.name}” could not be duplicated: {exc}")
        return redirect("segment-detail", pk=segment.pk)
    messages.success(request, f"Duplicated as “{copy.name}”; its members are being computed.")
    return redirect("segment-detail", pk=copy.pk)


@marketer_required
@require_http_methods(["GET", "POST"])
def segment_delete(request: MemberRequest, pk: int) -> HttpResponse:
    segment = selectors.segment_get(pk)
    if request.method == "POST":
        try:
            services.segment_delete(segment=segment, actor=Actor.for_request(request))
        except services.SegmentInUse as exc:
            messages.error(request, f"“{segment.name}” was not deleted. {exc}")
            return redirect("segment-delete", pk=segment.pk)
        messages.success(request, f"Segment “{segment.name}” deleted.")
        return redirect("segment-list")
    context = {"segment": segment, "used_by": services.segment_users(segment)}
    template = "segments/delete.html#confirm" if request.htmx else "segments/delete.html"
    return render(request, template, context)


# --- export ---------------------------------------------------------------------------------


@marketer_required
@require_GET
def segment_export(request: MemberRequest, pk: int) -> HttpResponse:
    segment = selectors.segment_get(pk)
    leave_out = request.GET.get("leave_out", "")
    if leave_out and leave_out not in Channel.values:
        return HttpResponseBadRequest("Unknown channel.", content_type="text/plain")
    activity_record(
        Actor.for_request(request),
        "segment.exported",
        target_type="segment",
        target_id=segment.pk,
        target_label=segment.name,
        count=segment.member_count,
    )
    response = StreamingHttpResponse(
        members_csv(segment, leave_out=leave_out), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="segment-{segment.pk}-{stamp}.csv"'
    return response


# --- the customer page's card ---------------------------------------------------------------


def _card_context(customer: Customer) -> dict:
    return {
        "customer": customer,
        "memberships": selectors.customer_segments(customer),
        "all_segments": Segment.objects.only("id", "name").order_by("name", "id"),
    }


@member_required
@require_GET
def customer_segments(request: MemberRequest, pk: int) -> HttpResponse:
    customer = customer_get(pk)
    why = request.GET.get("why", "")
    if why and not request.htmx:
        # The "Why…?" form without JavaScript: go to the explanation's own page.
        segment = selectors.segment_get(why)
        return redirect("customer-segment-explain", pk=customer.pk, segment_pk=segment.pk)
    template = "segments/customer_card.html#card" if request.htmx else "segments/customer_card.html"
    return render(request, template, _card_context(customer))


@dataclass(frozen=True)
class Verdict:
    member: bool
    matches: bool
    building: bool

    @property
    def settled(self) -> bool:
        return self.member == self.matches


@member_required
@require_GET
def customer_segment_explain(request: MemberRequest, pk: int, segment_pk: int) -> HttpResponse:
    customer = customer_get(pk)
    segment = selectors.segment_get(segment_pk)
    result = explain(segment, customer.pk)
    context = {
        "customer": customer,
        "segment": segment,
        "explained": annotate(result["rules"], DescribeContext.load(segment.rules)),
        "verdict": Verdict(
            member=result["member"],
            matches=result["matches"],
            building=segment.status == SegmentStatus.COMPUTING,
        ),
    }
    if request.htmx:
        return render(request, "segments/customer_card.html#why", context)
    return render(request, "segments/customer_card.html", {**_card_context(customer), **context})
