"""The segment actors (segments/tasks.py), run as a worker would run them and twice, and the
custom-field expression indexes (segments/indexes.py) checked against PostgreSQL itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction

from customers.models import Customer, CustomField
from events.models import Event, EventType
from segments import indexes, membership
from segments.compiler import compile_rules
from segments.fields import ChangeKind
from segments.incremental import pending_mark
from segments.models import PendingCustomer, Segment, SegmentStatus
from segments.query import compile_context
from segments.services import segment_delete
from segments.tasks import build_segment, ensure_segment_indexes, evaluate_pending, sweep_segments
from tests.factories import CustomerFactory
from tests.segments.test_membership import (
    ACTOR,
    attr,
    entered,
    event_rule,
    exited,
    group,
    members,
    quiet_broker,  # noqa: F401 - a fixture
    rules_set,
    segment_new,
    transitions,
)

OSLO = group(attr("city", "is", "oslo"))


def test_actors_have_explicit_queues_retries_and_time_limits():
    for actor in (build_segment, evaluate_pending, sweep_segments, ensure_segment_indexes):
        assert actor.queue_name in ("default", "long")
        assert actor.options["max_retries"] >= 1
        assert actor.options["time_limit"] > 0


@pytest.mark.django_db
def test_build_segment_builds_once_and_a_second_run_changes_nothing():
    CustomerFactory(user_id="ann", city="Oslo")
    segment = segment_new("Oslo", OSLO)

    build_segment.fn(segment.pk, segment.revision)
    build_segment.fn(segment.pk, segment.revision)

    assert members(segment) == {"ann"}
    assert transitions(segment) == entered("ann")
    segment.refresh_from_db()
    assert (segment.status, segment.member_count) == (SegmentStatus.READY, 1)


@pytest.mark.django_db
def test_build_segment_for_an_older_revision_or_a_deleted_segment_does_nothing():
    CustomerFactory(user_id="ann", city="Oslo")
    segment = segment_new("Oslo", OSLO)
    segment = rules_set(segment, group(attr("city", "is", "rome")))
    build_segment.fn(segment.pk, 1)
    assert members(segment) == set()
    segment.refresh_from_db()
    assert (segment.status, segment.built_revision) == (SegmentStatus.COMPUTING, 0)
    build_segment.fn(segment.pk + 1000, 1)  # gone: returns quietly


@pytest.mark.django_db
def test_a_failed_build_shows_on_the_segment_until_a_retry_succeeds(monkeypatch):
    CustomerFactory(user_id="ann", city="Oslo")
    segment = segment_new("Oslo", OSLO)
    real = membership._build

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(membership, "_build", broken)
    with pytest.raises(RuntimeError):
        build_segment.fn(segment.pk, segment.revision)
    segment.refresh_from_db()
    assert (segment.status, segment.build_error) == (SegmentStatus.FAILED, "disk full")

    monkeypatch.setattr(membership, "_build", real)
    build_segment.fn(segment.pk, segment.revision)  # the retry
    segment.refresh_from_db()
    assert (segment.status, segment.build_error, segment.member_count) == ("ready", "", 1)


@pytest.mark.django_db
def test_evaluate_pending_drains_the_queue_and_a_second_run_finds_nothing():
    segment = segment_new("Oslo", OSLO)
    build_segment.fn(segment.pk, segment.revision)
    ann = CustomerFactory(user_id="ann", city="Oslo")
    pending_mark([ann.pk], ChangeKind.CREATED)

    evaluate_pending.fn()
    evaluate_pending.fn()

    assert not PendingCustomer.objects.exists()
    assert transitions(segment) == entered("ann")


@pytest.mark.django_db
def test_sweep_segments_is_safe_to_run_twice():
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    ann = CustomerFactory(user_id="ann")
    purchase = EventType.objects.get_or_create(name="purchase")[0]
    Event.objects.create(customer=ann, event_type=purchase, occurred_at=t0)
    within = {"operator": "within_last", "value": 1, "unit": "days"}
    with time_machine.travel(t0, tick=False):
        segment = segment_new("Today", group(event_rule("purchase", time=within)))
        sweep_segments.fn()
        sweep_segments.fn()
    assert transitions(segment) == entered("ann")
    with time_machine.travel(t0 + timedelta(days=1, minutes=1), tick=False):
        sweep_segments.fn()
        sweep_segments.fn()
    assert transitions(segment) == entered("ann") + exited("ann")


# --- expression indexes (CREATE INDEX CONCURRENTLY needs real commits) -----------------------


def index_defs() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE tablename = 'customers_customer' AND indexname LIKE %s",
            [indexes.PREFIX + "%"],
        )
        return dict(cursor.fetchall())


def plan_of(segment: Segment) -> str:
    """The plan of the segment's own compiled filter, with sequential scans priced out: an
    index appears only if its expression is exactly the one the compiler writes."""
    segment.refresh_from_db()
    ctx = compile_context(segment.rules, segment.timezone)
    where = compile_rules(segment.rules, ctx)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            f"EXPLAIN SELECT c.id FROM customers_customer c WHERE {where.sql}",  # noqa: S608
            where.params,
        )
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def custom_fields(transactional_db):
    CustomField.objects.create(name="score", label="Score", type="number")
    CustomField.objects.create(name="plan", label="Plan", type="text")
    CustomField.objects.create(name="renewal", label="Renewal", type="date")
    for i in range(30):
        CustomerFactory(custom={"score": i, "plan": "gold" if i % 3 else "silver, bronze"})
    yield
    with connection.cursor() as cursor:  # indexes are schema: the flush does not drop them
        for name in index_defs():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_indexes_follow_the_custom_fields_segments_use(custom_fields):
    assert index_defs() == {}
    scores = segment_new("High scores", group(attr("custom.score", "gt", 10)))

    ensure_segment_indexes.fn()
    defs = index_defs()
    (btree,) = [name for name in defs if "score" in name]
    assert "btree" in defs[btree] and "numeric" in defs[btree]
    assert indexes.indexes_sync() == {"created": [], "dropped": []}  # nothing more to do

    plans = segment_new("Gold plans", group(attr("custom.plan", "contains", "old")))
    exact = segment_new("Silver plans", group(attr("custom.plan", "is", "Silver, Bronze")))
    indexes.indexes_sync()
    plan_indexes = {name: d for name, d in index_defs().items() if "plan" in name}
    trigram = [n for n, d in plan_indexes.items() if "gin_trgm_ops" in d]
    btrees = [n for n, d in plan_indexes.items() if "btree" in d]
    assert len(trigram) == 1 and len(btrees) == 1
    assert "lower(" in plan_indexes[trigram[0]] and "lower(" in plan_indexes[btrees[0]]

    # A text field read only exactly needs no trigram index.
    segment_delete(segment=plans, actor=ACTOR)
    indexes.indexes_sync()
    assert trigram[0] not in index_defs() and btrees[0] in index_defs()

    # No segment reads the fields any more: their indexes go.
    segment_delete(segment=scores, actor=ACTOR)
    segment_delete(segment=exact, actor=ACTOR)
    outcome = indexes.indexes_sync()
    assert sorted(outcome["dropped"]) == sorted([btree, btrees[0]])
    assert index_defs() == {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_a_field_name_reused_with_another_type_gets_a_new_index(custom_fields):
    segment_new("High scores", group(attr("custom.score", "gt", 10)))
    indexes.indexes_sync()
    (number_index,) = index_defs()
    # The field is purged and its name taken again by a text field.
    CustomField.objects.filter(name="score").delete()
    CustomField.objects.create(name="score", label="Score", type="text")

    outcome = indexes.indexes_sync()

    (text_index,) = index_defs()
    assert outcome == {"created": [text_index], "dropped": [number_index]}
    assert "lower(" in index_defs()[text_index] and "numeric" not in index_defs()[text_index]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
@pytest.mark.parametrize(
    "field, rule",
    [
        ("score", attr("custom.score", "gt", 10)),
        ("plan", attr("custom.plan", "is", "Silver, Bronze")),
        ("plan", attr("custom.plan", "contains", "old")),
        ("renewal", attr("custom.renewal", "before", "2026-06-01")),
    ],
)
def test_a_compiled_custom_field_filter_can_use_its_index(custom_fields, field, rule):
    Customer.objects.filter(pk__in=Customer.objects.values("pk")[:5]).update(
        custom={"renewal": "2026-05-01T00:00:00Z"}
    )
    segment = segment_new("Filter", group(rule))
    indexes.indexes_sync()
    names = [n for n in index_defs() if f"_{field}_" in n]
    assert names
    plan = plan_of(segment)
    assert any(name in plan for name in names), plan


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_an_invalid_index_left_by_a_killed_build_is_rebuilt(custom_fields):
    segment_new("High scores", group(attr("custom.score", "gt", 10)))
    indexes.indexes_sync()
    (name,) = index_defs()
    with connection.cursor() as cursor:  # what an interrupted CREATE INDEX CONCURRENTLY leaves
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name]
        )
    outcome = indexes.indexes_sync()
    assert (outcome["dropped"], outcome["created"]) == ([name], [name])
    with connection.cursor() as cursor:
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", [name])
        assert cursor.fetchone()[0] is True


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quiet_broker")
def test_syncs_queued_by_several_saves_run_one_at_a_time(custom_fields):
    """Three saves queue three syncs that workers run at once; two CREATE INDEX CONCURRENTLY
    of the same index would deadlock, so they take turns and the later ones find it done."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    segment_new("High scores", group(attr("custom.score", "gt", 10)))

    def sync():
        try:
            return indexes.indexes_sync()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(lambda _: sync(), range(3)))
    created = [name for outcome in outcomes for name in outcome["created"]]
    assert len(created) == 1 and created[0] in index_defs()
