"""Events: what customers did, one row each, and the catalog of event names seen.

Storage is shaped by the segment queries that read it (see README "Events: storage"):
- ``(customer_id, event_type_id, occurred_at)``: one customer's events of one name in a time
  window (incremental segment evaluation, the filtered timeline) and the FK cascade on erasure;
- ``(event_type_id, occurred_at) INCLUDE (customer_id)``: "did X at least N times in the last D
  days" over the whole base as an index-only scan, retention batches and catalog recounts;
- a partial unique ``(customer_id, client_id)`` for events sent with a client id (idempotency).
Three secondary indexes is the deliberate ceiling: each one is paid on every insert. Event names
are stored as a catalog id, not text, which keeps rows and both indexes small and fixed-width.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class EventType(models.Model):
    """One event name: built-in analytics events are known up front, custom ones are created
    the first time they are ingested. Counts and first/last seen are kept current by ingestion
    and corrected by the daily maintenance job (after retention and erasures)."""

    name = models.CharField(max_length=100, unique=True)
    builtin = models.BooleanField(default=False, db_default=False)
    label = models.CharField(max_length=120, blank=True, default="", db_default="")
    description = models.CharField(max_length=255, blank=True, default="", db_default="")
    event_count = models.BigIntegerField(default=0, db_default=0)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    # Top-level property keys observed, with their inferred type: {"amount": "number", ...}.
    properties = models.JSONField(default=dict, db_default={}, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        return self.label or self.name


class Event(models.Model):
    # No constraint in the database: its check at commit cost an index look-up and a row lock
    # per event. Writers hold customers.erasure_gate instead, and customers_erase deletes the
    # events with the rows.
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.DO_NOTHING,
        related_name="events",
        db_index=False,  # led by the (customer, type, time) index
        db_constraint=False,
    )
    # No constraint in the database: the catalog only grows (nothing deletes an event type) and
    # every writer takes its ids from events.catalog.event_types_ensure in its own transaction.
    # The constraint's check at commit cost 6 µs an event (80 ms of a 13,500-member build
    # chunk, bench segments_build) and guarded nothing.
    event_type = models.ForeignKey(
        EventType,
        on_delete=models.DO_NOTHING,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    # The sender's own id for the event: the same id for the same customer is stored once.
    client_id = models.CharField(max_length=255, null=True, blank=True)
    properties = models.JSONField(default=dict, db_default={}, blank=True)
    context = models.JSONField(default=dict, db_default={}, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["customer", "event_type", "occurred_at"], name="events_customer_type_time"
            ),
            models.Index(
                fields=["event_type", "occurred_at"],
                include=["customer"],
                name="events_type_time_customer",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="events_client_id_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type_id}@{self.occurred_at:%Y-%m-%d %H:%M:%S}"
