"""The Do Not Contact condition: its validation, what it compiles to (table-driven against a
fixed cast of customers and entries), its words, its explanation, the change kinds it reads,
the preview's reachable counts, and incremental evaluation when the list changes."""

from __future__ import annotations

from typing import Any

import pytest

from customers.models import Customer
from donotcontact.models import Entry
from donotcontact.suppression import customers_mark_for_contacts
from segments.describe import DescribeContext, condition_text, summary
from segments.explain import explain
from segments.fields import ChangeKind, Registry
from segments.incremental import pending_drain
from segments.membership import segment_build
from segments.query import REACH_CHANNELS, matching_ids, preview
from segments.rules import RulesInvalid, rules_dependencies
from segments.services import segment_rules_clean
from tests.factories import CustomerFactory
from tests.segments.test_membership import exited, members, segment_new, transitions

pytestmark = pytest.mark.django_db


def dnc(operator: str = "is", channel: str | None = None, **scope: str) -> dict[str, Any]:
    return {"type": "do_not_contact", "operator": operator, "channel": channel, **scope}


def tree(*children: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return {"type": "group", "match": match, "negate": False, "children": list(children)}


# --- validation -----------------------------------------------------------------------------


def test_a_clean_condition_drops_empty_scope_and_tidies_the_sender():
    clean = segment_rules_clean(tree(dnc("is", "sms", sender="  Acme   Ltd ", account="")), "UTC")
    assert clean["children"] == [
        {"type": "do_not_contact", "operator": "is", "channel": "sms", "sender": "Acme Ltd"}
    ]
    clean = segment_rules_clean(tree({"type": "do_not_contact"}), "UTC")
    assert clean["children"] == [{"type": "do_not_contact", "operator": "is", "channel": None}]


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (dnc("maybe"), "operator"),
        (dnc("is", "fax"), "channel"),
        (dnc("is", "Email"), "channel"),
        ({**dnc(), "contact": "a@b.c"}, "contact"),
        (dnc("is", "sms", sender="x" * 101), "longer than 100"),
        (dnc("is", "sms", account="x" * 101), "longer than 100"),
        (dnc("is", "sms", sender="a\x00b"), "NUL"),
        ({**dnc(), "sender": 7}, "sender"),
    ],
)
def test_bad_conditions_are_refused_naming_the_node(node, message):
    with pytest.raises(RulesInvalid) as caught:
        segment_rules_clean(tree(attr_city(), node), "UTC")
    assert [e.node for e in caught.value.errors] == ["children[1]"]
    assert message in caught.value.errors[0].message


def attr_city() -> dict[str, Any]:
    return {"type": "attribute", "field": "city", "operator": "is_not_empty"}


def test_the_condition_reads_profile_changes_and_list_changes():
    deps = rules_dependencies(tree(dnc("is_not", "email")), Registry.load())
    assert deps.change_kinds & ChangeKind.DO_NOT_CONTACT
    assert deps.change_kinds & ChangeKind.PROFILE
    assert not deps.time_based


# --- what it matches ------------------------------------------------------------------------


@pytest.fixture
def cast() -> dict[str, int]:
    """Customers by user ID and the entries that list some of them."""
    people = {
        "ann": CustomerFactory(user_id="ann", email="ann@x.io", phone="+4711111111"),
        "bob": CustomerFactory(user_id="bob", email="bob@x.io", phone="+4722222222"),
        "cat": CustomerFactory(user_id="cat", email="cat@x.io", phone="+4733333333"),
        "dan": CustomerFactory(user_id="dan", email="", phone=""),
        "eve": CustomerFactory(user_id="eve", email="eve@x.io", phone="+4755555555"),
        "fay": CustomerFactory(user_id="fay", email="", phone="+4766666666"),
    }
    Entry.objects.create(contact="ann@x.io", channel="email")  # every sender
    Entry.objects.create(contact="+4722222222", channel="sms", sender="Acme")
    Entry.objects.create(contact="+4733333333", channel="")  # every phone channel
    Entry.objects.create(contact="eve@x.io", channel="email", account="acc-1")
    Entry.objects.create(contact="+4766666666", channel="whatsapp", sender="Acme", account="b")
    # A contact no customer has, and an empty one that must never match an empty address.
    Entry.objects.create(contact="ghost@x.io", channel="email")
    return {user_id: c.pk for user_id, c in people.items()}


CASES = [
    # (condition, who matches)
    (dnc("is", "email"), {"ann"}),
    (dnc("is", "sms"), {"cat"}),  # bob's SMS entry is only for the sender Acme
    (dnc("is", "sms", sender="Acme"), {"bob", "cat"}),
    (dnc("is", "sms", sender="Other"), {"cat"}),
    (dnc("is", "voice"), {"cat"}),  # an entry without a channel covers them all
    (dnc("is", "push"), {"cat"}),  # push is suppressed by the phone number
    (dnc("is", "whatsapp", sender="Acme"), {"cat"}),  # fay's entry also needs account b
    (dnc("is", "whatsapp", sender="Acme", account="b"), {"cat", "fay"}),
    (dnc("is", "whatsapp", account="b"), {"cat"}),  # ...and the sender Acme
    (dnc("is", "email", account="acc-1"), {"ann", "eve"}),
    (dnc("is", "email", account="acc-2"), {"ann"}),
    (dnc("is", None), {"ann", "cat"}),  # some channel, whatever the sender
    (dnc("is", None, sender="Acme"), {"ann", "bob", "cat"}),
    (dnc("is", None, sender="Acme", account="b"), {"ann", "bob", "cat", "fay"}),
    # Negations hold for customers without the address (dan has none, fay no e-mail).
    (dnc("is_not", "email"), {"bob", "cat", "dan", "eve", "fay"}),
    (dnc("is_not", "sms", sender="Acme"), {"ann", "dan", "eve", "fay"}),
    (dnc("is_not", None), {"bob", "dan", "eve", "fay"}),
]


@pytest.mark.parametrize(("node", "expected"), CASES)
def test_the_condition_matches_by_the_suppression_rules(cast, node, expected):
    clean = segment_rules_clean(tree(node), "UTC")
    assert _names(cast, matching_ids(clean, "UTC", list(cast.values()))) == expected
    # Under NOT (a group negated) the answer is the complement: never NULL.
    negated = {**clean, "negate": True}
    assert _names(cast, matching_ids(negated, "UTC", list(cast.values()))) == set(cast) - expected
    # The preview (a whole base, no candidates) counts the same customers.
    assert preview(clean, "UTC").count == len(expected)


def _names(cast: dict[str, int], ids: set[int]) -> set[str]:
    by_id = {pk: name for name, pk in cast.items()}
    return {by_id[i] for i in ids}


def test_it_combines_with_other_conditions(cast):
    Customer.objects.filter(pk=cast["bob"]).update(city="Oslo")
    Customer.objects.filter(pk=cast["cat"]).update(city="Oslo")
    clean = segment_rules_clean(
        tree(
            {"type": "attribute", "field": "city", "operator": "is", "value": "oslo"},
            dnc("is_not", None),
        ),
        "UTC",
    )
    assert _names(cast, matching_ids(clean, "UTC", list(cast.values()))) == {"bob"}


# --- words and explanation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "text"),
    [
        (dnc("is", "sms", sender="Acme"), "is on the Do Not Contact list for SMS (sender “Acme”)"),
        (dnc("is_not", "email"), "is not on the Do Not Contact list for Email"),
        (dnc("is", None), "is on the Do Not Contact list for any channel"),
        (
            dnc("is", "whatsapp", sender="Acme", account="b"),
            "is on the Do Not Contact list for WhatsApp (sender “Acme”, account “b”)",
        ),
    ],
)
def test_describe(node, text):
    clean = segment_rules_clean(tree(node), "UTC")
    ctx = DescribeContext(registry=Registry.load())
    assert condition_text(clean["children"][0], ctx) == text
    assert summary(clean, ctx) == f"All of: {text}"


def test_explain_names_the_entry_that_matched(cast):
    segment = segment_new("Listed for SMS", tree(dnc("is", "sms", sender="Acme")))
    bob = explain(segment, cast["bob"])
    assert bob["matches"] is True
    seen = bob["rules"]["children"][0]["seen"]
    assert (seen["contact"], seen["channel"], seen["sender"]) == ("+4722222222", "sms", "Acme")
    ann = explain(segment, cast["ann"])
    assert ann["matches"] is False
    assert ann["rules"]["children"][0]["seen"] is None

    from segments.describe import annotate

    line = annotate(bob["rules"], DescribeContext(registry=Registry.load()))
    assert line.children[0].seen.startswith("+4722222222 is listed for SMS (sender “Acme”)")
    line = annotate(ann["rules"], DescribeContext(registry=Registry.load()))
    assert line.children[0].seen == "not on the list"


def test_explain_for_any_channel_looks_at_the_phone_too(cast):
    segment = segment_new("Listed anywhere", tree(dnc("is", None)))
    seen = explain(segment, cast["cat"])["rules"]["children"][0]["seen"]
    assert (seen["contact"], seen["channel"]) == ("+4733333333", "")


# --- reachable counts -----------------------------------------------------------------------


def test_the_preview_counts_reachable_customers_per_channel(cast):
    Customer.objects.filter(pk__in=[cast["ann"], cast["cat"]]).update(
        device_tokens=[{"token": "t", "platform": "ios"}]
    )
    everyone = segment_rules_clean(tree(attr_user_id()), "UTC")
    result = preview(everyone, "UTC")
    assert result.count == 6
    assert result.reachable == {ch: _reachable_in_python(ch) for ch in REACH_CHANNELS}
    # Worked by hand: e-mail bob, cat, eve (ann listed, dan/fay none); SMS ann, bob (Acme only),
    # eve, fay (cat listed); WhatsApp, Viber, RCS and Voice the same; push only ann has a token
    # and is not listed.
    assert result.reachable == {
        "email": 3,
        "sms": 4,
        "whatsapp": 4,
        "viber": 4,
        "rcs": 4,
        "voice": 4,
        "push": 1,
    }
    assert [label for label, _ in result.reach] == [
        "Email",
        "SMS",
        "WhatsApp",
        "Viber",
        "RCS",
        "Voice",
        "Push",
    ]
    assert result.as_json()["reachable"] == result.reachable


def test_reachable_counts_only_the_matching_customers(cast):
    clean = segment_rules_clean(tree(dnc("is_not", "email"), attr_user_id()), "UTC")
    result = preview(clean, "UTC")
    assert result.count == 5
    assert result.reachable["email"] == 3  # bob, cat, eve; dan and fay have no e-mail
    assert preview(clean, "UTC", reach=False).reachable is None


def attr_user_id() -> dict[str, Any]:
    return {"type": "attribute", "field": "user_id", "operator": "is_not_empty"}


def _reachable_in_python(channel: str) -> int:
    """The reachable count by reading the rows: an address for the channel and no entry for
    it (on that channel or every channel) that applies to every sender and account."""
    entries = list(Entry.objects.values("contact", "channel", "sender", "account"))
    total = 0
    for c in Customer.objects.all():
        if channel == "email":
            address, has = c.email, bool(c.email)
        elif channel == "push":
            address, has = c.phone, bool(c.device_tokens)
        else:
            address, has = c.phone, bool(c.phone)
        listed = any(
            e["contact"] == address
            and e["channel"] in (channel, "")
            and e["sender"] == ""
            and e["account"] == ""
            for e in entries
        )
        total += has and not listed
    return total


def test_an_estimated_count_has_no_reachable_counts(cast, monkeypatch):
    from segments import query

    # A count that cannot finish within the statement timeout.
    monkeypatch.setattr(query, "_count_sql", lambda where, reach: ("SELECT pg_sleep(1)", []))
    clean = segment_rules_clean(tree(attr_user_id()), "UTC")
    result = preview(clean, "UTC", timeout_ms=20)
    assert result.estimated and result.reachable is None and result.reach == []


# --- incremental evaluation -----------------------------------------------------------------


def test_a_new_entry_makes_a_member_exit_through_the_incremental_path(cast):
    segment = segment_new("E-mailable", tree(dnc("is_not", "email")))
    segment_build(segment.pk)
    assert members(segment) == {"bob", "cat", "dan", "eve", "fay"}
    before = transitions(segment)

    Entry.objects.create(contact="bob@x.io", channel="email")
    customers_mark_for_contacts(["bob@x.io"])
    pending_drain()

    assert members(segment) == {"cat", "dan", "eve", "fay"}
    assert transitions(segment) - before == exited("bob")

    Entry.objects.filter(contact="bob@x.io").delete()
    customers_mark_for_contacts(["bob@x.io"])
    pending_drain()
    assert "bob" in members(segment)


def test_a_changed_address_re_evaluates_as_a_profile_change(cast):
    from segments.incremental import pending_mark

    segment = segment_new("Listed for e-mail", tree(dnc("is", "email")))
    segment_build(segment.pk)
    assert members(segment) == {"ann"}
    Customer.objects.filter(pk=cast["bob"]).update(email="ann@x.io")
    pending_mark([cast["bob"]], ChangeKind.PROFILE)
    pending_drain()
    assert members(segment) == {"ann", "bob"}
