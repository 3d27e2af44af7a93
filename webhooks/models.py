"""Webhook endpoints, the deliveries made to them and each attempt at one, and audience
hand-overs. Deliveries are created by webhooks/relay.py (segment transitions) and
webhooks/audience.py (hand-overs); webhooks/delivery.py sends them."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

MAX_BATCH_SIZE = 500


class EventType(models.TextChoices):
    SEGMENT_ENTERED = "segment-entered", "Segment entered"
    SEGMENT_EXITED = "segment-exited", "Segment exited"
    CUSTOMERS_SENT = "customers-sent", "Customers sent"
    TEST = "webhook-test", "Test event"


# What an endpoint can subscribe to; hand-overs and tests are sent on request.
SUBSCRIBABLE = (EventType.SEGMENT_ENTERED, EventType.SEGMENT_EXITED)


ADMIN_DISABLED_REASON = "Disabled by an Admin."


class Endpoint(models.Model):
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    enabled = models.BooleanField(default=True)
    events = models.JSONField(default=list)  # EventType values from SUBSCRIBABLE
    # False: only the segments whose ids are in ``segment_ids`` (none: nothing is sent). Ids,
    # not a relation: a deleted segment's transitions stop anyway, and the segment pages
    # warn before that happens.
    all_segments = models.BooleanField(default=True)
    segment_ids = models.JSONField(default=list, blank=True)
    # Profile fields added to each item: standard column names and "custom.<name>".
    profile_fields = models.JSONField(default=list, blank=True)
    batch_size = models.PositiveSmallIntegerField(default=1)

    secret = models.CharField(max_length=80)
    # After a rotation the old secret signs too, until previous_secret_expires_at.
    previous_secret = models.CharField(max_length=80, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)

    # The last segments_transition id the relay has turned into deliveries for this endpoint.
    cursor = models.BigIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")

    created_at = models.DateTimeField(default=now)
    created_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["url", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(batch_size__gte=1, batch_size__lte=MAX_BATCH_SIZE),
                name="webhook_endpoint_batch_size_range",
            ),
        ]

    def __str__(self) -> str:
        return self.description or self.url

    @property
    def label(self) -> str:
        return self.description or self.url

    @property
    def auto_disabled(self) -> bool:
        """Turned off by failures (not by an Admin): the list warns about it."""
        return (
            not self.enabled
            and bool(self.disabled_at)
            and (self.disabled_reason != ADMIN_DISABLED_REASON)
        )

    @property
    def overlap_active(self) -> bool:
        """Whether the previous secret still signs (after a rotation)."""
        expires = self.previous_secret_expires_at
        return bool(self.previous_secret and expires and expires > now())


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


OPEN_STATUSES = [DeliveryStatus.PENDING, DeliveryStatus.FAILED]


class Delivery(models.Model):
    """One message to one endpoint: its webhook-id and body never change, so every attempt
    (and every replay) sends the same bytes under the same id."""

    # Database-level cascades: deleting an endpoint with a long log is one statement, and an
    # attempt recorded while its delivery is being deleted cannot slip in between.
    endpoint = models.ForeignKey(Endpoint, on_delete=models.DB_CASCADE, related_name="deliveries")
    webhook_id = models.CharField(max_length=80, unique=True)
    event = models.CharField(max_length=20, choices=EventType.choices)
    body = models.TextField()
    item_count = models.PositiveIntegerField(default=0)
    # The segment transitions this delivery carries (empty for hand-overs and tests).
    transition_ids = models.JSONField(default=list, blank=True)
    handover = models.ForeignKey(
        "webhooks.Handover", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # While pending: when the next attempt is due. A claimed delivery is leased by moving
    # this forward, so a worker killed mid-attempt leaves it due again after the lease.
    next_attempt_at = models.DateTimeField(default=now)
    # Retries stop after this (WEBHOOKS_RETRY_HOURS after creation, or after a replay).
    give_up_at = models.DateTimeField()
    created_at = models.DateTimeField(default=now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                name="webhook_delivery_due_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["endpoint", "-created_at", "-id"], name="webhook_delivery_log_idx"
            ),
            # Waiting and failed deliveries per endpoint, for the list's counts.
            models.Index(
                fields=["endpoint", "status"],
                name="webhook_delivery_open_idx",
                condition=models.Q(status__in=OPEN_STATUSES),
            ),
        ]

    def __str__(self) -> str:
        return self.webhook_id


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.DB_CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField(default=now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_snippet = models.TextField(blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class HandoverStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Handover(models.Model):
    """An audience sent once to an endpoint as customers-sent deliveries."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.DB_CASCADE, related_name="handovers")
    description = models.CharField(max_length=300)
    # One of: ids (ticked customers), filter (the Customers screen's query string), segment.
    customer_ids = models.JSONField(default=list, blank=True)
    filter_query = models.TextField(blank=True, default="")
    use_filter = models.BooleanField(default=False)
    segment_id = models.BigIntegerField(null=True, blank=True)
    exclude_channel = models.CharField(max_length=10, blank=True, default="")
    # The filter's dates are days in the member's zone; the job reads them in the same one.
    timezone = models.CharField(max_length=64, default="UTC")
    status = models.CharField(
        max_length=10, choices=HandoverStatus.choices, default=HandoverStatus.QUEUED
    )
    customer_count = models.PositiveIntegerField(default=0)
    delivery_count = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=now)
    created_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.description
