from __future__ import annotations

from django.conf import settings
from django.db import models


class WorkerCheck(models.Model):
    """One round trip through the queue: enqueued by a member or `manage.py ping_worker`,
    completed by whichever worker picks it up. Proves the worker is alive and shows its lag."""

    queue = models.CharField(max_length=32)
    requested_at = models.DateTimeField(auto_now_add=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"worker check {self.pk} on {self.queue}"

    @property
    def lag_ms(self) -> int | None:
        if self.completed_at is None:
            return None
        return int((self.completed_at - self.requested_at).total_seconds() * 1000)
