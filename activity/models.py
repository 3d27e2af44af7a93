from __future__ import annotations

from django.db import models
from django.utils import timezone

from tags.models import Source


class Activity(models.Model):
    """One change to customers, custom fields or tags: who, when, what, from where.

    Personal values are never stored: ``changes`` holds values only for non-personal fields
    (see customers/profile.py), and erasing a customer blanks ``target_label`` on its entries.
    A bulk operation writes one entry with ``count`` customers.
    """

    at = models.DateTimeField(default=timezone.now)
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    token = models.ForeignKey(
        "apitokens.ApiToken", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=255)  # kept when the member or token goes
    source = models.CharField(max_length=8, choices=Source.choices)
    action = models.CharField(max_length=40)  # e.g. customer.updated, customers.tagged
    target_type = models.CharField(max_length=20)  # customer, custom_field, tag
    target_id = models.BigIntegerField(null=True, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    fields = models.JSONField(default=list, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # Pages walk (at, id) newest first from a cursor.
            models.Index(fields=["-at", "-id"], name="activity_at_id_idx"),
            models.Index(fields=["target_type", "target_id", "-at"], name="activity_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"
