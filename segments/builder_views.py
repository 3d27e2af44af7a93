"""The segment builder: create and edit a segment's rules with a live count.

The page is one form whose inputs are named by rule path (segments/builder_form.py). htmx
posts the whole form to ``segment-builder``: as the member types, for the preview (the count,
the first matching customers, each top-level condition's running count and the problems next
to the conditions they name); on a structural action (a button or select with an ``action``),
to re-draw the editor. The same actions also work as plain form posts to the page, without
JavaScript. Saving an edited segment first shows how many customers would enter and exit.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from activity.services import Actor
from members.access import marketer_required
from members.models import timezone_choices
from segments.builder_changes import MembershipChange, membership_change
from segments.builder_draft import draft_apply, draft_check
from segments.builder_form import (
    ROOT,
    Catalog,
    dom_id,
    draft_from_form,
    draft_from_rules,
    draft_rules,
    form_path_for,
    walk,
)
from segments.builder_widgets import NodeStatus, editor
from segments.models import Segment
from segments.query import Preview, preview
from segments.rules import RulesInvalid
from segments.selectors import segment_get
from segments.services import (
    SegmentChange,
    SegmentInvalid,
    segment_create,
    segment_rules_clean,
    segment_update,
)
from workbench.http import MemberRequest

TEMPLATE = "segments/builder.html"
FORM_ID = "segment-form"  # the form's own (preview) requests carry it as HX-Trigger
PAGE_ACTIONS = ("save", "confirm", "back", "preview", "refresh", "details")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@dataclass
class Builder:
    """One request's builder: the segment (None when new), what can be picked, the draft
    rules and the details as entered."""

    segment: Segment | None
    catalog: Catalog
    draft: dict[str, Any]
    name: str
    description: str
    timezone: str
    fallback_tz: str
    field_errors: dict[str, str] = field(default_factory=dict)

    @property
    def tz(self) -> str:
        """The zone rules are read in: the one entered, if it is one."""
        return self.timezone if self.timezone in _zones() else self.fallback_tz

    @property
    def segment_id(self) -> int | None:
        return self.segment.pk if self.segment else None

    def details_check(self) -> None:
        if not self.name.strip():
            self.field_errors["name"] = "A segment needs a name."
        if self.timezone not in _zones():
            self.field_errors["timezone"] = (
                f"“{self.timezone}” is not an IANA time zone such as Europe/Paris."
            )


def _fallback_tz(request: MemberRequest, segment: Segment | None) -> str:
    tz = segment.timezone if segment else request.user.timezone
    return tz if tz in _zones() else "UTC"


def _initial(request: MemberRequest, segment: Segment | None) -> Builder:
    catalog = Catalog.load(exclude_segment=segment.pk if segment else None)
    tz = _fallback_tz(request, segment)
    if segment is None:
        # A new segment opens with the "add filter" lists showing.
        draft = {"type": "group", "match": "all", "negate": False, "children": [{"type": "pick"}]}
        return Builder(None, catalog, draft, "", "", tz, tz)
    draft = draft_from_rules(segment.rules, zoneinfo.ZoneInfo(tz), catalog.registry)
    return Builder(segment, catalog, draft, segment.name, segment.description, tz, tz)


def _posted(request: MemberRequest, segment: Segment | None) -> Builder:
    catalog = Catalog.load(exclude_segment=segment.pk if segment else None)
    data = request.POST
    fallback = _fallback_tz(request, segment)
    return Builder(
        segment=segment,
        catalog=catalog,
        draft=draft_from_form(data, catalog),
        name=data.get("name", "").strip(),
        description=data.get("description", "").strip(),
        timezone=data.get("timezone", "").strip() or fallback,
        fallback_tz=fallback,
    )


# --- judging the draft ------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the rules say about a draft. ``state``: empty (no conditions yet), incomplete
    (some wait for input), invalid (problems marked on the nodes) or ready (``clean``)."""

    state: str
    statuses: dict[str, NodeStatus]
    rules: dict[str, Any] | None = None  # as entered (naive times), for the services
    clean: dict[str, Any] | None = None
    preview: Preview | None = None


def judge(b: Builder, *, saving: bool = False, count: bool = True, details: bool = True) -> Verdict:
    """Check the draft with the rules' own validation, each message placed on the node it
    names, and count the matches when the rules are complete; with ``details``, the count
    after each condition and the reachable counts too (without, the page asks for them once
    the count shows: on a large base they cost several times the count). While editing,
    unfinished conditions only get a hint; when saving they are errors."""
    check = draft_check(b.draft, b.catalog.registry)
    statuses: dict[str, NodeStatus] = defaultdict(NodeStatus)
    for path, message in check.incomplete.items():
        if saving:
            statuses[path].errors.append(message)
        else:
            statuses[path].hint = message
    for path, message in check.problems.items():
        statuses[path].errors.append(message)
    empty = not b.draft["children"]
    invalid = bool(check.problems) or (saving and bool(check.incomplete))
    tree, paths = draft_rules(b.draft, check.held_back)
    clean = None
    if tree is not None:
        try:
            clean = segment_rules_clean(tree, b.tz, b.segment_id)
        except RulesInvalid as exc:
            invalid = True
            for error in exc.errors:
                path = form_path_for(error.node, paths)
                if path == ROOT and empty and not saving:
                    continue  # an editor with no conditions yet is not an error
                statuses[path].errors.append(error.message)
    if empty and not saving:
        state = "empty"
    elif invalid:
        state = "invalid"
    elif check.incomplete:
        state = "incomplete"
    else:
        state = "ready"
    verdict = Verdict(state, statuses)
    if state == "ready":
        verdict.rules, verdict.clean = tree, clean
        if count:
            verdict.preview = preview(clean, b.tz, steps=details, reach=details)
            if len(b.draft["children"]) > 1:
                for i, n in enumerate(verdict.preview.steps):
                    statuses[f"{ROOT}.c{i}"].count = n
    return verdict


# --- rendering --------------------------------------------------------------------------------


def _page_url(segment: Segment | None) -> str:
    return reverse("segment-edit", args=[segment.pk]) if segment else reverse("segment-new")


def _context(b: Builder, verdict: Verdict, **extra: Any) -> dict[str, Any]:
    return {
        "b": b,
        "segment": b.segment,
        "root": editor(b.draft, b.catalog, verdict.statuses),
        "verdict": verdict,
        "preview": verdict.preview,
        # Every node's status slot, for the preview's out-of-band updates (clears old ones).
        "slots": [
            (dom_id(path, "st"), dom_id(path, "ct"), verdict.statuses.get(path) or NodeStatus())
            for path, _ in walk(b.draft)
        ],
        "timezones": timezone_choices(),
        "page_url": _page_url(b.segment),
        **extra,
    }


def _render(request: MemberRequest, b: Builder, verdict: Verdict, **extra: Any) -> HttpResponse:
    return render(request, TEMPLATE, _context(b, verdict, **extra))


def _place_rule_errors(b: Builder, verdict: Verdict, exc: RulesInvalid) -> None:
    _, paths = draft_rules(b.draft, draft_check(b.draft, b.catalog.registry).held_back)
    for error in exc.errors:
        verdict.statuses.setdefault(form_path_for(error.node, paths), NodeStatus()).errors.append(
            error.message
        )
    verdict.state = "invalid"


# --- views ------------------------------------------------------------------------------------


@marketer_required
@require_http_methods(["GET", "POST"])
def segment_new(request: MemberRequest) -> HttpResponse:
    return _page(request, None)


@marketer_required
@require_http_methods(["GET", "POST"])
def segment_edit(request: MemberRequest, pk: int) -> HttpResponse:
    return _page(request, segment_get(pk))


def _page(request: MemberRequest, segment: Segment | None) -> HttpResponse:
    if request.method == "GET":
        b = _initial(request, segment)
        return _render(request, b, judge(b))
    b = _posted(request, segment)
    action = request.POST.get("action", "")
    if action == "save":
        return _save(request, b)
    if action == "confirm" and segment is not None:
        return _confirm(request, b, segment)
    if action not in PAGE_ACTIONS:
        draft_apply(b.draft, action, b.catalog)  # a structural action posted without htmx
    return _render(request, b, judge(b))


def _save(request: MemberRequest, b: Builder) -> HttpResponse:
    b.details_check()
    verdict = judge(b, saving=True, count=False)
    if verdict.state != "ready" or b.field_errors:
        return _render(request, b, verdict, save_failed=True)
    if b.segment is not None:
        change = membership_change(b.segment, verdict.clean, b.tz)
        return _render_confirm(request, b, change)
    try:
        segment = segment_create(
            name=b.name,
            description=b.description,
            rules=verdict.rules,
            tz=b.timezone,
            actor=Actor.for_request(request),
        )
    except SegmentInvalid as exc:
        b.field_errors[exc.field] = str(exc)
        return _render(request, b, verdict, save_failed=True)
    except RulesInvalid as exc:
        _place_rule_errors(b, verdict, exc)
        return _render(request, b, verdict, save_failed=True)
    messages.success(request, f"Segment “{segment.name}” created; its members are being computed.")
    return redirect("segment-detail", pk=segment.pk)


def _render_confirm(request: MemberRequest, b: Builder, change: MembershipChange) -> HttpResponse:
    carried = [
        (key, value)
        for key in request.POST
        if key not in ("csrfmiddlewaretoken", "action")
        for value in request.POST.getlist(key)
    ]
    return render(
        request,
        TEMPLATE,
        {
            "b": b,
            "segment": b.segment,
            "confirm": change,
            "size_after": change.size_after(b.segment.member_count) if b.segment else None,
            "carried": carried,
            "page_url": _page_url(b.segment),
        },
    )


def _confirm(request: MemberRequest, b: Builder, segment: Segment) -> HttpResponse:
    b.details_check()
    verdict = judge(b, saving=True, count=False)
    if verdict.state != "ready" or b.field_errors:
        return _render(request, b, verdict, save_failed=True)
    # Unchanged rules in an unchanged zone keep their membership: no rebuild.
    same = verdict.clean == segment.rules and b.timezone == segment.timezone
    change = SegmentChange(
        name=b.name,
        description=b.description,
        rules=None if same else verdict.rules,
        timezone=b.timezone,
    )
    try:
        segment_update(segment=segment, change=change, actor=Actor.for_request(request))
    except SegmentInvalid as exc:
        b.field_errors[exc.field] = str(exc)
        return _render(request, b, verdict, save_failed=True)
    except RulesInvalid as exc:
        _place_rule_errors(b, verdict, exc)
        return _render(request, b, verdict, save_failed=True)
    if same:
        messages.success(request, f"Segment “{segment.name}” saved.")
    else:
        messages.success(request, f"Segment “{segment.name}” saved; its members are being updated.")
    return redirect("segment-detail", pk=segment.pk)


@marketer_required
@require_POST
def builder(request: MemberRequest) -> HttpResponse:
    """The editor's htmx endpoint: the form's own requests refresh the preview; a button or
    select with an ``action`` changes the rules' structure and re-draws the editor."""
    segment_pk = request.POST.get("segment", "")
    segment = segment_get(segment_pk) if segment_pk else None
    b = _posted(request, segment)
    action = request.POST.get("action", "preview")
    if request.htmx.trigger == FORM_ID:
        action = "preview"  # never a stale button value carried by the form
    if action not in PAGE_ACTIONS:
        draft_apply(b.draft, action, b.catalog)
    if not request.htmx:
        return _render(request, b, judge(b))
    if action == "preview":
        # The count and sample first; the preview then asks for the details (action
        # "details"), which must not hold the count up.
        verdict = judge(b, details=False)
        return render(request, f"{TEMPLATE}#preview_response", _context(b, verdict))
    if action == "details":
        verdict = judge(b)
        if verdict.state != "ready":  # edited meanwhile: the next preview asks again
            return HttpResponse("")
        return render(request, f"{TEMPLATE}#details_response", _context(b, verdict))
    # A structural change re-draws the editor at once (validation only); the form then asks
    # for the count itself, so a slow count never holds the editor up.
    response = render(request, f"{TEMPLATE}#editor_response", _context(b, judge(b, count=False)))
    return trigger_client_event(response, "builder-changed", after="swap")
