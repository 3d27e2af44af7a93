"""Stored membership (segments/membership.py): the full build and its diff, transitions and
timeline events written exactly once, chunked and interrupted builds, stale revisions, and
builds racing each other or incremental evaluation on real connections.

The small rule-tree and reading helpers at the top are shared by the other segment test
modules of this package."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import F

from activity.services import Actor
from customers.models import Customer
from customers.services import customers_erase
from events.models import Event, EventType
from segments.fields import ChangeKind
from segments.incremental import pending_drain, pending_mark
from segments.membership import segment_build, segment_evaluate, segments_evaluate
from segments.models import Membership, Segment, SegmentSize, SegmentStatus, Transition
from segments.services import SegmentChange, segment_create, segment_delete, segment_update
from segments.tasks import build_segment, ensure_segment_indexes, evaluate_pending, sweep_segments
from tests import concurrency
from tests.factories import CustomerFactory

ACTOR = Actor.system("tests")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


# --- rule trees ------------------------------------------------------------------------------


def group(*children: dict, match: str = "all", negate: bool = False) -> dict:
    return {"type": "group", "match": match, "negate": negate, "children": list(children)}


def attr(field: str, operator: str, value: Any = None, **extra: Any) -> dict:
    node = {"type": "attribute", "field": field, "operator": operator, **extra}
    if value is not None:
        node["value"] = value
    return node


def event_rule(name: str, operator: str = "gte", count: int = 1, time: dict | None = None) -> dict:
    return {
        "type": "event",
        "name": name,
        "count": {"operator": operator, "value": count},
        "time": time or {"operator": "any_time"},
    }


def tag_rule(operator: str, *tags: str, within: dict | None = None) -> dict:
    node: dict[str, Any] = {"type": "tag", "operator": operator, "tags": list(tags)}
    if within:
        node["within"] = within
    return node


def in_segment(segment: Segment, operator: str = "in") -> dict:
    return {"type": "segment", "operator": operator, "segment": segment.pk}


def segment_new(name: str, tree: dict, tz: str = "UTC") -> Segment:
    return segment_create(name=name, rules=tree, actor=ACTOR, tz=tz)


def rules_set(segment: Segment, tree: dict) -> Segment:
    segment.refresh_from_db()
    return segment_update(segment=segment, change=SegmentChange(rules=tree), actor=ACTOR)


# --- reading what a segment stored -----------------------------------------------------------


def members(segment: Segment) -> set[str]:
    ids = Membership.objects.filter(segment_id=segment.pk).values_list("customer_id", flat=True)
    return set(Customer.objects.filter(pk__in=list(ids)).values_list("user_id", flat=True))


def transitions(segment: Segment) -> Counter:
    """(user_id, kind) → how many transition rows."""
    rows = Transition.objects.filter(segment_id=segment.pk).values_list("user_id", "kind")
    return Counter(rows)


def timeline(segment: Segment) -> Counter:
    """(user_id, "segment-entered" | "segment-exited") → how many timeline events."""
    rows = Event.objects.filter(properties__segment_id=segment.pk).values_list(
        "customer__user_id", "event_type__name"
    )
    return Counter(rows)


def entered(*user_ids: str) -> Counter:
    return Counter({(u, "entered"): 1 for u in user_ids})


def exited(*user_ids: str) -> Counter:
    return Counter({(u, "exited"): 1 for u in user_ids})


def on_timeline(transitions_: Counter) -> Counter:
    return Counter({(u, f"segment-{kind}"): n for (u, kind), n in transitions_.items()})


def assert_consistent(segment: Segment) -> None:
    """The stored count is the number of rows, and every transition has its timeline event."""
    segment.refresh_from_db()
    assert segment.member_count == Membership.objects.filter(segment_id=segment.pk).count()
    assert timeline(segment) == on_timeline(transitions(segment))
    linked = Transition.objects.filter(segment_id=segment.pk).values_list("event_id", flat=True)
    events = Event.objects.filter(pk__in=list(linked), properties__segment_id=segment.pk)
    assert events.count() == len(linked)


def catalog_counts() -> dict[str, int]:
    return dict(
        EventType.objects.filter(name__in=("segment-entered", "segment-exited")).values_list(
            "name", "event_count"
        )
    )


def customers(**cities: str) -> dict[str, Customer]:
    """Customers by user ID, created in the order given (ids ascend)."""
    return {
        user_id: CustomerFactory(user_id=user_id, city=city) for user_id, city in cities.items()
    }


OSLO = group(attr("city", "is", "oslo"))


# --- the full build --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_build_stores_members_count_size_and_status():
    customers(a="Oslo", b="Lisbon", c="OSLO", d="")
    segment = segment_new("Oslo", OSLO)
    assert (segment.status, segment.built_revision) == (SegmentStatus.COMPUTING, 0)

    result = segment_build(segment.pk, segment.revision, now=NOW)

    assert result.status == "built"
    assert members(segment) == {"a", "c"}
    segment.refresh_from_db()
    assert segment.member_count == 2
    assert segment.status == SegmentStatus.READY
    assert segment.built_revision == segment.revision == 1
    assert (segment.built_at, segment.build_progress, segment.build_error) == (NOW, 100, "")
    size = SegmentSize.objects.get(segment=segment)
    assert (size.day, size.member_count) == (NOW.date(), 2)
    stamps = Membership.objects.filter(segment_id=segment.pk).values_list("entered_at", flat=True)
    assert set(stamps) == {NOW}


@pytest.mark.django_db
def test_each_entering_customer_gets_one_transition_and_one_timeline_event():
    people = customers(a="Oslo", b="Lisbon", c="Oslo")
    segment = segment_new("Oslo", OSLO)
    before = catalog_counts()

    result = segment_build(segment.pk, now=NOW)

    assert sorted(result.changes.entered) == sorted([people["a"].pk, people["c"].pk])
    assert result.changes.exited == []
    assert transitions(segment) == entered("a", "c")
    assert timeline(segment) == on_timeline(entered("a", "c"))
    for transition in Transition.objects.filter(segment_id=segment.pk):
        event = Event.objects.get(pk=transition.event_id)
        assert event.customer_id == transition.customer_id
        assert event.event_type.name == "segment-entered"
        assert event.properties == {"segment_id": segment.pk, "segment_name": "Oslo"}
        assert event.occurred_at == transition.occurred_at == NOW
        assert transition.segment_name == "Oslo"
    after = catalog_counts()
    assert after["segment-entered"] == before["segment-entered"] + 2
    assert after["segment-exited"] == before["segment-exited"]
    entered_type = EventType.objects.get(name="segment-entered")
    assert entered_type.properties["segment_id"] == "number"
    assert entered_type.properties["segment_name"] == "string"
    assert entered_type.last_seen >= NOW
    assert_consistent(segment)


@pytest.mark.django_db
def test_a_rebuild_with_no_changes_writes_nothing():
    customers(a="Oslo", b="Lisbon")
    segment = segment_new("Oslo", OSLO)
    segment_build(segment.pk, now=NOW)
    counts = (Transition.objects.count(), Event.objects.count(), catalog_counts())

    result = segment_build(segment.pk, now=NOW + timedelta(hours=1))

    assert result.status == "built" and not result.changes
    assert (Transition.objects.count(), Event.objects.count(), catalog_counts()) == counts
    stamps = Membership.objects.filter(segment_id=segment.pk).values_list("entered_at", flat=True)
    assert list(stamps) == [NOW]  # the member kept its entry time
    segment.refresh_from_db()
    assert segment.built_at == NOW + timedelta(hours=1)


@pytest.mark.django_db
def test_an_edit_that_removes_customers_writes_their_exits_once():
    customers(a="Oslo", b="Lisbon", c="Oslo")
    segment = segment_new("Cities", group(attr("city", "is_not_empty")))
    segment_build(segment.pk, now=NOW)
    assert members(segment) == {"a", "b", "c"}
    before = catalog_counts()

    segment = rules_set(segment, group(attr("city", "is", "lisbon")))
    assert segment.revision == 2
    result = segment_build(segment.pk, segment.revision, now=NOW)
    segment_build(segment.pk, segment.revision, now=NOW)  # again: nothing more

    assert len(result.changes.exited) == 2 and result.changes.entered == []
    assert members(segment) == {"b"}
    assert transitions(segment) == entered("a", "b", "c") + exited("a", "c")
    after = catalog_counts()
    assert after["segment-exited"] == before["segment-exited"] + 2
    assert after["segment-entered"] == before["segment-entered"]
    segment.refresh_from_db()
    assert (segment.member_count, segment.built_revision, segment.status) == (1, 2, "ready")
    assert_consistent(segment)


@pytest.mark.django_db
def test_a_missing_segment_and_an_older_revision_build_nothing():
    customers(a="Oslo")
    segment = segment_new("Oslo", OSLO)
    assert segment_build(segment.pk + 1000).status == "missing"

    segment = rules_set(segment, group(attr("city", "is", "rome")))
    assert segment_build(segment.pk, segment.revision - 1, now=NOW).status == "stale"

    assert members(segment) == set()
    assert not Transition.objects.filter(segment_id=segment.pk).exists()
    segment.refresh_from_db()
    assert (segment.status, segment.built_revision) == (SegmentStatus.COMPUTING, 0)


# --- chunks ----------------------------------------------------------------------------------

CITIES = {f"u{i}": city for i, city in enumerate(["Oslo", "Lisbon", "Oslo", "Rome"] * 3)}


@pytest.mark.django_db
@pytest.mark.parametrize("chunk", [1, 2, 3, 5])
def test_a_chunked_build_ends_like_a_build_in_one_chunk(chunk):
    people = customers(**CITIES)
    chunked = segment_new("Chunked", group(attr("city", "is_not", "rome")))
    whole = segment_new("Whole", group(attr("city", "is_not", "rome")))
    segment_build(chunked.pk, now=NOW, chunk=chunk)
    segment_build(whole.pk, now=NOW)
    assert members(chunked) == members(whole) == {u for u, c in CITIES.items() if c != "Rome"}

    # Some leave and some arrive: both kinds of change, spread over several chunks.
    Customer.objects.filter(city="Lisbon").update(city="Rome")
    Customer.objects.filter(pk=people["u3"].pk).update(city="Paris")
    starts = []
    segment_build(chunked.pk, now=NOW, chunk=chunk, on_chunk=starts.append)
    segment_build(whole.pk, now=NOW, on_chunk=starts.append)
    assert len(starts) == -(-len(CITIES) // chunk) + 1  # the chunked build, then the whole one
    assert members(chunked) == members(whole) == {"u0", "u2", "u3", "u4", "u6", "u8", "u10"}
    assert transitions(chunked) == transitions(whole)
    first = ("u0", "u1", "u2", "u4", "u5", "u6", "u8", "u9", "u10")
    assert transitions(chunked) == entered(*first, "u3") + exited("u1", "u5", "u9")
    for segment in (chunked, whole):
        assert_consistent(segment)


@pytest.mark.django_db
def test_a_newer_revision_stops_a_build_between_chunks():
    customers(**CITIES)
    segment = segment_new("Oslo", OSLO)

    def edit(start):
        Segment.objects.filter(pk=segment.pk).update(revision=F("revision") + 1)

    result = segment_build(segment.pk, segment.revision, now=NOW, chunk=2, on_chunk=edit)

    assert result.status == "stale"
    assert [u for u, _ in transitions(segment)] == ["u0"]  # the first chunk only
    segment.refresh_from_db()
    assert (segment.status, segment.built_revision) == (SegmentStatus.COMPUTING, 0)
    assert not SegmentSize.objects.filter(segment=segment).exists()


class Killed(Exception):
    pass


@pytest.mark.django_db
def test_an_interrupted_build_resumes_to_the_same_state_with_transitions_once():
    customers(**CITIES)
    interrupted = segment_new("Interrupted", group(attr("city", "is", "lisbon")))
    straight = segment_new("Straight", group(attr("city", "is", "lisbon")))
    for segment in (interrupted, straight):
        segment_build(segment.pk, now=NOW)
    new_rules = group(attr("city", "is", "oslo"), attr("city", "is", "rome"), match="any")
    interrupted, straight = rules_set(interrupted, new_rules), rules_set(straight, new_rules)

    calls = []

    def kill_after_two(start):
        calls.append(start)
        if len(calls) == 2:
            raise Killed

    with pytest.raises(Killed):
        segment_build(
            interrupted.pk, interrupted.revision, now=NOW, chunk=3, on_chunk=kill_after_two
        )
    half = members(interrupted)
    # The first two chunks (u0-u5) follow the new rules, the rest still the old ones.
    assert half == {"u0", "u2", "u3", "u4", "u9"}
    interrupted.refresh_from_db()
    assert interrupted.status == SegmentStatus.COMPUTING
    assert interrupted.member_count == len(half)

    again = segment_build(interrupted.pk, interrupted.revision, now=NOW, chunk=3)
    segment_build(straight.pk, straight.revision, now=NOW, chunk=3)

    assert again.status == "built"
    assert (
        members(interrupted) == members(straight) == {u for u, c in CITIES.items() if c != "Lisbon"}
    )
    assert transitions(interrupted) == transitions(straight)
    assert max(transitions(interrupted).values()) == 1
    for segment in (interrupted, straight):
        assert_consistent(segment)
        assert segment.status == SegmentStatus.READY


@pytest.mark.django_db
def test_evaluating_some_customers_changes_only_them():
    people = customers(a="Oslo", b="Oslo", c="Lisbon")
    segment = segment_new("Oslo", OSLO)
    segment_build(segment.pk, now=NOW)
    Customer.objects.update(city="Lisbon")

    changes = segment_evaluate(segment, [people["a"].pk, people["c"].pk], now=NOW)
    again = segment_evaluate(segment, [people["a"].pk, people["c"].pk], now=NOW)

    assert (changes.entered, changes.exited, bool(again)) == ([], [people["a"].pk], False)
    assert members(segment) == {"b"}
    assert transitions(segment) == entered("a", "b") + exited("a")
    assert_consistent(segment)


# --- concurrency (real commits, one connection per thread) -----------------------------------


@pytest.fixture
def quiet_broker(monkeypatch):
    """Transactional tests really commit, so on_commit callbacks send their messages: keep
    them in a list instead of the broker."""
    sent: list[tuple[str, tuple]] = []
    for actor in (build_segment, evaluate_pending, ensure_segment_indexes, sweep_segments):

        def send(*args, _name=actor.actor_name, **kwargs):
            sent.append((_name, args))

        monkeypatch.setattr(actor, "send", send)
    return sent


def system_event_types() -> None:
    """A transactional test's flush removes migration data; the diff needs these two rows."""
    for name in ("segment-entered", "segment-exited"):
        EventType.objects.get_or_create(name=name, defaults={"builtin": True})


def race(*jobs: Callable[[], Any]) -> list:
    """Run each job in its own thread (its own connection), released together; every job must
    succeed. Returns their results."""
    outcomes = concurrency.race(*jobs)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert not errors, errors
    return outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_builds_racing_each_other_record_each_transition_once():
    system_event_types()
    cities = {f"r{i:02d}": ("Oslo" if i % 3 else "Lisbon") for i in range(30)}
    customers(**cities)
    segment = segment_new("Oslo", OSLO)
    before = catalog_counts()

    race(*[lambda: segment_build(segment.pk, now=NOW, chunk=1)] * 3)

    oslo = {u for u, c in cities.items() if c == "Oslo"}
    assert members(segment) == oslo
    assert transitions(segment) == entered(*oslo)
    assert_consistent(segment)

    # Everyone moves: the Oslo members leave, the others arrive, each exactly once.
    Customer.objects.filter(city="Oslo").update(city="Bergen")
    Customer.objects.filter(city="Lisbon").update(city="Oslo")
    race(*[lambda: segment_build(segment.pk, now=NOW, chunk=2)] * 3)

    lisbon = set(cities) - oslo
    assert members(segment) == lisbon
    assert transitions(segment) == entered(*cities) + exited(*oslo)
    assert_consistent(segment)
    after = catalog_counts()
    assert after["segment-entered"] - before.get("segment-entered", 0) == len(cities)
    assert after["segment-exited"] - before.get("segment-exited", 0) == len(oslo)
    assert segment.status == SegmentStatus.READY


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_a_build_on_several_connections_ends_like_one_on_a_single_connection():
    system_event_types()
    cities = {f"p{i:02d}": ("Oslo" if i % 3 else "Lisbon") for i in range(20)}
    customers(**cities)
    parallel, serial = segment_new("Parallel", OSLO), segment_new("Serial", OSLO)
    before = catalog_counts()
    ranges = []

    segment_build(parallel.pk, now=NOW, chunk=3, workers=3, on_chunk=ranges.append)
    segment_build(serial.pk, now=NOW, chunk=3, workers=1)

    assert len(ranges) == 7 and ranges.count((None, None)) == 0
    assert members(parallel) == members(serial) == {u for u, c in cities.items() if c == "Oslo"}
    assert transitions(parallel) == transitions(serial)
    for segment in (parallel, serial):
        assert_consistent(segment)
        assert (segment.status, segment.build_progress) == (SegmentStatus.READY, 100)
    entered_now = catalog_counts()["segment-entered"] - before.get("segment-entered", 0)
    assert entered_now == 2 * len(members(serial))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_a_failed_range_stops_a_parallel_build_and_a_rerun_completes_it():
    system_event_types()
    cities = {f"f{i:02d}": "Oslo" for i in range(20)}
    customers(**cities)
    segment = segment_new("Oslo", OSLO)
    done = []

    def fail_once(bounds):
        done.append(bounds)
        if len(done) == 2:
            raise Killed

    with pytest.raises(Killed):
        segment_build(segment.pk, now=NOW, chunk=2, workers=2, on_chunk=fail_once)
    assert len(done) < 10  # the other worker stopped too
    assert_consistent(segment)  # every range that committed is complete and counted
    assert segment.status == SegmentStatus.COMPUTING

    segment_build(segment.pk, now=NOW, chunk=2, workers=2)
    assert members(segment) == set(cities)
    assert transitions(segment) == entered(*cities)
    assert_consistent(segment)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_a_build_racing_incremental_evaluation_records_each_transition_once():
    system_event_types()
    cities = {f"r{i:02d}": ("Oslo" if i % 2 else "Lisbon") for i in range(30)}
    people = customers(**cities)
    segment = segment_new("Oslo", OSLO)
    segment_build(segment.pk, now=NOW)
    Customer.objects.filter(city="Oslo").update(city="Bergen")
    Customer.objects.filter(city="Lisbon").update(city="Oslo")
    ids = [c.pk for c in people.values()]

    def evaluate_in_batches():
        for i in range(0, len(ids), 3):
            segment_evaluate(segment, ids[i : i + 3], now=NOW)
        # And through the queue, as a worker drains it.
        pending_mark(list(reversed(ids)), ChangeKind.PROFILE)
        pending_drain(batch=4)

    race(lambda: segment_build(segment.pk, now=NOW, chunk=1), evaluate_in_batches)

    oslo_first = {u for u, c in cities.items() if c == "Oslo"}
    assert members(segment) == set(cities) - oslo_first
    assert transitions(segment) == entered(*cities) + exited(*oslo_first)
    assert_consistent(segment)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_builds_of_two_segments_racing_an_evaluation_of_both_record_each_transition_once():
    system_event_types()
    cities = {f"r{i:02d}": ("Oslo" if i % 2 else "Lisbon") for i in range(24)}
    people = customers(**cities)
    oslo = segment_new("Oslo", OSLO)
    lisbon = segment_new("Lisbon", group(attr("city", "is", "lisbon")))
    ids = [c.pk for c in people.values()]

    def evaluate_both():
        for i in range(0, len(ids), 5):
            segments_evaluate([lisbon, oslo], ids[i : i + 5], now=NOW)

    race(
        lambda: segment_build(oslo.pk, now=NOW, chunk=1),
        lambda: segment_build(lisbon.pk, now=NOW, chunk=2),
        evaluate_both,
    )

    for segment, city in ((oslo, "Oslo"), (lisbon, "Lisbon")):
        wanted = {u for u, c in cities.items() if c == city}
        assert members(segment) == wanted
        assert transitions(segment) == entered(*wanted)
        assert_consistent(segment)


def evaluate_pausing(
    segment: Segment, ids: list[int], written: threading.Event, pause: Callable[[], None]
):
    """segment_evaluate, pausing after it wrote the memberships and before it updates the
    member count: sets ``written``, then calls ``pause``."""

    def pause_before_the_count(execute, sql, params, many, context):
        if sql.startswith("UPDATE segments_segment s SET member_count"):
            written.set()
            pause()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(pause_before_the_count):
        return segment_evaluate(segment, ids, now=NOW)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_deleting_a_segment_waits_for_an_open_evaluation_and_leaves_no_membership_behind():
    # Memberships have no key constraint on the segment: the evaluation holds the segment's
    # row from its start, and the delete locks that row before removing the memberships. The
    # evaluation pauses after writing the memberships, before it updates the member count.
    system_event_types()
    people = customers(a="Oslo", b="Oslo", c="Lisbon")
    segment = segment_new("Oslo", OSLO)
    segment_id = segment.pk
    ids = [c.pk for c in people.values()]
    written, order = threading.Event(), []

    def pause() -> None:
        time.sleep(0.5)  # the delete runs now, and must wait
        order.append("evaluation")

    def evaluate():
        return evaluate_pausing(segment, ids, written, pause)

    def delete():
        assert written.wait(timeout=30)
        segment_delete(segment=Segment.objects.get(pk=segment_id), actor=ACTOR)
        order.append("delete")

    changes, _ = race(evaluate, delete)

    assert sorted(changes.entered) == sorted([people["a"].pk, people["b"].pk])
    assert order == ["evaluation", "delete"]
    assert not Segment.objects.filter(pk=segment_id).exists()
    assert not Membership.objects.filter(segment_id=segment_id).exists()
    # An evaluation that starts after the delete writes nothing for the segment.
    assert segment_evaluate(segment, ids, now=NOW).customer_ids == []
    assert not Membership.objects.filter(segment_id=segment_id).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_an_erasure_waits_for_an_open_evaluation_then_takes_the_memberships_it_added():
    # Memberships and timeline events have no key constraint on the customer: evaluations
    # hold the erasure gate (customers/erasure_gate.py), so an erasure that starts while one
    # is open waits for its commit, then deletes what it wrote and takes it off the count.
    system_event_types()
    people = customers(a="Oslo", b="Oslo", c="Lisbon")
    segment = segment_new("Oslo", OSLO)
    ids = [c.pk for c in people.values()]
    written, release = threading.Event(), threading.Event()

    def pause() -> None:
        assert release.wait(timeout=30)

    def evaluate():
        return evaluate_pausing(segment, ids, written, pause)

    def erase():
        assert written.wait(timeout=30)
        return customers_erase(Customer.objects.filter(pk=people["a"].pk), ACTOR)

    def let_go():
        assert written.wait(timeout=30)
        concurrency.wait_for_blocked_advisory_lock()  # the erasure queued behind it
        release.set()

    changes, erased, _ = concurrency.race(evaluate, erase, let_go)

    assert sorted(changes.entered) == sorted([people["a"].pk, people["b"].pk]) and erased == 1
    rows = Membership.objects.filter(segment_id=segment.pk).values_list("customer_id", flat=True)
    assert list(rows) == [people["b"].pk]
    assert not Event.objects.filter(customer_id=people["a"].pk).exists()
    segment.refresh_from_db()
    assert segment.member_count == 1
