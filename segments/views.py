"""Segment pages: the list, a segment's page (status, rules in words, members), duplicate,
delete, the members CSV, and the customer page's segments card with its "why" explanation.
The builder (new and edit) lives in segments/builder_views.py."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from activity.services import Actor, activity_record
from customers.export import escape_cell
from customers.models import Customer
from customers.selectors import customer_get
from members.access import marketer_required, member_required
from segments import selectors, services
from segments.describe import DescribeContext, annotate, describe, summary
from segments.explain import explain
from segments.models import Membership, Segment, SegmentSize, SegmentStatus
from segments.rules import RulesInvalid
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
EXPORT_BATCH = 2000
EXPORT_HEADER = (
    "user_id",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "country",
    "entered_at",
)
BUILT_EVENT = "segment-built"  # sent when a polled build finishes; the members list reloads


# --- size over time -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sparkline:
    """An inline SVG line of daily member counts, drawn on the server (no chart library)."""

    width: int
    height: int
    line: str  # polyline points
    area: str  # polygon points: the line closed along the bottom edge
    end_x: float
    end_y: float
    label: str  # the same numbers in words, for screen readers and the tooltip
    caption: str  # shorter, shown under the larger chart on a segment's page


def sparkline(sizes: list[SegmentSize], width: int = 84, height: int = 26) -> Sparkline | None:
    if not sizes:
        return None
    counts = [s.member_count for s in sizes]
    if len(counts) == 1:
        counts = counts * 2  # one day: a flat line
    low, high = min(counts), max(counts)
    pad = 3  # keeps the stroke and the end dot inside the box
    step = (width - 2 * pad) / (len(counts) - 1)
    span = high - low

    def y(count: int) -> float:
        if not span:
            return height / 2
        return round(height - pad - (count - low) / span * (height - 2 * pad), 1)

    points = [(round(pad + i * step, 1), y(c)) for i, c in enumerate(counts)]
    line = " ".join(f"{px},{py}" for px, py in points)
    area = f"{points[0][0]},{height} {line} {points[-1][0]},{height}"
    first, last = sizes[0], sizes[-1]
    label = (
        f"{first.member_count:,} on {first.day:%-d %b} → {last.member_count:,} on "
        f"{last.day:%-d %b} (low {min(counts):,}, high {max(counts):,})"
    )
    caption = f"{first.member_count:,} → {last.member_count:,} since {first.day:%-d %b}"
    return Sparkline(width, height, line, area, points[-1][0], points[-1][1], label, caption)


def _size_histories(segments: list[Segment]) -> dict[int, list[SegmentSize]]:
    """The last HISTORY_DAYS daily sizes of every listed segment in one query (the list
    would otherwise ask selectors.size_history once per row)."""
    since = timezone.localdate() - timedelta(days=HISTORY_DAYS)
    histories: dict[int, list[SegmentSize]] = {s.pk: [] for s in segments}
    rows = SegmentSize.objects.filter(segment__in=segments, day__gt=since).order_by("day")
    for size in rows:
        histories[size.segment_id].append(size)
    return histories


# --- the list -------------------------------------------------------------------------------


def _sorted(segments: list[Segment], sort: str, users: dict[int, list[Segment]]) -> list:
    key, descending = sort.lstrip("-"), sort.startswith("-")
    if key == "description":
        segments.sort(key=lambda s: (s.description.lower(), s.name.lower()), reverse=descending)
    elif key == "used":
        segments.sort(key=lambda s: (len(users.get(s.pk, [])), s.name.lower()), reverse=descending)
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
    _sorted(segments, sort, users)
    histories = _size_histories(segments)
    rows = [
        {"segment": s, "used_by": users.get(s.pk, []), "spark": sparkline(histories[s.pk])}
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
    entered = dict(
        Membership.objects.filter(
            segment=segment, customer_id__in=[c.pk for c in page.members]
        ).values_list("customer_id", "entered_at")
    )
    base = reverse("segment-detail", args=[segment.pk])
    query = {"q": q} if q else {}
    return {
        "members": [(c, entered.get(c.pk)) for c in page.members],
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
    history = selectors.size_history(segment, HISTORY_DAYS)
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


class _Echo:
    def write(self, value: str) -> str:
        return value


def members_csv(segment: Segment, batch: int = EXPORT_BATCH) -> Iterator[str]:
    """Every member, in keyset batches on the membership key: one query per batch, never
    the whole segment in memory. Cells a spreadsheet would run as formulas are escaped."""
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_HEADER)
    after = 0
    while True:
        rows = list(
            Membership.objects.filter(segment=segment, customer_id__gt=after)
            .order_by("customer_id")
            .values_list(
                "customer_id",
                "customer__user_id",
                "customer__name",
                "customer__first_name",
                "customer__last_name",
                "customer__email",
                "customer__phone",
                "customer__country",
                "entered_at",
            )[:batch]
        )
        if not rows:
            return
        for _customer_id, *values, entered_at in rows:
            yield writer.writerow([*(escape_cell(v) for v in values), entered_at.isoformat()])
        after = rows[-1][0]


@marketer_required
@require_GET
def segment_export(request: MemberRequest, pk: int) -> HttpResponse:
    segment = selectors.segment_get(pk)
    activity_record(
        Actor.for_request(request),
        "segment.exported",
        target_type="segment",
        target_id=segment.pk,
        target_label=segment.name,
        count=segment.member_count,
    )
    response = StreamingHttpResponse(members_csv(segment), content_type="text/csv; charset=utf-8")
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
