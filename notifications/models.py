"""Notices for one member: a finished import, a disabled webhook endpoint. Shown behind the
bell in the sidebar until read."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now


class Notification(models.Model):
    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    url = models.CharField(max_length=500, blank=True, default="")  # a path inside Workbench
    created_at = models.DateTimeField(default=now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The bell's unread count and the list, newest first, per member.
            models.Index(fields=["member", "-created_at"], name="notification_member_idx"),
            models.Index(
                fields=["member"],
                name="notification_unread_idx",
                condition=models.Q(read_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def unread(self) -> bool:
        return self.read_at is None
