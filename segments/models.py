"""Segments, their stored membership, the transitions it records and the queue of customers
waiting to be re-evaluated. The rules themselves are described in segments/rules.py, compiled
in segments/compiler.py and applied in segments/membership.py."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower, Now
from django.utils.timezone import now

RULES_VERSION = 1


class SegmentStatus(models.TextChoices):
    COMPUTING = "computing", "Computing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Segment(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    # The rule tree (root group) as validated by segments/rules.py, in schema RULES_VERSION.
    rules = models.JSONField()
    rules_version = models.PositiveSmallIntegerField(default=RULES_VERSION)
    # Relative dates ("was within 7 days") are read in this IANA zone.
    timezone = models.CharField(max_length=64, default="UTC")
    predefined = models.BooleanField(default=False)

    # What the rules read, worked out on save (segments/rules.py: rules_dependencies), so a
    # change to a customer re-evaluates only the segments it can affect.
    change_kinds = models.PositiveSmallIntegerField(default=0)
    time_based = models.BooleanField(default=False)
    depends_on = models.JSONField(default=list, blank=True)  # segment ids

    # Every rules edit bumps the revision; a build for an older revision stops early.
    revision = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=10, choices=SegmentStatus.choices, default=SegmentStatus.COMPUTING
    )
    build_progress = models.PositiveSmallIntegerField(default=0)  # percent
    build_error = models.TextField(blank=True, default="")
    built_revision = models.PositiveIntegerField(default=0)
    built_at = models.DateTimeField(null=True, blank=True)
    member_count = models.BigIntegerField(default=0)

    created_at = models.DateTimeField(default=now)
    created_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=now)
    updated_by = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.DB_SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            # The services check first for a friendly message; this settles a race.
            models.UniqueConstraint(Lower("name"), name="segment_name_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A customer in a segment. The composite key is also the member list's keyset order."""

    pk = models.CompositePrimaryKey("segment_id", "customer_id")
    # No index of their own: the key leads with the segment, membership_cust_segment_idx
    # serves "segments of a customer" (index-only, as incremental evaluation reads them) and
    # the erasure (customers_erase).
    # No database constraints: a key check per inserted row cost ~10 µs, 1.6 of a 54,000-member
    # build's 5.9 seconds of statement time went to the three per row. Every writer holds the
    # segment's advisory lock and its row (FOR KEY SHARE: lock_segments, _build_range) once
    # per transaction instead, and segment_delete locks the row, then deletes the memberships
    # and the segment. On the customer's side, writers hold customers.erasure_gate, and
    # customers_erase deletes the memberships with the rows.
    segment = models.ForeignKey(
        Segment,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    entered_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["customer", "segment"], name="membership_cust_segment_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id}"


class TransitionKind(models.TextChoices):
    ENTERED = "entered", "Entered"
    EXITED = "exited", "Exited"


class Transition(models.Model):
    """One enter or exit, written in the same transaction as the membership change: the
    outbox the webhooks relay delivers from. It names the segment and customer by value so it
    outlives both."""

    id = models.BigAutoField(primary_key=True)
    segment_id = models.BigIntegerField()
    segment_name = models.CharField(max_length=200)
    customer_id = models.BigIntegerField()
    user_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=TransitionKind.choices)
    occurred_at = models.DateTimeField(db_default=Now())
    event_id = models.BigIntegerField(null=True)  # the segment-entered/exited timeline event

    class Meta:
        indexes = [models.Index(fields=["segment_id", "id"], name="transition_segment_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} {self.segment_name}"


class SegmentSize(models.Model):
    """The member count at the end of each day (the last write of the day wins)."""

    segment = models.ForeignKey(Segment, on_delete=models.DB_CASCADE, related_name="sizes")
    day = models.DateField()
    member_count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "day"], name="segment_size_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.segment_id} on {self.day}: {self.member_count}"


class PendingCustomer(models.Model):
    """A customer whose data changed and who waits for incremental evaluation. Writers add
    rows in their own transaction (durable, retry-safe); segments/incremental.py drains them
    in batches and removes only rows not marked again meanwhile (``seq``)."""

    customer_id = models.BigIntegerField(primary_key=True)
    kinds = models.PositiveSmallIntegerField()  # ChangeKind bits
    seq = models.BigIntegerField()
    marked_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"customer {self.customer_id} (kinds {self.kinds})"
