"""Sending and reading notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.timezone import now

from notifications.models import Notification

if TYPE_CHECKING:
    from members.models import Member


def notification_send(*, member: Member, title: str, body: str = "", url: str = "") -> Notification:
    # Only local paths: a notification link must never send a member off-site.
    if url and not (url.startswith("/") and not url.startswith("//")):
        raise ValueError(f"notification url must be a local path, not {url!r}")
    return Notification.objects.create(member=member, title=title[:200], body=body, url=url[:500])


def notification_mark_read(*, member: Member, pk: int | None = None) -> int:
    """Mark one of ``member``'s notifications read (or all of them when ``pk`` is None);
    returns how many changed. Another member's notification is never touched."""
    unread = Notification.objects.filter(member=member, read_at__isnull=True)
    if pk is not None:
        unread = unread.filter(pk=pk)
    return unread.update(read_at=now())
