"""Configuration → Webhooks (Admins): endpoints, their secret, test events, the delivery log
and replays. "Send to endpoint" (Marketers) from the Customers screen and a segment's page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from activity.services import Actor
from customers.filters import customers_filtered
from customers.forms import SelectionForm
from customers.selectors import customer_count
from members.access import admin_required, marketer_required
from segments.models import Segment
from segments.selectors import segment_get
from webhooks import selectors, services
from webhooks.forms import EVENT_LABELS, EndpointForm, HandoverForm, ReplayRangeForm
from webhooks.models import DeliveryStatus, EventType
from workbench.http import MemberRequest

NEW_SECRET_KEY = "webhooks:new-secret"  # noqa: S105 (a session key, not a secret)
LOG_CHANGED = "webhook-log-changed"  # tells the log to reload itself after a test or replay


def _show_secret_once(request: MemberRequest, endpoint_pk: int, secret: str) -> None:
    # The secret is kept only for the next page view, like a new API token.
    request.session[NEW_SECRET_KEY] = [endpoint_pk, secret]


@admin_required
@require_GET
def webhook_list(request: MemberRequest) -> HttpResponse:
    return render(request, "webhooks/list.html", {"endpoints": selectors.endpoint_list()})


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_new(request: MemberRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.endpoint_create(
                data=form.data_for_service(), actor=Actor.for_request(request)
            )
        except services.WebhookInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            _show_secret_once(request, endpoint.pk, secret)
            messages.success(request, f"Endpoint “{endpoint.label}” created.")
            return redirect("webhook-detail", pk=endpoint.pk)
    return render(request, "webhooks/form.html", {"form": form, "endpoint": None})


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_edit(request: MemberRequest, pk: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(pk)
    form = EndpointForm(request.POST or None, endpoint=endpoint)
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(
                endpoint=endpoint, data=form.data_for_service(), actor=Actor.for_request(request)
            )
        except services.WebhookInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, "Endpoint saved.")
            return redirect("webhook-detail", pk=endpoint.pk)
    return render(request, "webhooks/form.html", {"form": form, "endpoint": endpoint})


def _log_context(request: MemberRequest, endpoint) -> dict:
    status = request.GET.get("status", "")
    event = request.GET.get("event", "")
    page = selectors.delivery_log(
        endpoint, status=status, event=event, before=request.GET.get("before", "")
    )
    return {
        "endpoint": endpoint,
        "log": page,
        "status": status,
        "event": event,
        "statuses": DeliveryStatus.choices,
        "events": EventType.choices,
        "paged": bool(request.GET.get("before")),
    }


@admin_required
@require_GET
def webhook_detail(request: MemberRequest, pk: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(pk)
    if request.htmx:
        return render(request, "webhooks/detail.html#log", _log_context(request, endpoint))
    new_secret = ""
    pending = request.session.pop(NEW_SECRET_KEY, None)
    if pending and pending[0] == endpoint.pk:
        new_secret = pending[1]
    segment_names = dict(
        Segment.objects.filter(pk__in=endpoint.segment_ids).values_list("pk", "name")
    )
    context = {
        **_log_context(request, endpoint),
        "new_secret": new_secret,
        "event_labels": [EVENT_LABELS.get(e, e) for e in endpoint.events],
        "segments": [(pk, segment_names.get(pk)) for pk in endpoint.segment_ids],
        "replay_form": ReplayRangeForm(),
        "handovers": selectors.handovers_recent(endpoint),
    }
    return render(request, "webhooks/detail.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_delete(request: MemberRequest, pk: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(pk)
    if request.method == "POST":
        services.endpoint_delete(endpoint=endpoint, actor=Actor.for_request(request))
        messages.success(request, f"Endpoint “{endpoint.label}” deleted.")
        return redirect("webhook-list")
    template = "webhooks/delete.html#confirm" if request.htmx else "webhooks/delete.html"
    return render(request, template, {"endpoint": endpoint})


@admin_required
@require_POST
def webhook_enable(request: MemberRequest, pk: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(pk)
    enabled = request.POST.get("enabled") == "1"
    services.endpoint_enable(endpoint=endpoint, enabled=enabled, actor=Actor.for_request(request))
    if enabled:
        messages.success(request, "Endpoint enabled: waiting deliveries are being sent.")
    else:
        messages.success(request, "Endpoint disabled: nothing is sent until you enable it.")
    return redirect("webhook-detail", pk=endpoint.pk)


@admin_required
@require_POST
def webhook_rotate(request: MemberRequest, pk: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(pk)
    endpoint, secret = services.endpoint_rotate_secret(
        endpoint=endpoint, actor=Actor.for_request(request)
    )
    _show_secret_once(request, endpoint.pk, secret)
    messages.success(request, "Secret rotated. The old one also signs until the overlap ends.")
    return redirect("webhook-detail", pk=endpoint.pk)


@admin_required
@require_POST
def webhook_test(request: MemberRequest, pk: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(pk)
    test, attempt = services.endpoint_send_test(endpoint=endpoint, actor=Actor.for_request(request))
    if request.htmx:
        response = render(
            request, "webhooks/detail.html#test", {"endpoint": endpoint, "attempt": attempt}
        )
        trigger_client_event(response, LOG_CHANGED)
        return response
    if attempt.ok:
        messages.success(
            request, f"Test event delivered: HTTP {attempt.status_code} in {attempt.latency_ms} ms."
        )
    else:
        answer = f"HTTP {attempt.status_code}" if attempt.status_code else attempt.error
        messages.error(request, f"Test event failed ({answer}); it will be retried.")
    return redirect("webhook-detail", pk=endpoint.pk)


@admin_required
@require_GET
def webhook_delivery(request: MemberRequest, pk: int, delivery_pk: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(pk)
    item = selectors.delivery_get(endpoint, delivery_pk)
    context = {"endpoint": endpoint, "delivery": item, "attempts": item.attempt_log.all()}
    return render(request, "webhooks/delivery.html", context)


@admin_required
@require_POST
def webhook_replay(request: MemberRequest, pk: int, delivery_pk: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(pk)
    item = selectors.delivery_get(endpoint, delivery_pk)
    services.delivery_replay(item=item, actor=Actor.for_request(request))
    messages.success(request, f"Delivery {item.webhook_id} queued again.")
    return redirect("webhook-delivery", pk=endpoint.pk, delivery_pk=item.pk)


@admin_required
@require_POST
def webhook_replay_range(request: MemberRequest, pk: int) -> HttpResponse:
    endpoint = selectors.endpoint_get(pk)
    form = ReplayRangeForm(request.POST)
    if not form.is_valid():
        errors = [e for errs in form.errors.values() for e in errs]
        messages.error(request, "Nothing replayed: " + " ".join(errors))
        return redirect("webhook-detail", pk=endpoint.pk)
    count = services.deliveries_replay(
        endpoint=endpoint,
        start=form.cleaned_data["start"],
        end=form.cleaned_data["end"],
        actor=Actor.for_request(request),
    )
    if count:
        messages.success(request, f"{count} deliver{'ies' if count != 1 else 'y'} queued again.")
    else:
        messages.error(request, "No delivery was made in that time range.")
    return redirect("webhook-detail", pk=endpoint.pk)


# --- Send to endpoint (Marketers) -----------------------------------------------------------


def _handover_form(request: MemberRequest) -> HandoverForm:
    data = request.POST if "endpoint" in request.POST else None
    return HandoverForm(data, endpoints=selectors.endpoints_enabled())


def _handover_send(request: MemberRequest, form: HandoverForm, **audience) -> bool:
    """Create the hand-over from a confirmed, valid form; False when it is not (yet)."""
    if not (request.POST.get("confirm") == "yes" and form.is_valid()):
        return False
    endpoint = form.cleaned_data["endpoint"]
    try:
        services.handover_create(
            endpoint=endpoint,
            actor=Actor.for_request(request),
            exclude_channel=form.cleaned_data["exclude_channel"],
            tz=timezone.get_current_timezone_name(),
            **audience,
        )
    except services.WebhookInvalid as exc:
        form.add_error("endpoint", str(exc))
        return False
    messages.success(
        request,
        f"Sending {audience['description']} to “{endpoint.label}”. "
        "The deliveries appear in the endpoint's delivery log.",
    )
    return True


@marketer_required
@require_POST
def webhook_handover_customers(request: MemberRequest) -> HttpResponse:
    """From the Customers screen's bulk bar: ticked customers or all matching the filter."""
    selection = SelectionForm(request.POST)
    back = f"{reverse('customer-list')}?{request.POST.get('filter', '')}"
    if not selection.is_valid():
        messages.error(request, " ".join(selection.non_field_errors()) or "Invalid selection.")
        return redirect(back)
    everyone = selection.cleaned_data["all"]
    if everyone:
        _, qs = customers_filtered(selection.filter_params())
        counted = customer_count(qs)
        total, estimate = counted.value, counted.estimate
        label = "all customers matching the filter"
        audience = {"filter_query": selection.cleaned_data["filter"] or "", "description": label}
    else:
        ids = selection.cleaned_data["ids"]
        total, estimate = None, False  # the label says how many
        label = f"{len(ids)} selected customer{'s' if len(ids) != 1 else ''}"
        audience = {"customer_ids": ids, "description": label}
    form = _handover_form(request)
    if _handover_send(request, form, **audience):
        return redirect(back)
    context = {
        "form": form,
        "audience": label,
        "total": total,
        "estimate": estimate,
        "back": back,
        "action": reverse("webhook-handover-customers"),
        "hidden": [("ids", i) for i in selection.cleaned_data["ids"]]
        + ([("all", "on")] if everyone else [])
        + [("filter", request.POST.get("filter", ""))],
    }
    return render(request, "webhooks/handover.html", context)


@marketer_required
@require_http_methods(["GET", "POST"])
def webhook_handover_segment(request: MemberRequest, pk: int) -> HttpResponse:
    """From a segment's page: its members as they are when the job runs."""
    segment = segment_get(pk)
    label = f"the members of segment “{segment.name}”"
    form = _handover_form(request)
    if request.method == "POST" and _handover_send(
        request, form, segment_id=segment.pk, description=label
    ):
        return redirect("segment-detail", pk=segment.pk)
    context = {
        "form": form,
        "audience": label,
        "total": segment.member_count,
        "estimate": False,
        "back": reverse("segment-detail", args=[segment.pk]),
        "action": reverse("webhook-handover-segment", args=[segment.pk]),
        "hidden": [],
        "segment": segment,
    }
    return render(request, "webhooks/handover.html", context)
