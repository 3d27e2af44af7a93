"""Configuration → Webhooks: add an endpoint, copy its secret once, send a test event, read it
in the delivery log and open the delivery."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import heading, login, shot
from tests.webhooks import conftest as webhook_fixtures
from webhooks import signing
from webhooks.models import Delivery, Endpoint

# The webhook tests' local receiver, and loopback allowed so the endpoint may point at it.
receiver = webhook_fixtures.receiver
loopback = webhook_fixtures.loopback


def test_admin_adds_an_endpoint_and_sends_a_test_event(
    page: Page, admin, password, receiver, loopback
):
    login(page, admin.email, password)
    page.locator("aside.sidebar nav").get_by_role("link", name="Webhooks").click()
    page.wait_for_url(re.compile(r"/webhooks/$"))
    expect(heading(page)).to_have_text("Webhooks")
    expect(page.get_by_text("No endpoints yet.")).to_be_visible()

    page.get_by_role("link", name="+ New endpoint").click()
    page.fill("#id_url", "http://10.0.0.7/hook")  # an internal address: refused
    page.fill("#id_description", "Messaging tool")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator(".errorlist")).to_contain_text("a private network address")
    assert not Endpoint.objects.exists()

    page.fill("#id_url", receiver.url)
    page.get_by_label("E-mail", exact=True).check()
    page.fill("#id_batch_size", "25")
    shot(page, "webhooks-new")
    page.get_by_role("button", name="Create endpoint").click()

    page.wait_for_url(re.compile(r"/webhooks/\d+/$"))
    expect(heading(page)).to_contain_text("Messaging tool")
    secret = page.locator("#new-secret").inner_text()
    endpoint = Endpoint.objects.get()
    assert secret == endpoint.secret and secret.startswith("whsec_")
    expect(page.get_by_text("No deliveries yet.")).to_be_visible()
    shot(page, "webhooks-created")

    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("#test-result")).to_contain_text(
        re.compile(r"Test event delivered: HTTP 200 in \d+ ms\.")
    )
    row = page.locator("#delivery-log tbody tr").first
    expect(row).to_contain_text("webhook-test")
    expect(row).to_contain_text("Delivered")
    expect(row.locator("td").nth(4)).to_have_text("200")
    shot(page, "webhooks-log")

    (request,) = receiver.requests
    signing.verify(secret, request.headers, request.body)
    assert request.json["type"] == "webhook-test"

    row.get_by_role("link").first.click()
    test = Delivery.objects.get()
    page.wait_for_url(re.compile(rf"/webhooks/{endpoint.pk}/deliveries/{test.pk}/$"))
    expect(heading(page)).to_contain_text(test.webhook_id)
    expect(page.locator("table tbody tr").first).to_contain_text("ok")

    # The secret was shown once: coming back does not show it again.
    page.goto(f"/webhooks/{endpoint.pk}/")
    expect(page.locator("#new-secret")).to_have_count(0)


def test_marketer_sends_ticked_customers_to_an_endpoint(
    page: Page, marketer, password, receiver, loopback
):
    from tests.factories import CustomerFactory
    from tests.webhooks.conftest import make_endpoint
    from webhooks import audience, delivery
    from webhooks.models import Handover

    endpoint, secret = make_endpoint(receiver.url, description="Messaging tool", batch_size=10)
    ann = CustomerFactory(user_id="ann-e2e", email="ann@example.com")
    CustomerFactory(user_id="bob-e2e")
    CustomerFactory(user_id="cid-e2e")

    login(page, marketer.email, password)
    page.goto("/customers/")
    page.get_by_label("Select ann-e2e").check()
    page.get_by_label("Select cid-e2e").check()
    page.get_by_role("button", name="Send to endpoint…").click()

    expect(heading(page)).to_have_text("Send to endpoint")
    expect(page.locator("main")).to_contain_text("2 selected customers")
    page.select_option("#id_endpoint", label="Messaging tool")
    page.select_option("#id_exclude_channel", label="Email")
    shot(page, "webhooks-handover")
    page.get_by_role("button", name="Send", exact=True).click()

    page.wait_for_url(re.compile(r"/customers/"))
    expect(page.get_by_role("status")).to_contain_text("Sending 2 selected customers to")
    handover = Handover.objects.get()
    assert handover.endpoint == endpoint
    assert handover.exclude_channel == "email"

    # What the worker does with the queued job.
    audience.handover_run(handover.pk)
    delivery.send_due()
    (request,) = receiver.requests
    signing.verify(secret, request.headers, request.body)
    assert request.json["type"] == "customers-sent"
    assert sorted(i["user_id"] for i in request.json["data"]) == ["ann-e2e", "cid-e2e"]
    assert ann.pk in handover.customer_ids
