"""Sending (webhooks/delivery.py): retries with backoff on a frozen clock, giving up after
the retry window, 410 Gone and 100 failures in a row disabling the endpoint, at-least-once
re-sending after a crash, and the HTTP limits (no redirects, 64 KB read, timeout)."""

from __future__ import annotations

import random
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.factories import CustomerFactory
from tests.webhooks.conftest import build, make_endpoint, oslo_segment
from webhooks import delivery, http, relay
from webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _one_delivery(url: str, **endpoint_kwargs) -> Delivery:
    CustomerFactory(user_id="ann", city="Oslo")
    make_endpoint(url, **endpoint_kwargs)
    build(oslo_segment())
    assert relay.relay_run() == 1
    return Delivery.objects.get()


def test_retry_delays_double_from_15_seconds_up_to_6_hours_with_jitter():
    rng = random.Random(7)
    for attempt, base in [(1, 15), (2, 30), (3, 60), (5, 240), (11, 15360), (12, 21600)]:
        delays = [delivery.retry_delay(attempt, rng).total_seconds() for _ in range(50)]
        assert all(0.75 * base <= d <= 1.25 * base for d in delays), attempt
        assert len(set(delays)) > 1  # jittered
    assert delivery.retry_delay(40, rng) <= timedelta(hours=7.5)


@pytest.mark.django_db
def test_failures_are_retried_on_schedule_then_given_up_after_three_days(receiver, loopback):
    receiver.default = (503, b"busy")
    with time_machine.travel(START, tick=False) as clock:
        item = _one_delivery(receiver.url)
        attempts = 0
        while True:
            assert delivery.send_due() == 1
            attempts += 1
            item.refresh_from_db()
            if item.status != DeliveryStatus.PENDING:
                break
            wait = item.next_attempt_at - timezone.now()
            base = min(15 * 2 ** (attempts - 1), 6 * 3600)
            assert timedelta(seconds=0.75 * base) <= wait <= timedelta(seconds=1.25 * base)
            clock.shift(wait - timedelta(seconds=1))
            assert delivery.send_due() == 0  # not due a second early
            clock.shift(timedelta(seconds=1))

        assert item.status == DeliveryStatus.FAILED
        assert timezone.now() <= START + timedelta(hours=72)
        assert timezone.now() + timedelta(hours=7.5) > START + timedelta(hours=72)
    assert len(receiver.requests) == attempts == item.attempts
    assert 15 <= attempts <= 30
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    numbers = list(DeliveryAttempt.objects.order_by("number").values_list("number", flat=True))
    assert numbers == list(range(1, attempts + 1))
    last = DeliveryAttempt.objects.order_by("-number").first()
    assert (last.status_code, last.response_snippet) == (503, "busy")


@pytest.mark.django_db
def test_a_success_after_failures_delivers_and_resets_the_failure_count(receiver, loopback):
    receiver.answer(500, 502)
    with time_machine.travel(START, tick=False) as clock:
        item = _one_delivery(receiver.url)
        for _ in range(3):
            delivery.send_due()
            clock.shift(timedelta(hours=1))
    item.refresh_from_db()
    assert (item.status, item.attempts) == (DeliveryStatus.DELIVERED, 3)
    assert Endpoint.objects.get().consecutive_failures == 0


@pytest.mark.django_db
def test_410_gone_disables_the_endpoint_and_keeps_the_delivery_waiting(receiver, loopback):
    receiver.answer(410)
    item = _one_delivery(receiver.url)

    delivery.send_due()

    endpoint = Endpoint.objects.get()
    assert not endpoint.enabled
    assert "410" in endpoint.disabled_reason
    item.refresh_from_db()
    assert item.status == DeliveryStatus.PENDING
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        assert delivery.send_due() == 0  # nothing goes to a disabled endpoint
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_100_failures_in_a_row_disable_the_endpoint(receiver, loopback, settings):
    receiver.default = (500, b"")
    endpoint, _ = make_endpoint(receiver.url)
    now = timezone.now()
    Delivery.objects.bulk_create(
        Delivery(
            endpoint=endpoint,
            webhook_id=f"msg_x_{i}",
            event="segment-entered",
            body="{}",
            give_up_at=now + timedelta(days=3),
            next_attempt_at=now,
        )
        for i in range(105)
    )

    assert delivery.send_due(limit=99) == 99
    assert Endpoint.objects.get().enabled
    assert delivery.send_due(limit=1) == 1

    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.consecutive_failures == 100
    assert endpoint.disabled_reason == "100 deliveries failed in a row."
    assert delivery.send_due() == 0  # the rest wait for the endpoint to be enabled
    assert len(receiver.requests) == 100
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 105


@pytest.mark.django_db
def test_a_worker_killed_after_the_post_resends_under_the_same_id(receiver, loopback):
    """Claimed and posted, then the worker dies before recording: after the lease the
    delivery is due again and goes out with the same webhook-id and body."""
    with time_machine.travel(START, tick=False) as clock:
        item = _one_delivery(receiver.url)
        ids = delivery.claim()
        assert ids == [item.pk]
        claimed = Delivery.objects.select_related("endpoint").get(pk=item.pk)
        delivery._post(claimed)  # the POST happened; the worker died here

        assert delivery.send_due() == 0  # leased: not sent twice at once
        clock.shift(delivery.lease() + timedelta(seconds=1))
        assert delivery.send_due() == 1

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == item.webhook_id
    assert first.body == second.body
    item.refresh_from_db()
    assert (item.status, item.attempts) == (DeliveryStatus.DELIVERED, 2)


@pytest.mark.django_db
def test_replaying_a_delivered_delivery_sends_it_again_with_the_same_id(receiver, loopback):
    from tests.webhooks.conftest import ACTOR
    from webhooks.services import deliveries_replay

    item = _one_delivery(receiver.url)
    delivery.send_due()
    later = timezone.now() + timedelta(days=5)
    with time_machine.travel(later):
        count = deliveries_replay(
            endpoint=item.endpoint,
            start=item.created_at - timedelta(minutes=1),
            end=item.created_at + timedelta(minutes=1),
            actor=ACTOR,
        )
        assert count == 1
        delivery.send_due()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [item.webhook_id] * 2
    item.refresh_from_db()
    assert item.status == DeliveryStatus.DELIVERED
    assert item.give_up_at > later


def test_redirects_are_not_followed(receiver, loopback):
    receiver.answer(302)
    response = http.post(receiver.url, b"{}", {})
    assert response.status_code == 302 and not response.ok
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_at_most_64_kb_of_the_answer_is_read(receiver, loopback):
    receiver.answer((200, b"x" * 200_000))
    response = http.post(receiver.url, b"{}", {})
    assert response.status_code == 200
    assert len(response.body) == 64 * 1024


def test_a_receiver_that_never_answers_times_out(loopback, settings):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        response = http.post(
            f"http://127.0.0.1:{listener.getsockname()[1]}/", b"{}", {}, timeout=0.5
        )
    finally:
        listener.close()
    assert response.status_code is None
    assert response.error == "Timed out after 0.5 s"


def test_the_default_timeout_is_15_seconds(settings):
    assert settings.WEBHOOKS_TIMEOUT_SECONDS == 15


@pytest.mark.django_db
def test_admins_are_told_when_an_endpoint_is_disabled(
    receiver, loopback, admin, marketer, django_capture_on_commit_callbacks
):
    from notifications.models import Notification

    receiver.answer(410)
    item = _one_delivery(receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        delivery.send_due()

    (note,) = Notification.objects.all()
    assert (note.member, note.title) == (admin, "Webhook endpoint disabled")
    assert note.url == f"/webhooks/{item.endpoint_id}/"
    assert "410 Gone" in note.body


@pytest.mark.django_db
def test_an_endpoint_deleted_during_an_attempt_is_no_error(receiver, loopback):
    item = _one_delivery(receiver.url)
    (claimed,) = delivery.claim()
    sent = Delivery.objects.select_related("endpoint").get(pk=claimed)
    outcome = delivery._post(sent)
    Endpoint.objects.all().delete()

    assert delivery.record(sent, outcome.response, outcome.attempted_at) is None
    assert not DeliveryAttempt.objects.exists()
    assert not Delivery.objects.filter(pk=item.pk).exists()


def _raw_server(handle) -> tuple[socket.socket, str]:
    """A one-connection server whose ``handle(conn)`` writes whatever bytes a test needs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                handle(conn)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def test_nul_bytes_in_the_answer_and_the_error_are_replaced():
    assert "\x00" not in http.Response(200, b"a\x00b", 1).snippet
    assert http.Response(None, b"", 1, "bad \x00 line").error == "bad \ufffd line"


@pytest.mark.django_db
def test_an_answer_with_nul_bytes_is_recorded(receiver, loopback):
    receiver.answer((500, b"oops\x00\x00"))
    item = _one_delivery(receiver.url)
    delivery.send_due()
    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.response_snippet == "oops\ufffd\ufffd"
    item.refresh_from_db()
    assert item.status == DeliveryStatus.PENDING and item.next_attempt_at > timezone.now()


@pytest.mark.django_db
def test_a_nul_in_a_status_line_is_recorded_as_a_failure(loopback):
    listener, url = _raw_server(lambda conn: conn.sendall(b"HTTP/1.1 2\x0000 OK\r\n\r\n"))
    try:
        item = _one_delivery(url)
        delivery.send_due()
    finally:
        listener.close()
    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.status_code is None and "\x00" not in attempt.error
    item.refresh_from_db()
    assert item.last_error == attempt.error


@pytest.mark.django_db
def test_one_outcome_that_cannot_be_stored_does_not_lose_the_batch(receiver, loopback, monkeypatch):
    endpoint, _ = make_endpoint(receiver.url)
    now = timezone.now()
    Delivery.objects.bulk_create(
        Delivery(
            endpoint=endpoint,
            webhook_id=f"msg_x_{i}",
            event="segment-entered",
            body="{}",
            give_up_at=now + timedelta(days=3),
            next_attempt_at=now,
        )
        for i in range(3)
    )
    broken = Delivery.objects.order_by("pk").first()
    real_record = delivery.record

    def record(item, response, attempted_at):
        if item.pk == broken.pk and response.ok:
            raise ValueError("cannot store this")
        return real_record(item, response, attempted_at)

    monkeypatch.setattr(delivery, "record", record)

    assert delivery.send_due() == 3
    assert Delivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 2
    broken.refresh_from_db()
    # Stored as a failed attempt: retried later, not re-sent every lease.
    assert broken.status == DeliveryStatus.PENDING
    assert broken.last_error == "The attempt's outcome could not be stored."
    assert DeliveryAttempt.objects.filter(delivery=broken, status_code=None).count() == 1


@pytest.mark.django_db
def test_a_non_ascii_path_is_percent_encoded_when_saved(receiver, loopback):
    endpoint, _ = make_endpoint(receiver.url.replace("/hook", "/café?q=ü&r=%41"))
    assert endpoint.url.endswith("/caf%C3%A9?q=%C3%BC&r=%41")
    response = http.post(endpoint.url, b"{}", {})
    assert response.ok
    assert receiver.requests[0].path == "/caf%C3%A9?q=%C3%BC&r=%41"


def test_post_encodes_a_stored_non_ascii_path_and_never_raises(receiver, loopback, monkeypatch):
    assert http.post(receiver.url + "/café", b"{}", {}).ok
    assert receiver.requests[0].path == "/hook/caf%C3%A9"

    def boom(*args, **kwargs):
        raise UnicodeEncodeError("ascii", "é", 0, 1, "no")

    monkeypatch.setattr(http._PinnedConnection, "putrequest", boom)
    response = http.post(receiver.url, b"{}", {})
    assert response.status_code is None
    assert response.error.startswith("Request failed: UnicodeEncodeError")


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_deadline(loopback):
    stop = threading.Event()

    def drip(conn) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        while not stop.wait(0.1):
            conn.sendall(b"x")

    listener, url = _raw_server(drip)
    try:
        response = http.post(url, b"{}", {}, timeout=0.5)
    finally:
        stop.set()
        listener.close()
    assert response.status_code is None
    # Without the deadline the drip would have been read to its end (a 200 after 100 s).
    assert response.error == "Timed out after 0.5 s"


def test_a_receiver_dripping_its_headers_is_cut_off_at_the_deadline(loopback, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    stop = threading.Event()

    def drip(conn) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(0.1):
            conn.sendall(b"X-A: b\r\n")

    listener, url = _raw_server(drip)
    try:
        response = http.post(url, b"{}", {})
    finally:
        stop.set()
        listener.close()
    # Without the deadline this ends at http.client's 100-header limit, another error.
    assert response.error == "Timed out after 0.5 s"


@pytest.mark.django_db
def test_a_stale_worker_cannot_overwrite_a_later_outcome(receiver, loopback):
    """A worker's lease ran out and another delivered the delivery: the first one's late
    failure must neither fail the delivery nor count against the endpoint."""
    with time_machine.travel(START, tick=False) as clock:
        item = _one_delivery(receiver.url)
        delivery.claim()
        stale = Delivery.objects.select_related("endpoint").get(pk=item.pk)
        clock.shift(delivery.lease() + timedelta(seconds=1))
        assert delivery.send_due() == 1  # the second worker delivers
        late = http.Response(500, b"", 1)
        assert delivery.record(stale, late, timezone.now()) is None
        assert delivery.record(stale, late, timezone.now()) is None

    item.refresh_from_db()
    assert (item.status, item.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert Endpoint.objects.get().consecutive_failures == 0
    assert DeliveryAttempt.objects.count() == 1
