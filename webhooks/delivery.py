"""Sending deliveries: claim the due ones, POST them (signed, through webhooks/http.py),
record each attempt, schedule retries, disable endpoints that are gone or keep failing.

At-least-once: a claim moves the delivery's next_attempt_at past the request's deadline (a
lease) and commits before the POST. A worker killed after the POST and before recording the
result leaves the delivery pending; once the lease runs out it is claimed again and re-sent
with the same webhook-id and body, which receivers de-duplicate on. State lives only in
PostgreSQL: Redis messages just wake workers, and the periodic sweep finds anything due.

Retries: exponential backoff from RETRY_BASE_SECONDS, doubling up to RETRY_CAP_SECONDS, each
delay jittered by ±25% so failures that happened together do not retry together; after
``give_up_at`` (WEBHOOKS_RETRY_HOURS after creation or replay) the delivery is failed.
"""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from webhooks import http, signing
from webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 15
RETRY_CAP_SECONDS = 6 * 3600
SNIPPET_CHARS = 4000  # of the (at most 64 KB) response read, kept for the log
CLAIM_BATCH = 16  # deliveries claimed and sent at once, each on its own thread
SEND_QUEUED_KEY = "webhooks:send-queued"


def give_up_time(start: datetime) -> datetime:
    return start + timedelta(hours=settings.WEBHOOKS_RETRY_HOURS)


def retry_delay(attempt: int, rng: random.Random | None = None) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based)."""
    base = min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_CAP_SECONDS)
    jitter = (rng or random).uniform(0.75, 1.25)
    return timedelta(seconds=base * jitter)


def lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOKS_TIMEOUT_SECONDS + 45)


def endpoint_secrets(endpoint: Endpoint, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during the overlap."""
    signing_secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires and expires > now:
        signing_secrets.append(endpoint.previous_secret)
    return signing_secrets


# The pick is a MATERIALIZED CTE, run exactly once: as an IN (subquery) the planner may rescan
# it for every row (a nested loop), and each rescan can pick other rows, so the LIMIT no longer
# bounds the claim (seen: 105 deliveries claimed for a limit of 99).
_CLAIM_SQL = """
WITH picked AS MATERIALIZED (
    SELECT d2.id FROM webhooks_delivery d2
    JOIN webhooks_endpoint e ON e.id = d2.endpoint_id
    WHERE d2.status = 'pending' AND d2.next_attempt_at <= %s AND e.enabled
    ORDER BY d2.next_attempt_at, d2.id
    LIMIT %s
    FOR UPDATE OF d2 SKIP LOCKED
)
UPDATE webhooks_delivery d SET next_attempt_at = %s, attempts = d.attempts + 1
FROM picked WHERE d.id = picked.id
RETURNING d.id
"""


def claim(limit: int = CLAIM_BATCH, now: datetime | None = None) -> list[int]:
    """Lease up to ``limit`` due deliveries of enabled endpoints (committed at once)."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [now, limit, now + lease()])
        return [row[0] for row in cursor.fetchall()]


@dataclass
class Outcome:
    delivery: Delivery
    response: http.Response
    attempted_at: datetime


def _post(delivery: Delivery) -> Outcome:
    """The network part: no database access, so it can run on a thread."""
    now = timezone.now()
    endpoint = delivery.endpoint
    body = delivery.body.encode()
    headers = signing.headers(
        endpoint_secrets(endpoint, now), delivery.webhook_id, int(now.timestamp()), body
    )
    return Outcome(delivery, http.post(endpoint.url, body, headers), now)


def send_claimed(ids: list[int]) -> list[DeliveryAttempt]:
    """POST the claimed deliveries (concurrently) and record the outcomes."""
    deliveries = list(Delivery.objects.filter(pk__in=ids).select_related("endpoint"))
    if not deliveries:
        return []
    if len(deliveries) == 1:
        outcomes = [_post(deliveries[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(len(deliveries), CLAIM_BATCH)) as pool:
            outcomes = list(pool.map(_post, deliveries))
    recorded = [_record_safely(o) for o in outcomes]
    return [attempt for attempt in recorded if attempt is not None]


def _record_safely(outcome: Outcome) -> DeliveryAttempt | None:
    """record(), but one outcome that cannot be stored must not lose the rest of the batch;
    it is stored as a failed attempt instead, so the delivery still moves on (retry, give
    up) rather than being re-sent every lease."""
    try:
        return record(outcome.delivery, outcome.response, outcome.attempted_at)
    except Exception:
        log.exception("webhooks: could not record delivery %s", outcome.delivery.pk)
    failed = http.Response(
        None, b"", outcome.response.latency_ms, "The attempt's outcome could not be stored."
    )
    try:
        return record(outcome.delivery, failed, outcome.attempted_at)
    except Exception:
        log.exception("webhooks: could not record delivery %s as failed", outcome.delivery.pk)
        return None


def send_claimed_one(delivery: Delivery) -> DeliveryAttempt | None:
    """Send one delivery the caller has already leased (the test event)."""
    outcome = _post(delivery)
    return record(delivery, outcome.response, outcome.attempted_at)


def claim_pending_exists(now: datetime | None = None) -> bool:
    """Whether any delivery of an enabled endpoint is due now."""
    return Delivery.objects.filter(
        status=DeliveryStatus.PENDING,
        next_attempt_at__lte=now or timezone.now(),
        endpoint__enabled=True,
    ).exists()


def send_due(*, limit: int | None = None, until: datetime | None = None) -> int:
    """Send due deliveries until none is left (or ``limit`` attempts, or the time ``until``);
    returns the attempts made."""
    done = 0
    while limit is None or done < limit:
        if until is not None and timezone.now() >= until:
            break
        batch = CLAIM_BATCH if limit is None else min(CLAIM_BATCH, limit - done)
        ids = claim(batch)
        if not ids:
            break
        send_claimed(ids)
        done += len(ids)
    return done


def record(
    delivery: Delivery, response: http.Response, attempted_at: datetime
) -> DeliveryAttempt | None:
    """Store one attempt's outcome and what follows from it (None: the delivery was deleted
    with its endpoint meanwhile, or this attempt is stale)."""
    now = timezone.now()
    with transaction.atomic():
        # The row lock also holds off an endpoint deletion until the outcome is stored.
        # Fenced on the claim: a worker whose lease ran out (the delivery since re-claimed,
        # delivered or failed by another) must not overwrite that or count a failure twice.
        if (
            not Delivery.objects.select_for_update()
            .filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts)
            .exists()
        ):
            return None
        attempt = DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            attempted_at=attempted_at,
            status_code=response.status_code,
            latency_ms=response.latency_ms,
            response_snippet=response.snippet[:SNIPPET_CHARS],
            error=response.error[:500],
        )
        fields = {"last_status_code": response.status_code, "last_error": response.error[:500]}
        if response.ok:
            Delivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.DELIVERED, delivered_at=now, **fields
            )
            Endpoint.objects.filter(pk=delivery.endpoint_id, consecutive_failures__gt=0).update(
                consecutive_failures=0
            )
            return attempt
        next_at = now + retry_delay(delivery.attempts)
        if next_at > delivery.give_up_at:
            Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, **fields)
        else:
            Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=next_at, **fields)
            _wake_for_retry(next_at - now)
        _endpoint_failed(delivery.endpoint_id, response, now)
    return attempt


def _endpoint_failed(endpoint_id: int, response: http.Response, now: datetime) -> None:
    Endpoint.objects.filter(pk=endpoint_id).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    if not endpoint.enabled:
        return
    if response.status_code == 410:
        endpoint_disable(endpoint, "The receiver answered 410 Gone.", now)
    elif endpoint.consecutive_failures >= settings.WEBHOOKS_DISABLE_AFTER_FAILURES:
        endpoint_disable(
            endpoint, f"{endpoint.consecutive_failures} deliveries failed in a row.", now
        )


def endpoint_disable(endpoint: Endpoint, reason: str, now: datetime | None = None) -> None:
    """Stop sending to an endpoint and tell the Admins. Its pending deliveries wait; enabling
    it again resumes them."""
    now = now or timezone.now()
    updated = Endpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_at=now, disabled_reason=reason[:300]
    )
    if updated:
        log.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
        transaction.on_commit(lambda: _notify_admins(endpoint, reason))


def _notify_admins(endpoint: Endpoint, reason: str) -> None:
    from django.urls import reverse

    from members.models import Member
    from members.roles import Role
    from notifications.services import notification_send

    for member in Member.objects.filter(role=Role.ADMIN, is_active=True):
        notification_send(
            member=member,
            title="Webhook endpoint disabled",
            body=f"{endpoint.label}: {reason}",
            url=reverse("webhook-detail", args=[endpoint.pk]),
        )


def send_wake(delay: timedelta | None = None) -> None:
    """Ask a worker to send what is due: at once (one message per burst) or after ``delay``.
    Never raises (the sweep is the safety net)."""
    from django.core.cache import cache

    try:
        from webhooks.tasks import send_webhooks

        if delay is not None:
            send_webhooks.send_with_options(delay=int(delay.total_seconds() * 1000))
        elif cache.add(SEND_QUEUED_KEY, 1, timeout=60):
            send_webhooks.send()
    except Exception:
        log.warning("webhooks: could not wake a sender; the sweep will", exc_info=True)


RETRY_WAKE_BUCKET_SECONDS = 5


def _wake_for_retry(delay: timedelta) -> None:
    """Near retries get a delayed message, one per 5-second slot however many deliveries
    fall due in it; later ones are found by the minutely sweep."""
    if delay > timedelta(minutes=5):
        return

    def wake() -> None:
        from django.core.cache import cache

        due = timezone.now() + delay
        slot = int(due.timestamp()) // RETRY_WAKE_BUCKET_SECONDS + 1
        wait = timedelta(seconds=slot * RETRY_WAKE_BUCKET_SECONDS - timezone.now().timestamp())
        try:
            if cache.add(f"webhooks:retry-wake:{slot}", 1, timeout=int(wait.total_seconds()) + 60):
                send_wake(wait)
        except Exception:
            log.warning("webhooks: could not plan a retry wake-up; the sweep will", exc_info=True)

    transaction.on_commit(wake)
