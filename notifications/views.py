"""Notifications: the list (a full page, or the bell's dropdown over htmx), opening one (marks
it read and follows its link) and marking all read. Every member reads only their own."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from members.access import member_required
from notifications import selectors, services
from workbench.http import MemberRequest


def _list(request: MemberRequest) -> HttpResponse:
    context = {
        "notifications": selectors.notification_list(request.user),
        "unread": selectors.notification_unread_count(request.user),
    }
    template = "notifications/list.html#items" if request.htmx else "notifications/list.html"
    return render(request, template, context)


@member_required
@require_GET
def notification_list(request: MemberRequest) -> HttpResponse:
    return _list(request)


@member_required
@require_GET
def notification_bell(request: MemberRequest) -> HttpResponse:
    unread = selectors.notification_unread_count(request.user)
    return render(request, "notifications/_bell.html", {"show": True, "unread": unread})


@member_required
@require_POST
def notification_open(request: MemberRequest, pk: int) -> HttpResponse:
    notification = selectors.notification_get_for_member(request.user, pk)
    services.notification_mark_read(member=request.user, pk=notification.pk)
    return redirect(notification.url or "notification-list")


@member_required
@require_POST
def notification_read_all(request: MemberRequest) -> HttpResponse:
    services.notification_mark_read(member=request.user)
    if request.htmx:
        response = _list(request)
        return trigger_client_event(response, "notifications-changed")
    return redirect("notification-list")
