"""Segments and the Do Not Contact list: a marketer builds "is not on the Do Not Contact list
for Email" in the builder, narrows it to a sender, watches the count and the preview's
reachable counts per channel, and saves it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from donotcontact.models import Entry
from members.roles import Role
from segments.models import Segment
from tests.e2e.conftest import heading, login, shot
from tests.e2e.test_segments import _settled
from tests.factories import CustomerFactory, MemberFactory


@pytest.fixture
def marketer(transactional_db):
    return MemberFactory(role=Role.MARKETER, email="marketer@test.example", name="Max Marketer")


@pytest.fixture
def listed(transactional_db):
    """Four customers; Ana's e-mail is on the list, Rui's for the sender Acme only, Eva's
    phone for every channel; Lia has no e-mail."""
    token = [{"token": "t-1", "platform": "ios"}]
    CustomerFactory(user_id="ana", name="Ana Silva", email="ana@x.io", phone="+351911111111")
    CustomerFactory(
        user_id="rui", name="Rui Costa", email="rui@x.io", phone="", device_tokens=token
    )
    CustomerFactory(user_id="eva", name="Eva Sousa", email="eva@x.io", phone="+351933333333")
    CustomerFactory(user_id="lia", name="Lia Ruiz", email="", phone="+34944444444")
    Entry.objects.create(contact="ana@x.io", channel="email")
    Entry.objects.create(contact="rui@x.io", channel="email", sender="Acme")
    Entry.objects.create(contact="+351933333333", channel="")


def test_marketer_builds_a_do_not_contact_segment_and_sees_reachable_counts(
    page: Page, marketer, listed, password
):
    login(page, marketer.email, password)
    page.goto("/segments/new/")
    expect(heading(page)).to_have_text("New segment")
    page.get_by_label("Name").fill("E-mailable")

    page.get_by_label("Search what to filter on").fill("do not contact")
    page.get_by_role(
        "button", name=re.compile(r"^On the Do Not Contact list\s*any channel")
    ).click()
    _settled(page)
    condition = page.locator("#n-r-c0")
    expect(condition.locator(".cond-badge")).to_have_text("Do Not Contact")
    count = page.locator("#preview .preview-count")
    # Any channel, every sender: Ana (e-mail) and Eva (phone) are on the list.
    expect(count).to_have_text("2")

    condition.get_by_label("DNC operator").select_option("is_not")
    condition.get_by_label("Channel").select_option("email")
    expect(count).to_have_text("3")  # Rui, Eva, and Lia (no e-mail at all)
    reach = page.locator("#preview-reach")
    expect(reach.locator("[data-reach='Email']")).to_have_text("2")  # Rui, Eva
    expect(reach.locator("[data-reach='SMS']")).to_have_text("1")  # Lia; Eva is listed
    expect(reach.locator("[data-reach='WhatsApp']")).to_have_text("1")
    expect(reach.locator("[data-reach='Push']")).to_have_text("1")  # Rui has a device
    shot(page, "segment-dnc-builder")

    # As seen by the sender Acme, Rui's entry applies too.
    condition.get_by_label("Sender").fill("Acme")
    expect(count).to_have_text("2")
    expect(reach.locator("[data-reach='Email']")).to_have_text("1")

    page.get_by_role("button", name="Create segment").click()
    page.wait_for_url(re.compile(r"/segments/\d+/$"))
    segment = Segment.objects.get(name="E-mailable")
    assert segment.rules["children"] == [
        {"type": "do_not_contact", "operator": "is_not", "channel": "email", "sender": "Acme"}
    ]
    expect(page.locator("main")).to_contain_text(
        "is not on the Do Not Contact list for Email (sender “Acme”)"
    )
