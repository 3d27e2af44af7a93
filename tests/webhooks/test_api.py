"""Webhooks over the REST API: Admins only; create answers the secret once; SSRF refusals
are 422 field errors; the test event and the delivery log; replay."""

from __future__ import annotations

import pytest

from members.roles import Role
from webhooks.models import Delivery, DeliveryStatus, Endpoint

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER])
def test_only_admins_may_use_the_webhooks_api(api, role):
    for method, path in [
        ("get", "/webhooks"),
        ("post", "/webhooks"),
        ("get", "/webhooks/1"),
        ("post", "/webhooks/1/test"),
        ("get", "/webhooks/1/deliveries"),
        ("post", "/webhooks/1/deliveries/1/replay"),
    ]:
        body = {"url": "https://example.com/"} if method == "post" else None
        assert api(method, path, body, role=role).status_code == 403, path
    assert not Endpoint.objects.exists()


def test_create_then_test_then_read_the_log_then_replay(api, loopback, receiver):
    response = api(
        "post",
        "/webhooks",
        {"url": receiver.url, "description": "CRM", "profile_fields": ["email"]},
        role=Role.ADMIN,
    )
    assert response.status_code == 201
    created = response.json()
    endpoint = Endpoint.objects.get()
    assert created["secret"] == endpoint.secret
    assert created["events"] == ["segment-entered", "segment-exited"]
    assert created["segment_ids"] is None

    listed = api("get", "/webhooks", role=Role.ADMIN).json()["endpoints"]
    assert [e["id"] for e in listed] == [endpoint.pk] and "secret" not in listed[0]

    tested = api("post", f"/webhooks/{endpoint.pk}/test", role=Role.ADMIN).json()
    assert tested["attempt"]["status_code"] == 200
    assert tested["delivery"]["status"] == "delivered"

    log = api("get", f"/webhooks/{endpoint.pk}/deliveries", role=Role.ADMIN).json()
    (item,) = log["deliveries"]
    assert item["event"] == "webhook-test" and item["webhook_id"].startswith("msg_")

    replay = api("post", f"/webhooks/{endpoint.pk}/deliveries/{item['id']}/replay", role=Role.ADMIN)
    assert replay.status_code == 202
    assert Delivery.objects.get().status == DeliveryStatus.PENDING


@pytest.mark.parametrize(
    "body,field",
    [
        ({"url": "http://169.254.169.254/"}, "url"),
        ({"url": "http://2130706433/"}, "url"),
        ({"url": "https://93.184.215.14/", "events": ["nope"]}, "events"),
        ({"url": "https://93.184.215.14/", "batch_size": 0}, "batch_size"),
        ({"url": "https://93.184.215.14/", "extra": 1}, "extra"),
        ({"url": "https://93.184.215.14/", "segment_ids": [2**70]}, "segment_ids.0"),
        ({"url": "https://93.184.215.14/", "segment_ids": [0]}, "segment_ids.0"),
        ({"url": "https://93.184.215.14/", "segment_ids": [999_999]}, "segment_ids"),
    ],
)
def test_bad_input_is_a_422_with_the_field(api, body, field):
    response = api("post", "/webhooks", body, role=Role.ADMIN)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert not Endpoint.objects.exists()


def test_unknown_ids_are_404(api):
    assert api("get", "/webhooks/99", role=Role.ADMIN).status_code == 404
    assert api("post", "/webhooks/99/test", role=Role.ADMIN).status_code == 404
