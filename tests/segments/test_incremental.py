"""Incremental evaluation (segments/incremental.py): every write path queues the customers it
changed, and a drain brings membership up to date with transitions, in dependency order,
only for the segments the change can affect; killed and overlapping drains lose nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activity.services import Actor
from customers.custom_fields import custom_field_specs
from customers.models import Customer, CustomField
from customers.profile import profile_clean
from customers.services import customers_erase
from customers.upsert import UpsertItem, customers_upsert
from events.ingest import events_ingest
from segments import incremental, membership
from segments.fields import ChangeKind
from segments.incremental import dependency_order, pending_drain, pending_mark
from segments.membership import segment_build
from segments.models import Membership, PendingCustomer, Segment
from tags.models import Tag
from tags.services import customer_tags_add, customer_tags_remove, tag_delete, tag_rename
from tests.factories import CustomerFactory
from tests.segments.test_membership import (
    ACTOR,
    assert_consistent,
    attr,
    entered,
    event_rule,
    exited,
    group,
    in_segment,
    members,
    on_timeline,
    rules_set,
    segment_new,
    tag_rule,
    timeline,
    transitions,
)

pytestmark = pytest.mark.django_db


def upsert(user_id: str, **data) -> int:
    item = UpsertItem(user_id, profile_clean(data, custom_field_specs()))
    return customers_upsert([item], ACTOR)[user_id].id


def pending() -> dict[int, int]:
    return dict(PendingCustomer.objects.values_list("customer_id", "kinds"))


def built(name: str, tree: dict) -> Segment:
    segment = segment_new(name, tree)
    segment_build(segment.pk)
    return segment


@pytest.fixture
def evaluated(monkeypatch):
    """The names of the segments evaluated, in order."""
    calls: list[str] = []
    real = membership._evaluate_wave

    def spy(cursor, wave, *args, **kwargs):
        calls.extend(segment.name for segment in wave)
        return real(cursor, wave, *args, **kwargs)

    monkeypatch.setattr(membership, "_evaluate_wave", spy)
    return calls


# --- every write path queues its customers ---------------------------------------------------


def test_a_profile_change_through_upsert_is_queued_and_drained():
    oslo = built("Oslo", group(attr("city", "is", "oslo")))
    customer_id = upsert("ann", city="Lisbon")
    pending_drain()
    assert members(oslo) == set()

    upsert("ann", city="Oslo")
    assert pending() == {customer_id: ChangeKind.PROFILE | ChangeKind.TAGS}
    assert pending_drain() == 1
    assert pending() == {}
    assert members(oslo) == {"ann"}
    assert transitions(oslo) == entered("ann")
    assert timeline(oslo) == on_timeline(entered("ann"))

    upsert("ann", city="Oslo")  # unchanged: nothing is queued
    assert pending() == {}
    upsert("ann", city="Rome")
    pending_drain()
    assert transitions(oslo) == entered("ann") + exited("ann")
    assert_consistent(oslo)


def test_a_custom_field_change_is_drained():
    CustomField.objects.create(name="plan", label="Plan", type="text")
    gold = built("Gold", group(attr("custom.plan", "has_value", "gold")))
    upsert("ann", custom={"plan": "silver, gold"})
    pending_drain()
    assert members(gold) == {"ann"}
    upsert("ann", custom={"plan": None})
    pending_drain()
    assert transitions(gold) == entered("ann") + exited("ann")


def test_a_new_customer_is_evaluated_against_every_segment():
    nobody_named = built("No name", group(attr("name", "is_empty")))
    upsert("new")
    assert pending() == {Customer.objects.get(user_id="new").pk: ChangeKind.ALL}
    pending_drain()
    assert members(nobody_named) == {"new"}
    assert transitions(nobody_named) == entered("new")


def test_tagging_untagging_and_deleting_a_tag_are_drained():
    vip = Tag.objects.create(name="VIP")
    has_vip = built("VIP", group(tag_rule("has_any", "vip")))
    without_vip = built("Not VIP", group(tag_rule("has_none", "VIP")))
    ann, bob = CustomerFactory(user_id="ann"), CustomerFactory(user_id="bob")
    pending_mark([ann.pk, bob.pk], ChangeKind.CREATED)
    pending_drain()
    assert (members(has_vip), members(without_vip)) == (set(), {"ann", "bob"})

    customer_tags_add(customer=ann, names=["vip"], actor=ACTOR)
    customer_tags_add(customer=bob, names=["VIP"], actor=ACTOR)
    assert pending() == {ann.pk: ChangeKind.TAGS, bob.pk: ChangeKind.TAGS}
    pending_drain()
    assert (members(has_vip), members(without_vip)) == ({"ann", "bob"}, set())

    customer_tags_remove(customer=bob, tags=[vip], actor=ACTOR)
    pending_drain()
    assert (members(has_vip), members(without_vip)) == ({"ann"}, {"bob"})

    tag_delete(tag=vip, actor=ACTOR)
    assert pending() == {ann.pk: ChangeKind.TAGS}
    pending_drain()
    assert (members(has_vip), members(without_vip)) == (set(), {"ann", "bob"})
    assert transitions(has_vip) == entered("ann", "bob") + exited("ann", "bob")
    assert transitions(without_vip) == (
        entered("ann", "bob") + exited("ann", "bob") + entered("ann", "bob")
    )
    for segment in (has_vip, without_vip):
        assert_consistent(segment)


def test_a_renamed_tag_keeps_its_segments_working():
    vip = Tag.objects.create(name="vip")
    segment = built("VIP", group(group(tag_rule("has_all", "vip"), attr("city", "is_not_empty"))))
    ann = CustomerFactory(user_id="ann")
    customer_tags_add(customer=ann, names=["vip"], actor=ACTOR)
    pending_drain()
    assert members(segment) == {"ann"}

    tag_rename(tag=vip, name="Gold", actor=ACTOR)
    segment.refresh_from_db()
    assert segment.rules["children"][0]["children"][0]["tags"] == ["Gold"]
    assert segment_build(segment.pk).changes.exited == []  # same tag, same members

    bob = CustomerFactory(user_id="bob")
    customer_tags_add(customer=bob, names=["gold"], actor=ACTOR)
    pending_drain()
    assert members(segment) == {"ann", "bob"}
    assert transitions(segment) == entered("ann", "bob")


def test_events_and_analytics_fields_from_ingest_are_drained():
    buyers = built("Buyers", group(event_rule("purchase", "gte", 2)))
    firefox = built("Firefox", group(attr("last_browser_name", "is", "firefox")))
    CustomerFactory(user_id="ann")
    now = datetime.now(UTC)
    web = {"platform": "web", "browser": "Firefox"}

    def send(*events):
        return events_ingest(list(events), actor=Actor.system("tests"), now=now)

    send({"user_id": "ann", "name": "purchase", "timestamp": now.isoformat(), "context": web})
    ann = Customer.objects.get(user_id="ann")
    assert pending() == {ann.pk: ChangeKind.EVENTS}
    pending_drain()
    assert (members(buyers), members(firefox)) == (set(), {"ann"})

    send(
        {"user_id": "ann", "name": "purchase", "timestamp": (now - timedelta(hours=1)).isoformat()}
    )
    # A customer first seen in an event is created and evaluated like any other.
    send({"user_id": "cat", "name": "purchase"}, {"user_id": "cat", "name": "purchase"})
    cat = Customer.objects.get(user_id="cat")
    assert pending()[cat.pk] == ChangeKind.EVENTS | ChangeKind.CREATED
    pending_drain()
    assert members(buyers) == {"ann", "cat"}
    assert transitions(buyers) == entered("ann", "cat")
    assert transitions(firefox) == entered("ann")


# --- what a drain evaluates ------------------------------------------------------------------


def test_segments_whose_change_kinds_do_not_match_are_not_evaluated(evaluated):
    Tag.objects.create(name="vip")
    built("Tags only", group(tag_rule("has_any", "vip")))
    built("Events only", group(event_rule("purchase")))
    built("City", group(attr("city", "is", "oslo")))
    ann = CustomerFactory(user_id="ann")
    for segment in Segment.objects.filter(predefined=True):  # they read events
        segment_build(segment.pk)

    evaluated.clear()
    pending_mark([ann.pk], ChangeKind.PROFILE)
    pending_drain()
    assert evaluated == ["City"]

    evaluated.clear()
    pending_mark([ann.pk], ChangeKind.TAGS)
    pending_drain()
    assert evaluated == ["Tags only"]

    evaluated.clear()
    pending_mark([ann.pk], ChangeKind.CREATED)
    pending_drain()
    assert sorted(evaluated) == sorted(Segment.objects.values_list("name", flat=True))


def test_a_segment_that_reads_another_follows_it_in_the_same_drain(evaluated):
    # B is created first so that id order and dependency order disagree.
    b = built("B", group(attr("city", "is_not_empty")))
    a = built("A", group(attr("city", "is", "oslo")))
    not_a = built("Not A", group(in_segment(a, "not_in")))
    b = rules_set(b, group(in_segment(a), attr("email", "is_not_empty")))
    segment_build(b.pk, b.revision)
    ann = CustomerFactory(user_id="ann", city="Lisbon")
    pending_mark([ann.pk], ChangeKind.CREATED)
    pending_drain()
    assert (members(a), members(b), members(not_a)) == (set(), set(), {"ann"})

    evaluated.clear()
    upsert("ann", city="Oslo")
    pending_drain()

    assert (members(a), members(b), members(not_a)) == ({"ann"}, {"ann"}, set())
    assert evaluated.index("A") < evaluated.index("B")
    assert evaluated.index("A") < evaluated.index("Not A")
    assert transitions(b) == entered("ann")
    assert transitions(not_a) == entered("ann") + exited("ann")
    assert pending() == {}


def test_dependency_order_puts_a_segment_before_those_that_read_it():
    c = segment_new("C", group(attr("city", "is_not_empty")))
    b = segment_new("B", group(attr("city", "is_not_empty")))
    a = segment_new("A", group(attr("city", "is", "oslo")))
    b = rules_set(b, group(in_segment(a)))
    c = rules_set(c, group(in_segment(b), in_segment(a, "not_in"), match="any"))
    d = segment_new("D", group(attr("city", "is", "rome")))

    for given in ([c, b, a, d], [a, b, c, d], [d, c, a, b]):
        order = [s.name for s in dependency_order(given)]
        assert order.index("A") < order.index("B") < order.index("C")
        assert sorted(order) == ["A", "B", "C", "D"]
    # A segment read by one outside the list is not waited for.
    assert [s.name for s in dependency_order([c, a])] == ["A", "C"]


def test_a_build_queues_the_customers_it_changed_for_segments_reading_it():
    a = built("A", group(attr("city", "is", "oslo")))
    b = built("B", group(in_segment(a)))
    ann = CustomerFactory(user_id="ann", city="Oslo")
    segment_build(a.pk)
    assert pending() == {ann.pk: ChangeKind.MEMBERSHIP}
    pending_drain()
    assert members(b) == {"ann"}
    assert transitions(b) == entered("ann")


# --- drains that fail or overlap -------------------------------------------------------------


class Killed(Exception):
    pass


def test_a_drain_killed_midway_leaves_its_rows_for_the_next_one(monkeypatch):
    a = built("A", group(attr("city", "is", "oslo")))
    b = built("B", group(in_segment(a)))
    ann = CustomerFactory(user_id="ann", city="Oslo")
    bob = CustomerFactory(user_id="bob", city="Oslo")
    pending_mark([ann.pk, bob.pk], ChangeKind.PROFILE)
    real = membership._evaluate_wave

    def dies_on_bob_in_b(cursor, wave, ids, *args, **kwargs):
        if any(segment.pk == b.pk for segment in wave) and bob.pk in ids:
            raise Killed
        return real(cursor, wave, ids, *args, **kwargs)

    monkeypatch.setattr(membership, "_evaluate_wave", dies_on_bob_in_b)
    with pytest.raises(Killed):
        pending_drain(batch=1)
    # Ann's batch was done and committed; Bob's rolled back as a whole (A included).
    assert (members(a), members(b)) == ({"ann"}, {"ann"})
    assert pending() == {bob.pk: ChangeKind.PROFILE}

    monkeypatch.setattr(membership, "_evaluate_wave", real)
    assert pending_drain() == 1
    assert pending() == {}
    assert members(a) == members(b) == {"ann", "bob"}
    assert transitions(a) == transitions(b) == entered("ann", "bob")
    for segment in (a, b):
        assert_consistent(segment)


def test_a_customer_marked_again_during_a_drain_stays_queued(monkeypatch):
    oslo = built("Oslo", group(attr("city", "is", "oslo")))
    ann = CustomerFactory(user_id="ann", city="Lisbon")
    bob = CustomerFactory(user_id="bob", city="Lisbon")
    pending_mark([ann.pk, bob.pk], ChangeKind.PROFILE)
    real = incremental.customers_evaluate

    def meanwhile(customer_ids, kinds, **kwargs):
        result = real(customer_ids, kinds, **kwargs)
        # A write committed while the batch was being evaluated, after its diff ran.
        Customer.objects.filter(pk=ann.pk).update(city="Oslo")
        pending_mark([ann.pk], ChangeKind.TAGS)
        return result

    monkeypatch.setattr(incremental, "customers_evaluate", meanwhile)
    assert pending_drain(max_batches=1) == 2
    assert pending() == {ann.pk: ChangeKind.PROFILE | ChangeKind.TAGS}
    assert members(oslo) == set()

    monkeypatch.setattr(incremental, "customers_evaluate", real)
    pending_drain()
    assert pending() == {}
    assert members(oslo) == {"ann"}


def test_a_drain_works_through_the_queue_in_batches():
    oslo = built("Oslo", group(attr("city", "is", "oslo")))
    people = [CustomerFactory(user_id=f"c{i}", city="Oslo") for i in range(7)]
    pending_mark([c.pk for c in people], ChangeKind.PROFILE)
    assert pending_drain(batch=3, max_batches=2) == 6
    assert len(pending()) == 1
    assert pending_drain(batch=3) == 1
    assert members(oslo) == {f"c{i}" for i in range(7)}
    assert_consistent(oslo)


# --- erasure ---------------------------------------------------------------------------------


def test_erasure_keeps_member_counts_right():
    a = built("Oslo", group(attr("city", "is", "oslo")))
    b = built("Everyone", group(attr("user_id", "is_not_empty")))
    people = [CustomerFactory(user_id=f"c{i}", city="Oslo" if i % 2 else "Rome") for i in range(6)]
    for segment in (a, b):
        segment_build(segment.pk)
    assert (members(a), len(members(b))) == ({"c1", "c3", "c5"}, 6)

    customers_erase(Customer.objects.filter(pk__in=[people[1].pk, people[2].pk]), ACTOR)

    for segment, count in ((a, 2), (b, 4)):
        segment.refresh_from_db()
        assert segment.member_count == count
        assert Membership.objects.filter(segment_id=segment.pk).count() == count
    assert not segment_build(a.pk).changes and not segment_build(b.pk).changes
