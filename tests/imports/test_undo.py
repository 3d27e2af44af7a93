"""Undoing an import (imports/undo.py, services.import_undo): created customers erased, changed
values restored only where nobody changed them since, the tags the import added removed, the
7-day window, and an undo that resumes after an interruption."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from activity.models import Activity
from customers import services as customer_services
from customers.models import Customer
from customers.services import custom_field_create
from imports import undo
from imports.models import Import, ImportStatus
from imports.services import ImportInvalid, import_undo
from segments.models import PendingCustomer
from tags.models import CustomerTag, Tag
from tags.services import tags_ensure
from tests.factories import CustomerFactory
from tests.imports.conftest import (
    SYSTEM,
    csv_text,
    customer,
    customers,
    make_import,
    tag_names,
    undo_log_size,
)

pytestmark = pytest.mark.django_db


class Interrupted(Exception):
    pass


@pytest.fixture
def world(db):
    """Custom fields, a tag some customers already have, and existing customers."""
    custom_field_create(label="Plan", type="text", actor=SYSTEM)
    custom_field_create(label="Score", type="number", actor=SYSTEM)
    vip = tags_ensure(["VIP"], SYSTEM)[0]
    old = CustomerFactory(
        user_id="old", name="Old", city="Oslo", country="NO", custom={"plan": "gold"}
    )
    CustomerFactory(user_id="later", name="Later", city="Rome", country="IT", custom={})
    CustomerFactory(user_id="same", name="Same", city="Lima", country="PE", custom={})
    CustomerFactory(user_id="bystander", name="Bystander")
    CustomerTag.objects.create(customer=old, tag=vip, source="ui")
    return {"vip": vip}


FILE = csv_text(
    "id,name,city,Plan,Score",
    "new1,New One,Paris,free,1",
    "new2,New Two,,,",
    "old,Older,Bergen,silver,9",  # standard and custom values change; Score did not exist
    "later,Latest,Milan,,5",
    "same,Same,Lima,,",
)


def undo_now(imp: Import) -> Import:
    imp = import_undo(imp=imp, actor=SYSTEM)
    assert imp.status == ImportStatus.UNDOING
    result = undo.import_undo_run(imp.pk)
    assert result is not None
    imp.refresh_from_db()
    return imp


def test_undo_erases_created_customers_and_restores_changed_values(world):
    before = customers()
    imp = make_import(FILE, tags=["Import batch", "VIP"])
    assert (imp.created, imp.updated, imp.unchanged, imp.tagged) == (2, 2, 1, 5)
    assert customer("old").custom == {"plan": "silver", "score": 9}
    # Someone edits a customer after the import: their value stays through the undo.
    Customer.objects.filter(user_id="later").update(city="Naples")
    PendingCustomer.objects.all().delete()

    imp = undo_now(imp)

    assert imp.status == ImportStatus.UNDONE and imp.undone_at is not None
    assert imp.message == (
        "Undone: 2 created customers removed, 2 restored, 5 tag assignments removed."
    )
    after = customers()
    assert set(after) == set(before)  # new1 and new2 are gone
    assert after["old"] == before["old"]  # name, city and Plan back; Score removed
    assert after["same"] == before["same"] and after["bystander"] == before["bystander"]
    assert after["later"]["name"] == "Later"  # restored
    assert after["later"]["city"] == "Naples"  # changed since the import: kept
    assert after["later"]["custom"] == {}  # Score removed
    assert not undo_log_size(imp)
    assert tag_names("old") == {"VIP"}  # it had VIP before the import
    assert tag_names("later") == tag_names("same") == set()
    assert not CustomerTag.objects.filter(added_by_import=imp.pk).exists()
    assert Tag.objects.filter(name="VIP").exists()
    assert set(PendingCustomer.objects.values_list("customer_id", flat=True)) == {
        customer(u).pk for u in ("old", "later", "same")
    }
    logged = Activity.objects.get(action="import.undone")
    assert logged.changes == {"removed": 2, "restored": 2, "untagged": 5}


@pytest.mark.django_db(transaction=True)
def test_undo_deletes_the_tag_the_import_created_when_it_is_left_empty():
    tags_ensure(["VIP"], SYSTEM)
    imp = make_import(csv_text("id,name", "a,Ann"), tags=["Import batch", "VIP"])
    assert Tag.objects.filter(name="Import batch").exists()

    undo_now(imp)

    assert set(Tag.objects.values_list("name", flat=True)) == {"VIP"}


def test_undo_keeps_the_import_tag_while_another_customer_still_has_it():
    imp = make_import(csv_text("id,name", "a,Ann"), tags=["Import batch"])
    tag = Tag.objects.get(name="Import batch")
    other = CustomerFactory(user_id="other")
    CustomerTag.objects.create(customer=other, tag=tag, source="ui")

    undo_now(imp)

    assert tag_names("other") == {"Import batch"}


def test_undo_is_refused_after_seven_days_and_for_what_cannot_be_undone():
    imp = make_import(csv_text("id,name", "a,Ann"))
    with time_machine.travel(imp.finished_at + timedelta(days=7, minutes=1)):
        imp.refresh_from_db()
        assert not imp.can_undo
        with pytest.raises(ImportInvalid, match="within 7 days"):
            import_undo(imp=imp, actor=SYSTEM)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.COMPLETED
    with time_machine.travel(imp.finished_at + timedelta(days=6, hours=23)):
        assert import_undo(imp=imp, actor=SYSTEM).status == ImportStatus.UNDOING

    dry = make_import(csv_text("id,name", "b,Bob"), dry_run=True)
    nothing = make_import(csv_text("id,name", "a,Ann"))  # a is there already: unchanged
    for refused in (dry, nothing):
        with pytest.raises(ImportInvalid):
            import_undo(imp=refused, actor=SYSTEM)


def test_undo_is_queued_after_commit(sent, django_capture_on_commit_callbacks):
    imp = make_import(csv_text("id,name", "a,Ann"))
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        import_undo(imp=imp, actor=SYSTEM)
    assert sent == [("undo_import", (imp.pk,))]
    assert Activity.objects.filter(action="import.undo_requested").count() == 1


def test_undo_runs_once(world):
    imp = make_import(FILE, tags=["VIP"])
    undo_now(imp)
    snapshot = customers()
    assert undo.import_undo_run(imp.pk) is None  # undone already
    assert customers() == snapshot
    with pytest.raises(ImportInvalid):
        import_undo(imp=Import.objects.get(pk=imp.pk), actor=SYSTEM)


def interrupted_undo(monkeypatch, world) -> tuple[Import, dict]:
    """An import of many rows whose undo stops after its first chunk."""
    before = customers()
    rows = [f"n{i:02d},New {i},Paris,free,{i}" for i in range(10)]
    imp = make_import(FILE + "\n".join(rows) + "\n", tags=["VIP"])
    monkeypatch.setattr(undo, "UNDO_CHUNK", 3)
    real, calls = customer_services.customers_erase, []

    def erase(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted
        return real(*args, **kwargs)

    monkeypatch.setattr(customer_services, "customers_erase", erase)
    imp = import_undo(imp=imp, actor=SYSTEM)
    with pytest.raises(Interrupted):
        undo.import_undo_run(imp.pk)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.UNDOING
    assert 0 < undo_log_size(imp) < 14
    return imp, before


def test_an_interrupted_undo_resumes_to_the_same_result(monkeypatch, world):
    imp, before = interrupted_undo(monkeypatch, world)

    assert undo.import_undo_run(imp.pk) is not None

    imp.refresh_from_db()
    assert imp.status == ImportStatus.UNDONE
    assert customers() == before
    assert not undo_log_size(imp)
    assert not CustomerTag.objects.filter(added_by_import=imp.pk).exists()
    assert tag_names("old") == {"VIP"}


def test_an_interrupted_undo_reports_every_customer_it_removed(monkeypatch, world):
    imp, _ = interrupted_undo(monkeypatch, world)
    undo.import_undo_run(imp.pk)
    imp.refresh_from_db()
    assert imp.message.startswith("Undone: 12 created customers removed, 2 restored")
