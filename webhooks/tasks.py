"""Webhook jobs: thin actors over webhooks/relay.py, delivery.py and audience.py. Each is
safe to run twice and at the same time as itself: the relay locks endpoint rows, senders
claim deliveries with SKIP LOCKED, a hand-over checks its status under a row lock."""

from __future__ import annotations

import logging
from datetime import timedelta

import dramatiq
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from dramatiq_crontab import cron

from webhooks import audience, delivery, relay

log = logging.getLogger(__name__)

# A sender works this long, then hands the rest to a fresh message (time_limit stays far off).
SEND_SLICE = timedelta(seconds=25)


@dramatiq.actor(queue_name=settings.QUEUE_SHORT, max_retries=10, time_limit=300_000)
def relay_transitions() -> None:
    """Turn new segment transitions into deliveries, then wake a sender."""
    cache.delete(relay.RELAY_QUEUED_KEY)  # transitions committed from now on send a new message
    if relay.relay_run():
        delivery.send_wake()


@dramatiq.actor(queue_name=settings.QUEUE_SHORT, max_retries=10, time_limit=300_000)
def send_webhooks() -> None:
    """Send the due deliveries for a while; if more are due, queue the next slice."""
    cache.delete(delivery.SEND_QUEUED_KEY)
    delivery.send_due(until=timezone.now() + SEND_SLICE)
    if delivery.claim_pending_exists():
        delivery.send_wake()


@cron("* * * * *")  # the safety net: wake-ups may be lost with Redis, state never is
@dramatiq.actor(queue_name=settings.QUEUE_SHORT, max_retries=3, time_limit=300_000)
def sweep_webhooks() -> None:
    """Periodic: relay what a lost wake-up left behind and send due retries."""
    created = 0
    try:
        created = relay.relay_run()
    finally:  # a failing relay must not stop retries of what is already queued
        sent = delivery.send_due(until=timezone.now() + SEND_SLICE)
    if created or sent:
        log.info("webhooks sweep: %s deliveries created, %s attempts", created, sent)


@dramatiq.actor(
    queue_name=settings.QUEUE_LONG,
    max_retries=5,
    time_limit=3_600_000,
    # Errors other than the ones handover_run reports itself (a database error, the time
    # limit) are retried; once retries are exhausted the hand-over is marked failed, not
    # left "Queued" for ever.
    on_retry_exhausted="fail_audience",
)
def send_audience(handover_id: int) -> None:
    """Create a hand-over's deliveries, then wake a sender."""
    handover = audience.handover_run(handover_id)
    if handover is not None and handover.delivery_count:
        delivery.send_wake()


@dramatiq.actor(queue_name=settings.QUEUE_SHORT, max_retries=3, time_limit=60_000)
def fail_audience(message: dict, retry_info: dict) -> None:
    """send_audience gave up: say so on the hand-over (Retries middleware sends this)."""
    (handover_id,) = message["args"]
    audience.handover_fail(handover_id, "Sending failed after several tries; try again later.")
