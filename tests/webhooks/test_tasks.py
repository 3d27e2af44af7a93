"""The webhook actors (webhooks/tasks.py), run as a worker would run them, and the wake-up a
segment change sends after commit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.cache import cache

from customers.models import Customer
from segments.membership import segment_build, segment_evaluate
from tests.factories import CustomerFactory
from tests.webhooks.conftest import ACTOR, make_endpoint, oslo_segment
from webhooks import delivery, relay
from webhooks.models import Delivery, DeliveryStatus, Handover, HandoverStatus
from webhooks.services import handover_create
from webhooks.tasks import relay_transitions, send_audience, send_webhooks, sweep_webhooks


def test_actors_have_explicit_queues_retries_and_time_limits():
    from webhooks.tasks import fail_audience

    for actor in (relay_transitions, send_webhooks, sweep_webhooks, send_audience, fail_audience):
        assert actor.queue_name in ("default", "long")
        assert actor.options["max_retries"] >= 1
        assert actor.options["time_limit"] > 0


@pytest.mark.django_db
def test_relay_then_send_as_a_worker_would(receiver, loopback, quiet_actors):
    CustomerFactory(user_id="ann", city="Oslo")
    make_endpoint(receiver.url)
    segment_build(oslo_segment().pk)
    cache.set(relay.RELAY_QUEUED_KEY, 1)

    relay_transitions.fn()

    assert cache.get(relay.RELAY_QUEUED_KEY) is None  # later commits wake it again
    assert ("send_webhooks", (), {}) in quiet_actors
    send_webhooks.fn()
    send_webhooks.fn()  # a second run finds nothing to do
    assert [i["user_id"] for i in receiver.items()] == ["ann"]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


@pytest.mark.django_db
def test_the_sweep_relays_and_sends_what_lost_wake_ups_left(receiver, loopback):
    CustomerFactory(user_id="ann", city="Oslo")
    make_endpoint(receiver.url)
    segment_build(oslo_segment().pk)  # in a test transaction: no wake-up is ever sent

    sweep_webhooks.fn()
    sweep_webhooks.fn()

    assert [i["user_id"] for i in receiver.items()] == ["ann"]


@pytest.mark.django_db
def test_failed_attempts_due_together_queue_one_delayed_wake_up(
    receiver, loopback, quiet_actors, monkeypatch, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    receiver.default = (500, b"")
    monkeypatch.setattr(delivery, "retry_delay", lambda attempt: timedelta(seconds=15))
    CustomerFactory(user_id="ann", city="Oslo")
    CustomerFactory(user_id="bob", city="Oslo")
    make_endpoint(receiver.url)
    # A moment no other test uses: the wake-up slots are cache keys shared by the process.
    with time_machine.travel(datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC), tick=False):
        segment_build(oslo_segment().pk)
        assert relay.relay_run() == 2
        with django_capture_on_commit_callbacks(execute=True):
            assert delivery.send_due() == 2

    (retry,) = [s for s in quiet_actors if s[0] == "send_webhooks"]
    assert 15_000 <= retry[2]["delay"] <= 20_000  # the end of the 5-second slot they fall in


@pytest.mark.django_db
def test_send_audience_runs_the_handover_once(receiver, loopback, quiet_actors):
    ann = CustomerFactory(user_id="ann")
    endpoint, _ = make_endpoint(receiver.url)
    handover = handover_create(
        endpoint=endpoint, actor=ACTOR, description="one", customer_ids=[ann.pk]
    )
    send_audience.fn(handover.pk)
    send_audience.fn(handover.pk)
    send_audience.fn(handover.pk + 1000)  # gone: nothing to do
    handover.refresh_from_db()
    assert (handover.status, handover.delivery_count) == (HandoverStatus.DONE, 1)
    assert Delivery.objects.count() == 1
    assert Handover.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_segment_change_wakes_the_relay_once_after_commit(quiet_actors):
    from tests.segments.test_membership import system_event_types

    system_event_types()
    cache.delete(relay.RELAY_QUEUED_KEY)
    CustomerFactory(user_id="ann", city="Oslo")
    CustomerFactory(user_id="bob", city="Lisbon")
    segment = oslo_segment()
    segment_build(segment.pk)
    Customer.objects.filter(user_id="bob").update(city="Oslo")
    segment_evaluate(segment, list(Customer.objects.values_list("pk", flat=True)))

    relays = [s for s in quiet_actors if s[0] == "relay_transitions"]
    assert len(relays) == 1  # the second commit found a message already waiting
    cache.delete(relay.RELAY_QUEUED_KEY)


@pytest.mark.django_db(transaction=True)
def test_a_broken_broker_does_not_fail_the_segment_build(monkeypatch):
    from tests.segments.test_membership import system_event_types

    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(relay_transitions, "send", broken)
    system_event_types()
    cache.delete(relay.RELAY_QUEUED_KEY)
    CustomerFactory(user_id="ann", city="Oslo")
    result = segment_build(oslo_segment().pk)
    assert result.status == "built" and result.changes.entered
    cache.delete(relay.RELAY_QUEUED_KEY)


@pytest.mark.django_db
def test_the_sweep_sends_due_retries_even_when_the_relay_fails(receiver, loopback, monkeypatch):
    CustomerFactory(user_id="ann", city="Oslo")
    make_endpoint(receiver.url)
    segment_build(oslo_segment().pk)
    relay.relay_run()

    def broken() -> int:
        raise RuntimeError("relay down")

    monkeypatch.setattr(relay, "relay_run", broken)
    with pytest.raises(RuntimeError):
        sweep_webhooks.fn()
    assert [i["user_id"] for i in receiver.items()] == ["ann"]


@pytest.mark.django_db
def test_a_handover_whose_retries_run_out_is_marked_failed(receiver, loopback, monkeypatch):
    from webhooks import audience
    from webhooks.tasks import fail_audience

    CustomerFactory(user_id="ann")
    endpoint, _ = make_endpoint(receiver.url)
    handover = handover_create(
        endpoint=endpoint, actor=ACTOR, description="x", customer_ids=[Customer.objects.get().pk]
    )

    def broken(*args, **kwargs):
        raise RuntimeError("database trouble")

    monkeypatch.setattr(audience, "_source_sql", broken)
    with pytest.raises(RuntimeError):
        send_audience.fn(handover.pk)  # retried by Dramatiq while retries remain
    handover.refresh_from_db()
    assert handover.status == HandoverStatus.QUEUED

    assert send_audience.options["on_retry_exhausted"] == fail_audience.actor_name
    message = send_audience.message(handover.pk).asdict()
    fail_audience.fn(message, {"retries": 5, "max_retries": 5})
    handover.refresh_from_db()
    assert handover.status == HandoverStatus.FAILED
    assert "after several tries" in handover.error
    assert handover.finished_at is not None
