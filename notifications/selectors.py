"""Reading a member's notifications; every query is scoped to the member."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import Http404

from notifications.models import Notification

if TYPE_CHECKING:
    from members.models import Member

LIST_LIMIT = 50


def notification_list(member: Member, limit: int = LIST_LIMIT) -> list[Notification]:
    return list(Notification.objects.filter(member=member)[:limit])


def notification_unread_count(member: Member) -> int:
    return Notification.objects.filter(member=member, read_at__isnull=True).count()


def notification_get_for_member(member: Member, pk: int) -> Notification:
    try:
        return Notification.objects.get(member=member, pk=pk)
    except Notification.DoesNotExist:
        raise Http404 from None
