"""The relay (webhooks/relay.py): transitions become deliveries once per endpoint, with the
payload the endpoint asked for, in batches, and are delivered signed to a local receiver."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from customers.models import Customer, CustomField
from segments.membership import lock_segment, segment_evaluate
from segments.models import Segment, Transition
from tests.factories import CustomerFactory
from tests.webhooks.conftest import build, make_endpoint, oslo_segment
from webhooks import delivery, relay, signing
from webhooks.models import Delivery, DeliveryStatus, Endpoint


def _customers(**cities: str) -> dict[str, Customer]:
    return {
        user: CustomerFactory(user_id=user, city=city, email=f"{user}@example.com")
        for user, city in cities.items()
    }


@pytest.mark.django_db
def test_one_delivery_per_transition_with_the_chosen_profile_fields(receiver, loopback):
    CustomField.objects.create(name="tier", label="Tier", type="text")
    people = _customers(ann="Oslo", bob="Oslo", cid="Lisbon")
    Customer.objects.filter(pk=people["ann"].pk).update(custom={"tier": "gold", "secret": "x"})
    endpoint, secret = make_endpoint(receiver.url, profile_fields=["email", "city", "custom.tier"])
    segment = oslo_segment()
    build(segment)

    assert relay.relay_run() == 2
    assert delivery.send_due() == 2

    assert len(receiver.requests) == 2
    by_user = {}
    for request in receiver.requests:
        signing.verify(secret, request.headers, request.body)
        payload = request.json
        assert payload["type"] == "segment-entered"
        assert request.headers["webhook-id"] == f"msg_{endpoint.pk}_{payload['data'][0]['id']}"
        (item,) = payload["data"]
        by_user[item["user_id"]] = item
    assert set(by_user) == {"ann", "bob"}
    ann = by_user["ann"]
    transition = Transition.objects.get(user_id="ann", segment_id=segment.pk)
    assert ann["id"] == transition.id
    assert ann["event"] == "segment-entered"
    assert ann["segment"] == {"id": segment.pk, "name": "Oslo"}
    assert ann["occurred_at"].startswith(transition.occurred_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert ann["profile"] == {"email": "ann@example.com", "city": "Oslo", "tier": "gold"}
    assert by_user["bob"]["profile"] == {"email": "bob@example.com", "city": "Oslo"}
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}


@pytest.mark.django_db
def test_batching_groups_transitions_by_event_and_never_repeats_one(receiver, loopback):
    _customers(**{f"u{i:02d}": "Oslo" for i in range(7)})
    endpoint, _ = make_endpoint(receiver.url, batch_size=3)
    segment = oslo_segment()
    build(segment)
    Customer.objects.filter(user_id__in=["u00", "u01"]).update(city="Bergen")
    segment_evaluate(segment, list(Customer.objects.values_list("pk", flat=True)))

    relay.relay_run()
    relay.relay_run()  # nothing new: nothing created twice
    delivery.send_due()

    sizes = sorted((r.json["type"], len(r.json["data"])) for r in receiver.requests)
    assert sizes == [
        ("segment-entered", 1),
        ("segment-entered", 3),
        ("segment-entered", 3),
        ("segment-exited", 2),
    ]
    sent_ids = [item["id"] for item in receiver.items()]
    assert sorted(sent_ids) == sorted(Transition.objects.values_list("id", flat=True))
    webhook_ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(set(webhook_ids)) == 4
    endpoint.refresh_from_db()
    assert endpoint.cursor == max(sent_ids)


@pytest.mark.django_db
def test_endpoints_receive_only_their_events_and_segments(receiver, loopback):
    _customers(ann="Oslo")
    oslo = oslo_segment("Oslo")
    other = oslo_segment("Oslo too")
    make_endpoint(receiver.url, events=["segment-exited"])
    only_other, _ = make_endpoint(receiver.url, all_segments=False, segment_ids=[other.pk])
    none_chosen, _ = make_endpoint(receiver.url, all_segments=False, segment_ids=[])
    build(oslo)
    build(other)

    relay.relay_run()

    assert [(d.endpoint_id, d.event) for d in Delivery.objects.all()] == [
        (only_other.pk, "segment-entered")
    ]
    assert not Delivery.objects.filter(endpoint=none_chosen).exists()


@pytest.mark.django_db
def test_a_new_endpoint_starts_after_the_history_and_a_disabled_one_catches_up(receiver, loopback):
    _customers(ann="Oslo", bob="Lisbon")
    oslo = oslo_segment()
    build(oslo)
    endpoint, _ = make_endpoint(receiver.url)
    assert relay.relay_run() == 0  # ann's entry happened before the endpoint existed

    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=False)
    Customer.objects.filter(user_id="bob").update(city="Oslo")
    segment_evaluate(oslo, list(Customer.objects.values_list("pk", flat=True)))
    assert relay.relay_run() == 0
    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=True)
    assert relay.relay_run() == 1
    delivery.send_due()
    assert [i["user_id"] for i in receiver.items()] == ["bob"]


@pytest.mark.django_db
def test_an_erased_customer_is_sent_with_a_null_profile(receiver, loopback):
    people = _customers(ann="Oslo")
    make_endpoint(receiver.url, profile_fields=["email"])
    build(oslo_segment())
    people["ann"].delete()

    relay.relay_run()
    delivery.send_due()

    (item,) = receiver.items()
    assert (item["user_id"], item["profile"]) == ("ann", None)


@pytest.mark.django_db(transaction=True)
def test_the_relay_waits_for_a_transaction_still_writing_transitions(receiver, loopback):
    """A writer draws a lower id, a second commits a higher one first: the relay must not move
    the cursor past the lower id before its transaction ends."""
    from tests.segments.test_membership import system_event_types

    system_event_types()
    _customers(ann="Lisbon", bob="Lisbon")
    endpoint, _ = make_endpoint(receiver.url)
    slow = Segment.objects.create(name="Slow", rules={})
    fast = Segment.objects.create(name="Fast", rules={})
    ann, bob = Customer.objects.order_by("user_id")
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def write(segment, customer, *, hold: bool) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                lock_segment(cursor, segment.pk)
                Transition.objects.create(
                    segment_id=segment.pk,
                    segment_name=segment.name,
                    customer_id=customer.pk,
                    user_id=customer.user_id,
                    kind="entered",
                )
                if hold:
                    locked.set()
                    release.wait(30)
        finally:
            connection.close()

    writer = threading.Thread(target=write, args=(slow, ann), kwargs={"hold": True})
    writer.start()
    locked.wait(30)
    write(fast, bob, hold=False)  # a higher id, committed first

    def run_relay() -> None:
        try:
            relay.relay_run()
        finally:
            done.set()
            connection.close()

    relayer = threading.Thread(target=run_relay)
    relayer.start()
    waited = not done.wait(1)  # still waiting for the slow writer's lock
    release.set()
    writer.join(30)
    relayer.join(30)

    assert waited
    users = sorted(
        item["user_id"]
        for d in Delivery.objects.filter(endpoint=endpoint)
        for item in __import__("json").loads(d.body)["data"]
    )
    assert users == ["ann", "bob"]


@pytest.mark.django_db
def test_a_relay_killed_between_insert_and_cursor_leaves_nothing_half_done(
    receiver, loopback, monkeypatch
):
    _customers(ann="Oslo", bob="Oslo")
    endpoint, _ = make_endpoint(receiver.url)
    build(oslo_segment())

    class Killed(Exception):
        pass

    def dying_filter(*args, **kwargs):
        """The cursor update (``filter(pk=…).update(cursor=…)``) dies, after the INSERT."""
        qs = Endpoint.objects.all().filter(*args, **kwargs)
        if kwargs.get("pk") == endpoint.pk and "enabled" not in kwargs:

            def update(**changes):
                raise Killed

            qs.update = update
        return qs

    monkeypatch.setattr(relay.Endpoint.objects, "filter", dying_filter)
    with pytest.raises(Killed):
        relay.endpoint_fan_out(endpoint.pk, relay.settled_horizon())
    assert relay.relay_run() == 0  # logged, not raised: other endpoints go on
    monkeypatch.undo()
    assert not Delivery.objects.exists()  # rolled back with the cursor
    endpoint.refresh_from_db()
    assert endpoint.cursor < max(Transition.objects.values_list("id", flat=True))

    assert relay.relay_run() == 2
    assert relay.relay_run() == 0
    delivery.send_due()
    assert sorted(i["user_id"] for i in receiver.items()) == ["ann", "bob"]


@pytest.mark.django_db(transaction=True)
def test_relays_running_at_once_create_each_delivery_once(receiver, loopback):
    from tests.concurrency import race
    from tests.segments.test_membership import system_event_types

    system_event_types()
    _customers(**{f"u{i:02d}": "Oslo" for i in range(20)})
    make_endpoint(receiver.url, batch_size=3)
    make_endpoint(receiver.url, batch_size=1)
    build(oslo_segment())

    outcomes = race(relay.relay_run, relay.relay_run, relay.relay_run)

    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert sum(outcomes) == Delivery.objects.count() == 7 + 20
    for endpoint in Endpoint.objects.all():
        carried = [t for d in Delivery.objects.filter(endpoint=endpoint) for t in d.transition_ids]
        assert sorted(carried) == sorted(Transition.objects.values_list("id", flat=True))


@pytest.mark.django_db
def test_one_endpoint_failing_does_not_stop_the_others(receiver, loopback, caplog):
    _customers(ann="Oslo")
    broken, _ = make_endpoint(receiver.url)
    fine, _ = make_endpoint(receiver.url)
    build(oslo_segment())
    # Settings saved before validation existed: beyond bigint, so the fan-out SQL fails.
    Endpoint.objects.filter(pk=broken.pk).update(all_segments=False, segment_ids=[2**70])

    assert relay.relay_run() == 1
    assert Delivery.objects.get().endpoint_id == fine.pk
    assert f"relaying to endpoint {broken.pk} failed" in caplog.text
    broken.refresh_from_db()
    assert broken.cursor < max(Transition.objects.values_list("id", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_new_endpoint_waits_for_transitions_still_being_written(receiver, loopback):
    """A writer holds a lower id while a higher one commits: an endpoint created meanwhile
    must not start past the lower id, or that transition, committed after the endpoint was
    saved, would never reach it."""
    from tests.segments.test_membership import system_event_types

    system_event_types()
    _customers(ann="Lisbon", bob="Lisbon")
    slow = Segment.objects.create(name="Slow", rules={})
    fast = Segment.objects.create(name="Fast", rules={})
    ann, bob = Customer.objects.order_by("user_id")
    locked, release = threading.Event(), threading.Event()
    order: list[str] = []

    def write(segment, customer, *, hold: bool) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                lock_segment(cursor, segment.pk)
                Transition.objects.create(
                    segment_id=segment.pk,
                    segment_name=segment.name,
                    customer_id=customer.pk,
                    user_id=customer.user_id,
                    kind="entered",
                )
                if hold:
                    locked.set()
                    release.wait(30)
            if hold:
                order.append("slow committed")
        finally:
            connection.close()

    writer = threading.Thread(target=write, args=(slow, ann), kwargs={"hold": True})
    writer.start()
    locked.wait(30)
    write(fast, bob, hold=False)  # a higher id, committed first
    created: list[Endpoint] = []

    def create() -> None:
        try:
            created.append(make_endpoint(receiver.url)[0])
            order.append("endpoint created")
        finally:
            connection.close()

    creator = threading.Thread(target=create)
    creator.start()
    creator.join(1)
    release.set()
    writer.join(30)
    creator.join(30)

    (endpoint,) = created
    relay.relay_run()
    sent = {
        item["user_id"]
        for d in Delivery.objects.filter(endpoint=endpoint)
        for item in __import__("json").loads(d.body)["data"]
    }
    # Either the endpoint waited for the writer (ann is history), or ann reaches it.
    assert order == ["slow committed", "endpoint created"] or "ann" in sent
