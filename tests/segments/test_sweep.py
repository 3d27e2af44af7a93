"""The scheduled sweep (segments/sweep.py) with a frozen clock: customers leave time-based
segments on the first sweep after their condition stops holding, never before; lost builds
are picked up; segments are swept in dependency order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from customers.models import Customer
from events.models import Event, EventType
from segments import sweep
from segments.membership import segment_build
from segments.models import Segment, SegmentStatus
from segments.sweep import LOST_BUILD_AFTER, segments_sweep
from tags.models import CustomerTag, Tag
from tests.factories import CustomerFactory
from tests.segments.test_membership import (
    assert_consistent,
    attr,
    entered,
    event_rule,
    exited,
    group,
    in_segment,
    members,
    rules_set,
    segment_new,
    tag_rule,
    transitions,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
WITHIN_30_DAYS = {"operator": "within_last", "value": 30, "unit": "days"}


def sweep_at(moment: datetime) -> dict[str, int]:
    with time_machine.travel(moment, tick=False):
        return segments_sweep()


def purchase(customer: Customer, at: datetime) -> None:
    event_type, _ = EventType.objects.get_or_create(name="purchase")
    Event.objects.create(customer=customer, event_type=event_type, occurred_at=at)


def test_a_last_purchase_ages_out_of_within_the_last_30_days_on_the_sweep_after():
    ann, bob = CustomerFactory(user_id="ann"), CustomerFactory(user_id="bob")
    purchase(ann, T0 - timedelta(days=3))
    purchase(ann, T0)  # the last one counts
    purchase(bob, T0 + timedelta(days=10))
    with time_machine.travel(T0 + timedelta(days=10, hours=1), tick=False):
        segment = segment_new("Recent buyers", group(event_rule("purchase", time=WITHIN_30_DAYS)))
    assert segment.time_based

    sweep_at(T0 + timedelta(days=10, hours=1))
    assert members(segment) == {"ann", "bob"}
    sweep_at(T0 + timedelta(days=30) - MINUTE)
    assert members(segment) == {"ann", "bob"}

    sweep_at(T0 + timedelta(days=30) + MINUTE)
    assert members(segment) == {"bob"}
    sweep_at(T0 + timedelta(days=30) + 2 * MINUTE)  # nothing more to do
    assert transitions(segment) == entered("ann", "bob") + exited("ann")

    sweep_at(T0 + timedelta(days=40) + MINUTE)
    assert members(segment) == set()
    assert transitions(segment) == entered("ann", "bob") + exited("ann", "bob")
    assert_consistent(segment)
    assert segment.status == SegmentStatus.READY
    assert segment.built_at == T0 + timedelta(days=40) + MINUTE


def test_a_tag_added_within_7_days_ages_out_on_the_sweep_after():
    vip = Tag.objects.create(name="vip")
    ann = CustomerFactory(user_id="ann")
    CustomerTag.objects.create(customer=ann, tag=vip)
    CustomerTag.objects.filter(customer=ann).update(added_at=T0)
    with time_machine.travel(T0, tick=False):
        segment = segment_new(
            "New VIPs", group(tag_rule("has_any", "vip", within={"value": 7, "unit": "days"}))
        )
    assert segment.time_based

    sweep_at(T0 + MINUTE)
    assert members(segment) == {"ann"}
    sweep_at(T0 + timedelta(days=7) - MINUTE)
    assert members(segment) == {"ann"}
    sweep_at(T0 + timedelta(days=7) + MINUTE)
    assert members(segment) == set()
    assert transitions(segment) == entered("ann") + exited("ann")


def test_a_relative_date_leaves_at_midnight_in_the_segment_time_zone():
    # 12:00 UTC on 1 March is 01:00 on 2 March in Auckland (UTC+13 then).
    ann = CustomerFactory(user_id="ann")
    Customer.objects.filter(pk=ann.pk).update(created_at=T0)
    with time_machine.travel(T0, tick=False):
        segment = segment_new(
            "Joined this week",
            group(attr("created_at", "was_within", 7, unit="days")),
            tz="Pacific/Auckland",
        )
    assert segment.time_based

    sweep_at(T0 + MINUTE)
    assert members(segment) == {"ann"}
    # 9 March is the last local day within 7 days of 2 March; it ends at 11:00 UTC.
    sweep_at(datetime(2026, 3, 9, 11, 0, tzinfo=UTC) - MINUTE)
    assert members(segment) == {"ann"}
    sweep_at(datetime(2026, 3, 9, 11, 0, tzinfo=UTC) + MINUTE)
    assert members(segment) == set()
    assert transitions(segment) == entered("ann") + exited("ann")


def test_a_segment_never_built_is_built_once_its_build_looks_lost():
    CustomerFactory(user_id="ann", city="Oslo")
    with time_machine.travel(T0, tick=False):
        segment = segment_new("Oslo", group(attr("city", "is", "oslo")))
    assert not segment.time_based

    sweep_at(T0 + LOST_BUILD_AFTER - MINUTE)  # its build message may still come
    segment.refresh_from_db()
    assert (segment.status, segment.built_revision, members(segment)) == ("computing", 0, set())

    sweep_at(T0 + LOST_BUILD_AFTER + MINUTE)
    segment.refresh_from_db()
    assert (segment.status, segment.built_revision, members(segment)) == ("ready", 1, {"ann"})

    # Built and not time-based: later sweeps leave it alone.
    Customer.objects.update(city="Rome")
    sweep_at(T0 + 10 * LOST_BUILD_AFTER)
    assert members(segment) == {"ann"}


def test_an_edited_segment_whose_build_was_lost_is_rebuilt():
    CustomerFactory(user_id="ann", city="Oslo")
    with time_machine.travel(T0, tick=False):
        segment = segment_new("Oslo", group(attr("city", "is", "oslo")))
        segment_build(segment.pk)
        segment = rules_set(segment, group(attr("city", "is", "rome")))
    sweep_at(T0 + LOST_BUILD_AFTER + MINUTE)
    segment.refresh_from_db()
    assert (segment.status, segment.built_revision, members(segment)) == ("ready", 2, set())


def test_the_sweep_goes_in_dependency_order(monkeypatch):
    ann = CustomerFactory(user_id="ann")
    purchase(ann, T0)
    built: list[str] = []
    real = sweep.segment_build

    def spy(segment_id, *args, **kwargs):
        built.append(Segment.objects.get(pk=segment_id).name)
        return real(segment_id, *args, **kwargs)

    monkeypatch.setattr(sweep, "segment_build", spy)
    within_60 = {"operator": "within_last", "value": 60, "unit": "days"}
    with time_machine.travel(T0, tick=False):
        # B is created first, so that id order and dependency order disagree.
        b = segment_new("B", group(event_rule("purchase", time=within_60)))
        a = segment_new("A", group(event_rule("purchase", time=WITHIN_30_DAYS)))
        b = rules_set(b, group(in_segment(a), event_rule("purchase", time=within_60)))
    assert a.pk > b.pk and b.time_based

    sweep_at(T0 + MINUTE)
    assert built.index("A") < built.index("B")
    assert members(a) == members(b) == {"ann"}  # B read A's new membership in the same sweep

    sweep_at(T0 + timedelta(days=30) + MINUTE)
    assert members(a) == members(b) == set()
    assert transitions(b) == entered("ann") + exited("ann")


def test_a_segment_that_fails_to_build_does_not_stop_the_sweep(monkeypatch):
    ann = CustomerFactory(user_id="ann")
    purchase(ann, T0)
    with time_machine.travel(T0, tick=False):
        broken = segment_new("Broken", group(event_rule("purchase", time=WITHIN_30_DAYS)))
        fine = segment_new("Fine", group(event_rule("purchase", time=WITHIN_30_DAYS)))
    real = sweep.segment_build

    def fails_for_broken(segment_id, *args, **kwargs):
        if segment_id == broken.pk:
            raise RuntimeError("canceling statement due to statement timeout")
        return real(segment_id, *args, **kwargs)

    monkeypatch.setattr(sweep, "segment_build", fails_for_broken)
    outcome = sweep_at(T0 + MINUTE)

    assert outcome["failed"] == 1
    assert members(fine) == {"ann"}
    broken.refresh_from_db()
    assert broken.status == SegmentStatus.FAILED
    assert "statement timeout" in broken.build_error

    monkeypatch.setattr(sweep, "segment_build", real)
    assert sweep_at(T0 + 2 * MINUTE)["failed"] == 0
    broken.refresh_from_db()
    assert (broken.status, broken.build_error, members(broken)) == ("ready", "", {"ann"})
