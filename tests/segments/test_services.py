"""Segment writes (segments/services.py): revisions, builds queued after commit, names,
cycles, deletion while in use, time zones, and the predefined segments."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from activity.models import Activity
from activity.services import Actor
from events.models import Event, EventType
from members.roles import Role
from segments import tasks
from segments.fields import ChangeKind
from segments.membership import segment_build
from segments.models import Membership, Segment, SegmentStatus
from segments.rules import RulesInvalid
from segments.services import (
    NAME_MAX,
    SegmentChange,
    SegmentInUse,
    SegmentInvalid,
    SegmentNameTaken,
    segment_create,
    segment_delete,
    segment_duplicate,
    segment_update,
)
from tags.models import Tag
from tests.factories import CustomerFactory, MemberFactory
from tests.segments.test_membership import (
    ACTOR,
    attr,
    event_rule,
    group,
    in_segment,
    members,
    segment_new,
    tag_rule,
)

pytestmark = pytest.mark.django_db

OSLO = group(attr("city", "is", "oslo"))


@pytest.fixture
def sent(monkeypatch):
    """The messages sent by the segment actors: (actor name, args)."""
    messages: list[tuple[str, tuple]] = []
    for actor in (tasks.build_segment, tasks.ensure_segment_indexes):

        def send(*args, _name=actor.actor_name, **kwargs):
            messages.append((_name, args))

        monkeypatch.setattr(actor, "send", send)
    return messages


def update(segment: Segment, **change) -> Segment:
    return segment_update(segment=segment, change=SegmentChange(**change), actor=ACTOR)


# --- create and edit -------------------------------------------------------------------------


def test_create_stores_clean_rules_and_queues_a_build_after_commit(
    sent, django_capture_on_commit_callbacks, marketer
):
    Tag.objects.create(name="VIP")
    actor = Actor("ui", member=marketer)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        segment = segment_create(
            name="  Big   spenders ",
            description=" Buyers ",
            rules=group(tag_rule("has_any", "vip"), event_rule("purchase")),
            actor=actor,
        )
        assert sent == []  # nothing leaves before the commit
    assert len(callbacks) == 2
    assert sent == [("build_segment", (segment.pk, 1)), ("ensure_segment_indexes", ())]

    segment.refresh_from_db()
    assert (segment.name, segment.description) == ("Big spenders", "Buyers")
    assert (segment.revision, segment.status, segment.built_revision) == (1, "computing", 0)
    assert segment.rules["children"][0]["tags"] == ["VIP"]  # stored as the tag is named
    assert segment.change_kinds == ChangeKind.CREATED | ChangeKind.TAGS | ChangeKind.EVENTS
    assert (segment.time_based, segment.depends_on) == (False, [])
    assert segment.created_by == segment.updated_by == marketer
    assert Activity.objects.filter(action="segment.created", target_id=segment.pk).exists()


def test_a_rules_edit_bumps_the_revision_and_queues_its_build(
    sent, django_capture_on_commit_callbacks
):
    CustomerFactory(city="Oslo")
    segment = segment_new("Oslo", OSLO)
    segment_build(segment.pk)
    segment.refresh_from_db()
    assert (segment.status, segment.member_count) == ("ready", 1)

    within = {"operator": "within_last", "value": 7, "unit": "days"}
    with django_capture_on_commit_callbacks(execute=True):
        segment = update(segment, rules=group(event_rule("app-launch", time=within)))

    assert sent == [("build_segment", (segment.pk, 2)), ("ensure_segment_indexes", ())]
    segment.refresh_from_db()
    assert (segment.revision, segment.status, segment.build_progress) == (2, "computing", 0)
    assert segment.built_revision == 1
    assert segment.time_based and segment.change_kinds & ChangeKind.EVENTS
    # The old revision's build message finds it stale; the new one builds.
    assert segment_build(segment.pk, 1).status == "stale"
    assert segment_build(segment.pk, 2).status == "built"


def test_a_name_or_description_edit_keeps_the_revision_and_queues_nothing(
    sent, django_capture_on_commit_callbacks
):
    segment = segment_new("Oslo", OSLO)
    with django_capture_on_commit_callbacks(execute=True):
        segment = update(segment, name="Oslo people", description="Lives there")
    assert sent == []
    segment.refresh_from_db()
    assert (segment.name, segment.description, segment.revision) == (
        "Oslo people",
        "Lives there",
        1,
    )


def test_a_time_zone_edit_rebuilds(sent, django_capture_on_commit_callbacks):
    segment = segment_new("Joined", group(attr("created_at", "was_within", 7, unit="days")))
    with django_capture_on_commit_callbacks(execute=True):
        segment = update(segment, timezone="Asia/Tokyo")
    segment.refresh_from_db()
    assert (segment.timezone, segment.revision) == ("Asia/Tokyo", 2)
    assert ("build_segment", (segment.pk, 2)) in sent


def test_an_edit_from_a_stale_copy_keeps_the_stored_membership_state():
    """A page loads the segment, a build finishes, then the page saves a new name: the
    build's count, status and revision survive."""
    CustomerFactory(city="Oslo")
    CustomerFactory(city="Oslo")
    segment = segment_new("Oslo", OSLO)
    stale_copy = Segment.objects.get(pk=segment.pk)
    segment_build(segment.pk)

    returned = update(stale_copy, name="Oslo people")

    assert (returned.member_count, returned.status) == (2, "ready")
    segment.refresh_from_db()
    assert segment.name == "Oslo people"
    assert (segment.member_count, segment.status, segment.built_revision) == (2, "ready", 1)
    assert segment.built_at is not None and segment.build_progress == 100


def test_invalid_rules_are_refused_naming_the_node_and_nothing_is_stored():
    segment = segment_new("Oslo", OSLO)
    bad = group(attr("city", "is", "oslo"), group(attr("city", "gt", 3)))
    with pytest.raises(RulesInvalid) as caught:
        update(segment, rules=bad)
    assert [e.node for e in caught.value.errors] == ["children[1].children[0]"]
    segment.refresh_from_db()
    assert (segment.rules, segment.revision) == (OSLO, 1)
    with pytest.raises(RulesInvalid):
        segment_new("Empty", group())
    assert not Segment.objects.filter(name="Empty").exists()


# --- names -----------------------------------------------------------------------------------


def test_names_are_unique_ignoring_case():
    first = segment_new("VIP Buyers", OSLO)
    with pytest.raises(SegmentInvalid) as caught:
        segment_new("vip   buyers", OSLO)
    assert caught.value.field == "name"
    other = segment_new("Others", OSLO)
    with pytest.raises(SegmentInvalid):
        update(other, name="VIP BUYERS")
    update(first, name="vip buyers")  # its own name in another case
    assert Segment.objects.get(pk=first.pk).name == "vip buyers"
    for name in ("", "   ", "x" * (NAME_MAX + 1)):
        with pytest.raises(SegmentInvalid):
            segment_new(name, OSLO)


def test_a_name_taken_by_a_racing_save_is_refused_by_the_database(monkeypatch):
    segment_new("VIP Buyers", OSLO)
    # The racing writer saved between our check and our save: the check saw nothing.
    monkeypatch.setattr("segments.services._name_clean", lambda name, exclude=None: name)
    with pytest.raises(SegmentNameTaken):
        segment_new("vip buyers", OSLO)
    assert Segment.objects.filter(name__iexact="vip buyers").count() == 1


def test_duplicates_get_free_copy_names():
    original = segment_new("Lisbon", group(attr("city", "is", "lisbon")), tz="Europe/Lisbon")
    first = segment_duplicate(segment=original, actor=ACTOR)
    second = segment_duplicate(segment=original, actor=ACTOR)
    third = segment_duplicate(segment=original, actor=ACTOR)
    assert [first.name, second.name, third.name] == [
        "Copy of Lisbon",
        "Copy of Lisbon (2)",
        "Copy of Lisbon (3)",
    ]
    assert (first.rules, first.timezone, first.revision) == (original.rules, "Europe/Lisbon", 1)
    assert first.status == SegmentStatus.COMPUTING


def test_a_duplicate_of_a_long_name_still_fits():
    original = segment_new("x" * NAME_MAX, OSLO)
    copies = [segment_duplicate(segment=original, actor=ACTOR) for _ in range(3)]
    names = [c.name for c in copies]
    assert len(set(names)) == 3
    assert all(len(n) <= NAME_MAX and n.startswith("Copy of xxx") for n in names)
    assert names[1].endswith(" (2)") and names[2].endswith(" (3)")


# --- cycles and deletion ---------------------------------------------------------------------


def test_a_two_segment_cycle_is_refused_naming_the_condition():
    a = segment_new("A", OSLO)
    b = segment_new("B", group(in_segment(a)))
    with pytest.raises(RulesInvalid) as caught:
        update(a, rules=group(attr("city", "is_not_empty"), in_segment(b, "not_in")))
    (error,) = caught.value.errors
    assert error.node == "children[1]"
    assert "cycle" in error.message and "“B”" in error.message
    a.refresh_from_db()
    assert (a.rules, a.depends_on, a.revision) == (OSLO, [], 1)


def test_a_longer_cycle_is_refused_naming_the_condition():
    a = segment_new("A", OSLO)
    b = segment_new("B", group(in_segment(a)))
    c = segment_new("C", group(group(in_segment(b), attr("city", "is", "rome"), match="any")))
    with pytest.raises(RulesInvalid) as caught:
        update(a, rules=group(group(attr("city", "is", "oslo"), in_segment(c))))
    (error,) = caught.value.errors
    assert error.node == "children[0].children[1]"
    assert "cycle" in error.message and "“C”" in error.message
    # Reading the same segments without a cycle is fine.
    d = segment_new("D", group(in_segment(b), in_segment(c)))
    assert sorted(d.depends_on) == sorted([b.pk, c.pk])


def test_a_segment_cannot_read_itself():
    a = segment_new("A", OSLO)
    with pytest.raises(RulesInvalid) as caught:
        update(a, rules=group(in_segment(a)))
    assert caught.value.errors[0].node == "children[0]"


def test_delete_is_refused_while_another_segment_reads_it(sent, django_capture_on_commit_callbacks):
    CustomerFactory(city="Oslo")
    a = segment_new("A", OSLO)
    b = segment_new("B", group(in_segment(a)))
    c = segment_new("C", group(in_segment(a, "not_in")))
    segment_build(a.pk)
    with pytest.raises(SegmentInUse) as caught:
        segment_delete(segment=a, actor=ACTOR)
    assert [s.name for s in caught.value.users] == ["B", "C"]
    assert "“B”, “C”" in str(caught.value)
    assert Segment.objects.filter(pk=a.pk).exists()

    update(b, rules=OSLO)
    segment_delete(segment=c, actor=ACTOR)
    a_id = a.pk
    with django_capture_on_commit_callbacks(execute=True):
        segment_delete(segment=a, actor=ACTOR)
    assert not Segment.objects.filter(pk=a_id).exists()
    assert not Membership.objects.filter(segment_id=a_id).exists()
    assert Activity.objects.filter(action="segment.deleted", target_id=a_id).exists()
    # The indexes the deleted rules needed are reconsidered.
    assert ("ensure_segment_indexes", ()) in sent


# --- time zones ------------------------------------------------------------------------------


def test_the_time_zone_defaults_to_the_creating_member():
    member = MemberFactory(role=Role.MARKETER, timezone="America/Sao_Paulo")
    segment = segment_create(name="Mine", rules=OSLO, actor=Actor("ui", member=member))
    assert segment.timezone == "America/Sao_Paulo"
    given = segment_create(name="Given", rules=OSLO, actor=Actor("ui", member=member), tz="UTC")
    assert given.timezone == "UTC"
    assert segment_create(name="System", rules=OSLO, actor=ACTOR).timezone == "UTC"
    with pytest.raises(SegmentInvalid) as caught:
        segment_create(name="Bad", rules=OSLO, actor=ACTOR, tz="Mars/Olympus")
    assert caught.value.field == "timezone"


def test_naive_date_times_are_read_in_the_segment_time_zone():
    segment = segment_new(
        "Since", group(attr("created_at", "since", "2026-05-01T09:30")), tz="Europe/Lisbon"
    )
    assert segment.rules["children"][0]["value"] == "2026-05-01T08:30:00Z"


# --- predefined segments ---------------------------------------------------------------------


def test_the_predefined_segments_exist_and_build_from_app_launch_events():
    active = Segment.objects.get(name="Active Mobile Users")
    inactive = Segment.objects.get(name="Inactive Mobile Users")
    assert active.predefined and inactive.predefined
    assert active.time_based and inactive.time_based
    assert active.change_kinds & ChangeKind.EVENTS
    assert (active.status, active.built_revision) == ("computing", 0)

    launch = EventType.objects.get_or_create(name="app-launch")[0]
    now = timezone.now()
    for user_id, days_ago in (("recent", 5), ("lapsed", 40), ("edge", 29)):
        customer = CustomerFactory(user_id=user_id)
        Event.objects.create(
            customer=customer, event_type=launch, occurred_at=now - timedelta(days=days_ago)
        )
    CustomerFactory(user_id="never")
    other = EventType.objects.get_or_create(name="purchase")[0]
    Event.objects.create(
        customer=CustomerFactory(user_id="buyer"), event_type=other, occurred_at=now
    )

    for segment in (active, inactive):
        assert segment_build(segment.pk, segment.revision, now=now).status == "built"

    assert members(active) == {"recent", "edge"}
    assert members(inactive) == {"lapsed", "never", "buyer"}
    active.refresh_from_db()
    assert (active.status, active.member_count) == ("ready", 2)
