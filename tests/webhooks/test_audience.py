"""Handing an audience over (webhooks/audience.py): ticked customers, everyone matching the
Customers screen's filter, or a segment's members, sent once in batches as customers-sent,
optionally leaving out the Do Not Contact list for a channel."""

from __future__ import annotations

import pytest

from donotcontact.models import Entry
from tests.factories import CustomerFactory
from tests.webhooks.conftest import ACTOR, build, make_endpoint, oslo_segment
from webhooks import audience, delivery, signing
from webhooks.models import Delivery, HandoverStatus
from webhooks.services import WebhookInvalid, handover_create


@pytest.fixture
def people(db):
    return {
        u: CustomerFactory(user_id=u, city=city, country=country, email=f"{u}@example.com")
        for u, city, country in [
            ("ann", "Oslo", "NO"),
            ("bob", "Oslo", "NO"),
            ("cid", "Lisbon", "PT"),
            ("dan", "Oslo", "NO"),
            ("eve", "Porto", "PT"),
        ]
    }


def _sent(receiver) -> list[str]:
    return sorted(item["user_id"] for item in receiver.items())


@pytest.mark.django_db
def test_ticked_customers_are_sent_once_in_batches(receiver, loopback, people):
    endpoint, secret = make_endpoint(receiver.url, batch_size=2, profile_fields=["email"])
    ids = [people[u].pk for u in ("ann", "cid", "eve")]
    handover = handover_create(
        endpoint=endpoint, actor=ACTOR, description="3 selected customers", customer_ids=ids
    )

    audience.handover_run(handover.pk)
    audience.handover_run(handover.pk)  # a retried job creates nothing more
    delivery.send_due()

    handover.refresh_from_db()
    assert (handover.status, handover.customer_count, handover.delivery_count) == (
        HandoverStatus.DONE,
        3,
        2,
    )
    assert _sent(receiver) == ["ann", "cid", "eve"]
    assert [len(r.json["data"]) for r in receiver.requests] == [2, 1] or [
        len(r.json["data"]) for r in receiver.requests
    ] == [1, 2]
    for request in receiver.requests:
        signing.verify(secret, request.headers, request.body)
        assert request.json["type"] == "customers-sent"
        assert request.json["handover"] == {
            "id": handover.pk,
            "description": "3 selected customers",
        }
        assert request.headers["webhook-id"].startswith(f"msg_{endpoint.pk}_h{handover.pk}_")
    assert {"user_id": "ann", "profile": {"email": "ann@example.com"}} in receiver.items()
    assert set(Delivery.objects.values_list("event", flat=True)) == {"customers-sent"}


@pytest.mark.django_db
def test_everyone_matching_the_filter(receiver, loopback, people):
    endpoint, _ = make_endpoint(receiver.url, batch_size=10)
    handover = handover_create(
        endpoint=endpoint, actor=ACTOR, description="PT", filter_query="country=PT"
    )
    audience.handover_run(handover.pk)
    delivery.send_due()
    assert _sent(receiver) == ["cid", "eve"]


@pytest.mark.django_db
def test_a_segments_members_leaving_out_the_do_not_contact_list(receiver, loopback, people):
    segment = oslo_segment()
    build(segment)
    Entry.objects.create(contact="bob@example.com", channel="email")
    Entry.objects.create(contact="dan@example.com", channel="email", sender="Acme")  # one sender
    endpoint, _ = make_endpoint(receiver.url, batch_size=10)
    handover = handover_create(
        endpoint=endpoint,
        actor=ACTOR,
        description="Oslo",
        segment_id=segment.pk,
        exclude_channel="email",
    )
    audience.handover_run(handover.pk)
    delivery.send_due()
    assert _sent(receiver) == ["ann", "dan"]


@pytest.mark.django_db
def test_an_invalid_filter_fails_the_handover_with_the_reason(receiver, loopback, people):
    endpoint, _ = make_endpoint(receiver.url)
    handover = handover_create(
        endpoint=endpoint, actor=ACTOR, description="bad", filter_query="created_from=notadate"
    )
    audience.handover_run(handover.pk)
    handover.refresh_from_db()
    assert handover.status == HandoverStatus.FAILED
    assert "no longer valid" in handover.error
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_a_disabled_endpoint_is_refused(receiver, loopback, people):
    endpoint, _ = make_endpoint(receiver.url)
    endpoint.enabled = False
    endpoint.save()
    with pytest.raises(WebhookInvalid, match="disabled"):
        handover_create(endpoint=endpoint, actor=ACTOR, description="x", customer_ids=[1])


@pytest.mark.django_db
@pytest.mark.parametrize("ids", [[2**63], [0], [-1]])
def test_customer_ids_beyond_bigint_are_refused(receiver, loopback, people, ids):
    endpoint, _ = make_endpoint(receiver.url)
    with pytest.raises(WebhookInvalid, match="not valid"):
        handover_create(endpoint=endpoint, actor=ACTOR, description="x", customer_ids=ids)
