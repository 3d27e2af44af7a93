"""Configuration → Webhooks (Admins only) and "Send to endpoint" (Marketers): pages, htmx
partials with and without HX-Request, the secret shown once, errors on the form, and every
view's "not allowed"."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from activity.models import Activity
from segments.models import Segment
from tests.factories import CustomerFactory
from tests.webhooks.conftest import make_endpoint, oslo_segment
from webhooks.models import Delivery, DeliveryStatus, Endpoint, Handover

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def endpoint(loopback, receiver):
    endpoint, _ = make_endpoint(receiver.url, description="CRM sync")
    return endpoint


def _admin_urls(endpoint, item) -> list[tuple[str, str]]:
    return [
        ("get", reverse("webhook-list")),
        ("get", reverse("webhook-new")),
        ("get", reverse("webhook-detail", args=[endpoint.pk])),
        ("get", reverse("webhook-edit", args=[endpoint.pk])),
        ("get", reverse("webhook-delete", args=[endpoint.pk])),
        ("post", reverse("webhook-enable", args=[endpoint.pk])),
        ("post", reverse("webhook-rotate", args=[endpoint.pk])),
        ("post", reverse("webhook-test", args=[endpoint.pk])),
        ("post", reverse("webhook-replay-range", args=[endpoint.pk])),
        ("get", reverse("webhook-delivery", args=[endpoint.pk, item.pk])),
        ("post", reverse("webhook-replay", args=[endpoint.pk, item.pk])),
    ]


def _delivery(endpoint, **kwargs) -> Delivery:
    from django.utils import timezone

    now = timezone.now()
    defaults = {
        "webhook_id": f"msg_{endpoint.pk}_1",
        "event": "segment-entered",
        "body": '{"type": "segment-entered", "data": [{"user_id": "ann"}]}',
        "give_up_at": now,
        "item_count": 1,
    }
    return Delivery.objects.create(endpoint=endpoint, **{**defaults, **kwargs})


@pytest.mark.parametrize("who", ["viewer_client", "marketer_client"])
def test_webhook_pages_are_for_admins_only(request, who, endpoint):
    client = request.getfixturevalue(who)
    item = _delivery(endpoint)
    for method, url in _admin_urls(endpoint, item):
        assert getattr(client, method)(url).status_code == 403, url
        assert getattr(client, method)(url, **HX).status_code == 403, url
    assert Endpoint.objects.get().secret == endpoint.secret  # nothing rotated
    assert not Activity.objects.filter(action__startswith="webhook.", member__isnull=False).exists()


def test_signed_out_visitors_are_sent_to_sign_in(client, endpoint):
    item = _delivery(endpoint)
    for method, url in _admin_urls(endpoint, item):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
        assert getattr(client, method)(url, **HX).status_code == 401


def test_viewers_cannot_send_audiences(viewer_client, endpoint):
    segment = Segment.objects.create(name="S", rules={})
    response = viewer_client.post(reverse("webhook-handover-customers"), {"ids": ["1"]})
    assert response.status_code == 403
    assert (
        viewer_client.get(reverse("webhook-handover-segment", args=[segment.pk])).status_code == 403
    )
    assert not Handover.objects.exists()


def test_list_shows_endpoints_and_disabled_warnings(admin_client, endpoint):
    Endpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False,
        disabled_reason="The receiver answered 410 Gone.",
        disabled_at="2026-01-01T00:00Z",
    )
    html = admin_client.get(reverse("webhook-list")).content.decode()
    assert "CRM sync" in html
    assert "The receiver answered 410 Gone." in html
    assert "Disabled" in html


def test_create_shows_the_secret_once(admin_client, loopback, receiver):
    segment = Segment.objects.create(name="VIP", rules={})
    response = admin_client.post(
        reverse("webhook-new"),
        {
            "url": receiver.url,
            "description": "Braze",
            "events": ["segment-entered"],
            "all_segments": "0",
            "segments": [str(segment.pk)],
            "profile_fields": ["email", "country"],
            "batch_size": "50",
        },
    )
    endpoint = Endpoint.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("webhook-detail", args=[endpoint.pk])
    assert (endpoint.events, endpoint.all_segments, endpoint.segment_ids) == (
        ["segment-entered"],
        False,
        [segment.pk],
    )
    assert (endpoint.profile_fields, endpoint.batch_size) == (["email", "country"], 50)

    first = admin_client.get(response["Location"]).content.decode()
    assert endpoint.secret in first
    assert "VIP" in first
    again = admin_client.get(response["Location"]).content.decode()
    assert endpoint.secret not in again
    assert Activity.objects.filter(action="webhook.created", target_id=endpoint.pk).exists()


def test_a_private_url_is_refused_on_the_form(admin_client):
    response = admin_client.post(
        reverse("webhook-new"),
        {
            "url": "http://169.254.169.254/latest/meta-data",
            "events": ["segment-entered"],
            "all_segments": "1",
            "batch_size": "1",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "link-local" in html and "may not go there" in html
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("segment", [str(2**70), "0", "999999"])
def test_segments_that_do_not_exist_are_refused_on_the_form(
    admin_client, loopback, receiver, segment
):
    response = admin_client.post(
        reverse("webhook-new"),
        {
            "url": receiver.url,
            "events": ["segment-entered"],
            "all_segments": "0",
            "segments": [segment],
            "batch_size": "1",
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_edit_changes_the_subscription(admin_client, endpoint):
    response = admin_client.post(
        reverse("webhook-edit", args=[endpoint.pk]),
        {
            "url": endpoint.url,
            "description": "Renamed",
            "events": ["segment-exited"],
            "all_segments": "1",
            "batch_size": "10",
        },
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.description, endpoint.events, endpoint.batch_size) == (
        "Renamed",
        ["segment-exited"],
        10,
    )


def test_rotate_shows_the_new_secret_and_keeps_the_old_one_signing(admin_client, endpoint):
    old = endpoint.secret
    response = admin_client.post(reverse("webhook-rotate", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert endpoint.overlap_active
    html = admin_client.get(response["Location"]).content.decode()
    assert endpoint.secret in html and old not in html
    assert "Previous secret signs until" in html


def test_send_test_event_with_htmx_shows_the_answer_and_refreshes_the_log(
    admin_client, endpoint, receiver
):
    response = admin_client.post(reverse("webhook-test", args=[endpoint.pk]), **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="test-result"' in html and "Test event delivered: HTTP 200" in html
    assert "<html" not in html
    assert "webhook-log-changed" in json.loads(response["HX-Trigger"])
    (request,) = receiver.requests
    assert request.json["type"] == "webhook-test"
    test = Delivery.objects.get()
    assert (test.event, test.status, test.attempts) == ("webhook-test", DeliveryStatus.DELIVERED, 1)


def test_send_test_event_without_htmx_reports_a_failure(admin_client, endpoint, receiver):
    receiver.answer(500)
    response = admin_client.post(reverse("webhook-test", args=[endpoint.pk]), follow=True)
    assert "Test event failed (HTTP 500); it will be retried." in response.content.decode()
    assert Delivery.objects.get().status == DeliveryStatus.PENDING


def test_delivery_log_full_page_and_htmx_partial_with_filters(admin_client, endpoint):
    _delivery(endpoint, webhook_id="msg_a", status=DeliveryStatus.DELIVERED)
    _delivery(endpoint, webhook_id="msg_b", status=DeliveryStatus.FAILED, event="segment-exited")
    url = reverse("webhook-detail", args=[endpoint.pk])

    page = admin_client.get(url).content.decode()
    assert "<html" in page and "Delivery log" in page
    assert page.count("<code>segment-") >= 2

    partial = admin_client.get(url, {"status": "failed"}, **HX).content.decode()
    assert "<html" not in partial and 'id="delivery-log"' in partial
    assert "segment-exited" in partial and "Delivered</span>" not in partial


def test_delivery_page_and_replay(admin_client, endpoint):
    item = _delivery(endpoint, status=DeliveryStatus.FAILED)
    page = admin_client.get(reverse("webhook-delivery", args=[endpoint.pk, item.pk]))
    assert item.webhook_id in page.content.decode()
    response = admin_client.post(reverse("webhook-replay", args=[endpoint.pk, item.pk]))
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == DeliveryStatus.PENDING


def test_replay_range_needs_a_valid_range(admin_client, endpoint):
    _delivery(endpoint, status=DeliveryStatus.FAILED)
    url = reverse("webhook-replay-range", args=[endpoint.pk])
    bad = admin_client.post(
        url, {"start": "2026-01-02 00:00", "end": "2026-01-01 00:00"}, follow=True
    )
    assert "Nothing replayed: The start must be before the end." in bad.content.decode()
    empty = admin_client.post(
        url, {"start": "2020-01-01 00:00", "end": "2020-01-02 00:00"}, follow=True
    )
    assert "No delivery was made in that time range." in empty.content.decode()
    good = admin_client.post(
        url, {"start": "2020-01-01 00:00", "end": "2099-01-01 00:00"}, follow=True
    )
    assert "1 delivery queued again." in good.content.decode()
    assert Delivery.objects.get().status == DeliveryStatus.PENDING


def test_disable_and_enable(admin_client, endpoint):
    admin_client.post(reverse("webhook-enable", args=[endpoint.pk]), {"enabled": "0"})
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_reason == "Disabled by an Admin."
    Endpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=7)
    admin_client.post(reverse("webhook-enable", args=[endpoint.pk]), {"enabled": "1"})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.consecutive_failures == 0


def test_delete_confirms_first_with_and_without_htmx(admin_client, endpoint):
    url = reverse("webhook-delete", args=[endpoint.pk])
    partial = admin_client.get(url, **HX).content.decode()
    assert 'role="alertdialog"' in partial and "<html" not in partial
    assert "<html" in admin_client.get(url).content.decode()
    assert Endpoint.objects.exists()
    response = admin_client.post(url)
    assert response["Location"] == reverse("webhook-list")
    assert not Endpoint.objects.exists()


def test_send_ticked_customers_to_an_endpoint(marketer_client, endpoint, quiet_actors):
    ann, bob = CustomerFactory(), CustomerFactory()
    url = reverse("webhook-handover-customers")
    form = marketer_client.post(url, {"ids": [ann.pk, bob.pk], "filter": "country=PT"})
    html = form.content.decode()
    assert form.status_code == 200 and "2 selected customers" in html
    assert "CRM sync" in html and not Handover.objects.exists()

    done = marketer_client.post(
        url,
        {
            "ids": [ann.pk, bob.pk],
            "filter": "country=PT",
            "endpoint": endpoint.pk,
            "exclude_channel": "email",
            "confirm": "yes",
        },
    )
    assert done.status_code == 302 and done["Location"] == "/customers/?country=PT"
    handover = Handover.objects.get()
    assert sorted(handover.customer_ids) == sorted([ann.pk, bob.pk])
    assert (handover.exclude_channel, handover.use_filter) == ("email", False)


def test_send_all_matching_the_filter(marketer_client, endpoint):
    url = reverse("webhook-handover-customers")
    marketer_client.post(
        url, {"all": "on", "filter": "country=PT", "endpoint": endpoint.pk, "confirm": "yes"}
    )
    handover = Handover.objects.get()
    assert (handover.use_filter, handover.filter_query) == (True, "country=PT")


def test_send_with_nothing_selected_goes_back_with_an_error(marketer_client, endpoint):
    response = marketer_client.post(
        reverse("webhook-handover-customers"), {"filter": ""}, follow=True
    )
    assert "Select at least one customer." in response.content.decode()


def test_send_a_segment_to_an_endpoint(marketer_client, endpoint):
    segment = oslo_segment()
    url = reverse("webhook-handover-segment", args=[segment.pk])
    assert "the members of segment “Oslo”" in marketer_client.get(url).content.decode()
    response = marketer_client.post(url, {"endpoint": endpoint.pk, "confirm": "yes"})
    assert response["Location"] == reverse("segment-detail", args=[segment.pk])
    assert Handover.objects.get().segment_id == segment.pk


def test_a_disabled_endpoint_cannot_be_chosen(marketer_client, endpoint):
    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=False)
    segment = oslo_segment()
    url = reverse("webhook-handover-segment", args=[segment.pk])
    html = marketer_client.get(url).content.decode()
    assert "No enabled endpoint to send to." in html
    marketer_client.post(url, {"endpoint": endpoint.pk, "confirm": "yes"})
    assert not Handover.objects.exists()


def test_segment_pages_show_the_webhooks_that_use_them(admin_client, marketer_client, endpoint):
    segment = oslo_segment()
    Endpoint.objects.filter(pk=endpoint.pk).update(all_segments=False, segment_ids=[segment.pk])
    detail = admin_client.get(reverse("segment-detail", args=[segment.pk])).content.decode()
    assert "Used by 1 webhook endpoint:" in detail and "CRM sync" in detail
    assert reverse("webhook-detail", args=[endpoint.pk]) in detail
    assert reverse("webhook-handover-segment", args=[segment.pk]) in detail

    delete = marketer_client.get(reverse("segment-delete", args=[segment.pk])).content.decode()
    assert "Deleting this segment stops its enter and exit events reaching it." in delete
    assert reverse("webhook-detail", args=[endpoint.pk]) not in delete  # Admin pages: no link

    edit = marketer_client.get(reverse("segment-edit", args=[segment.pk])).content.decode()
    assert re.search(r"Changing the rules sends enter and exit events", edit)


def test_customers_screen_offers_send_to_endpoint(marketer_client, viewer_client):
    CustomerFactory()
    url = reverse("webhook-handover-customers")
    assert url in marketer_client.get(reverse("customer-list")).content.decode()
    assert url not in viewer_client.get(reverse("customer-list")).content.decode()


def test_delivery_log_pages_newest_first(admin_client, endpoint):
    from datetime import timedelta
    from urllib.parse import unquote

    from django.utils import timezone

    start = timezone.now()
    for i in range(55):
        _delivery(endpoint, webhook_id=f"msg_p_{i}", created_at=start + timedelta(seconds=i))
    url = reverse("webhook-detail", args=[endpoint.pk])
    first = admin_client.get(url, **HX).content.decode()
    assert first.count("<tr>") == 51  # the header row and 50 deliveries
    found = re.search(r'hx-get="\?status=&amp;event=&amp;before=([^"]+)"', first)
    assert found
    second = admin_client.get(url, {"before": unquote(found.group(1))}, **HX)
    html = second.content.decode()
    assert html.count("<tr>") == 6 and "Older" not in html and "Newest" in html


def test_every_webhook_page_answers_its_roles_without_input(admin_client, marketer_client):
    """What tests/test_url_sweep.py does for these URLs: bare requests never fail. The
    endpoint is saved directly with a loopback URL (refused at connection time, so the test
    event answers at once without leaving the machine)."""
    from django.utils import timezone

    endpoint = Endpoint.objects.create(
        url="http://127.0.0.1:9/", events=["segment-entered"], secret="whsec_c2VjcmV0"
    )
    item = _delivery(endpoint, give_up_at=timezone.now())
    for method, url in _admin_urls(endpoint, item):
        assert getattr(admin_client, method)(url).status_code in (200, 302), url
    segment = Segment.objects.create(name="S", rules={})
    assert marketer_client.post(reverse("webhook-handover-customers")).status_code == 302
    url = reverse("webhook-handover-segment", args=[segment.pk])
    assert marketer_client.get(url).status_code == 200
    assert marketer_client.post(url).status_code == 200
    assert not Handover.objects.exists()
