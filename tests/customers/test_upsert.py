from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activity.models import Activity
from activity.services import Actor
from customers.custom_fields import CustomFieldSpec
from customers.models import Customer, CustomField
from customers.profile import ProfileInvalid, profile_clean
from customers.upsert import UpsertItem, customers_upsert
from tags.models import CustomerTag, Tag

pytestmark = pytest.mark.django_db

SPECS = {"plan": CustomFieldSpec("plan", "text"), "score": CustomFieldSpec("score", "number")}


@pytest.fixture
def actor(marketer):
    CustomField.objects.create(name="plan", label="Plan", type="text")
    CustomField.objects.create(name="score", label="Score", type="number")
    return Actor("api", member=marketer)


def _item(user_id, **data) -> UpsertItem:
    return UpsertItem(user_id, profile_clean(data, SPECS))


def test_creates_then_updates_only_the_given_keys(actor):
    first = customers_upsert([_item("a", name="Ann", city="Oslo", custom={"plan": "gold"})], actor)
    assert first["a"].created
    again = customers_upsert([_item("a", city="Rome", custom={"score": 2})], actor)
    assert not again["a"].created and again["a"].id == first["a"].id
    c = Customer.objects.get(user_id="a")
    assert (c.name, c.city, c.custom) == ("Ann", "Rome", {"plan": "gold", "score": 2})


def test_user_ids_are_case_sensitive(actor):
    results = customers_upsert([_item("Abc"), _item("abc")], actor)
    assert results["Abc"].id != results["abc"].id


def test_a_later_item_for_the_same_user_wins(actor):
    results = customers_upsert(
        [
            _item("a", name="One", custom={"plan": "x"}, tags=["t1"]),
            _item("a", name="Two", custom={"plan": None, "score": 1}, tags=["T1", "t2"]),
        ],
        actor,
    )
    assert list(results) == ["a"]
    c = Customer.objects.get(user_id="a")
    assert c.name == "Two" and c.custom == {"score": 1}
    assert sorted(c.customer_tags.values_list("tag__name", flat=True)) == ["t1", "t2"]


def test_tags_are_added_with_provenance_and_created_once(actor, marketer):
    Tag.objects.create(name="VIP")
    customers_upsert([_item("a", tags=["vip", "New"]), _item("b", tags=["new"])], actor)
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["New", "VIP"]
    assignment = CustomerTag.objects.get(customer__user_id="a", tag__name="VIP")
    assert assignment.source == "api" and assignment.added_by == marketer
    assert CustomerTag.objects.count() == 3


def test_create_mode_refuses_an_existing_user_id(actor):
    customers_upsert([_item("a")], actor)
    with pytest.raises(ProfileInvalid) as exc:
        customers_upsert([_item("a", name="Other")], actor, mode="create")
    assert exc.value.errors[0].field == "user_id"
    assert Customer.objects.get(user_id="a").name == ""


def test_one_entry_per_customer_or_one_per_batch(actor):
    customers_upsert([_item("a", email="a@example.com", country="NO")], actor)
    entry = Activity.objects.get(action="customer.created")
    assert entry.target_label == "a" and entry.fields == ["email", "country"]
    assert entry.changes == {"country": "NO"}  # the e-mail address is personal: named, not shown
    customers_upsert([_item("a", city="x"), _item("b"), _item("c")], actor)
    batch = Activity.objects.get(action="customers.upserted")
    assert batch.count == 3
    assert batch.changes == {"created": 2, "updated": 1, "unchanged": 0}


text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
change = st.fixed_dictionaries(
    {},
    optional={
        "name": text,
        "city": text,
        "custom": st.fixed_dictionaries(
            {},
            optional={
                "plan": st.one_of(st.none(), text),
                "score": st.one_of(st.none(), st.integers(-9, 9)),
            },
        ),
    },
)


def _replay(items: list[tuple[str, dict]]) -> dict[str, dict]:
    """The reference: apply each item in order to plain dicts."""
    rows: dict[str, dict] = {}
    for user_id, data in items:
        row = rows.setdefault(user_id, {"name": "", "city": "", "custom": {}})
        for key in ("name", "city"):
            if key in data:
                row[key] = data[key].strip()
        for name, value in data.get("custom", {}).items():
            value = value.strip() if isinstance(value, str) else value
            if value is None or value == "":
                row["custom"].pop(name, None)
            else:
                row["custom"][name] = value
    return rows


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), change), max_size=8))
def test_batches_agree_with_applying_the_items_one_by_one(actor, items):
    """Property: one set-based batch leaves the same rows as a plain-Python replay."""
    Customer.objects.all().delete()
    if items:
        customers_upsert([_item(user_id, **data) for user_id, data in items], actor)
    got = {
        c.user_id: {"name": c.name, "city": c.city, "custom": c.custom}
        for c in Customer.objects.all()
    }
    assert got == _replay(items)


def test_an_identical_write_leaves_the_row_alone(actor):
    customers_upsert([_item("a", name="Ann", custom={"score": 1})], actor)
    before = Customer.objects.get(user_id="a").updated_at
    result = customers_upsert([_item("a", name="Ann", custom={"score": 1})], actor)["a"]
    assert (result.status, result.fields) == ("unchanged", [])
    assert Customer.objects.get(user_id="a").updated_at == before
    assert not Activity.objects.filter(action="customer.updated").exists()
    tagged = customers_upsert([_item("a", name="Ann", tags=["new"])], actor)["a"]
    assert (tagged.status, tagged.fields) == ("updated", ["tags"])
    batch = customers_upsert([_item("a", name="Ann"), _item("b")], actor)
    assert [r.status for r in batch.values()] == ["unchanged", "created"]
    entry = Activity.objects.get(action="customers.upserted")
    assert entry.changes == {"created": 1, "updated": 0, "unchanged": 1}
