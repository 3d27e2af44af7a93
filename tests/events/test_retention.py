"""Retention, the daily maintenance job and its schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activity.services import Actor
from events.ingest import events_ingest
from events.models import Event, EventType
from events.retention import events_drop_expired, events_maintain

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _send_days_ago(*days: int, name: str = "purchase") -> None:
    events = [
        {"user_id": "u-1", "name": name, "timestamp": (NOW - timedelta(days=d)).isoformat()}
        for d in days
    ]
    assert events_ingest(events, actor=Actor.system(), now=NOW).rejected == 0


def test_drop_expired_removes_only_older_events_in_batches():
    _send_days_ago(1, 29, 31, 40, 400)
    _send_days_ago(50, name="page_viewed")
    dropped = events_drop_expired(days=30, now=NOW, batch=2)  # several batches per name
    assert dropped == 4
    left = sorted((NOW - e.occurred_at).days for e in Event.objects.all())
    assert left == [1, 29]


def test_drop_expired_refuses_a_non_positive_period():
    with pytest.raises(ValueError):
        events_drop_expired(days=0)


def test_maintenance_recounts_the_catalog_after_retention_and_erasure():
    _send_days_ago(1, 2, 100)
    events_maintain(retention_days=30, now=NOW)
    purchase = EventType.objects.get(name="purchase")
    assert purchase.event_count == 2
    assert purchase.first_seen == NOW - timedelta(days=2)

    Event.objects.all().delete()  # as erasure does, without touching the catalog
    result = events_maintain(retention_days=0, now=NOW)
    purchase.refresh_from_db()
    assert result["dropped"] == 0 and purchase.event_count == 0
    assert purchase.first_seen is None and purchase.last_seen is None


def test_periodic_jobs_are_scheduled():
    """The scheduler (dramatiq-crontab) knows every periodic job and its schedule."""
    from dramatiq_crontab import scheduler

    import events.tasks
    import segments.tasks  # noqa: F401 - registers its jobs

    jobs = {job.name: str(job.trigger) for job in scheduler.get_jobs()}
    assert "hour='3', minute='17'" in jobs["maintain_events"]
    assert "minute='*/5'" in jobs["sweep_segments"]
    assert "evaluate_pending" in jobs
    assert events.tasks.maintain_events.actor_name == "maintain_events"
