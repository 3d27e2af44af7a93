"""Segments: a marketer builds a two-group segment in the builder, watching the count as each
condition is added, saves it, sees it computed, opens a member and reads on the customer page
why they are in it.

No worker runs under the tests: saving queues the build, and the test runs it itself
(``segment_build``), as the worker would, while the segment page polls its status."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from events.builtin import BUILTIN_EVENTS, SYSTEM_EVENTS
from events.models import EventType
from members.roles import Role
from segments.membership import segment_build
from segments.models import Segment, SegmentStatus
from tags.models import CustomerTag, Tag
from tests.e2e.conftest import heading, login, shot
from tests.factories import CustomerFactory, CustomFieldFactory, MemberFactory


@pytest.fixture
def marketer(transactional_db):
    return MemberFactory(role=Role.MARKETER, email="marketer@test.example", name="Max Marketer")


@pytest.fixture
def system_events(transactional_db):
    """The segment-entered/exited catalog rows builds write to. A migration creates them, but
    a transactional test before this one truncates every table."""
    for name in SYSTEM_EVENTS:
        label, description = BUILTIN_EVENTS[name]
        EventType.objects.get_or_create(
            name=name, defaults={"builtin": True, "label": label, "description": description}
        )


@pytest.fixture
def customers(system_events):
    """Four customers: Portuguese and a VIP, Portuguese and a big spender, Portuguese only,
    and a Spanish VIP."""
    CustomFieldFactory(name="ltv", label="Lifetime value", type="number")
    vip = Tag.objects.create(name="VIP")
    Tag.objects.create(name="Churned")
    ana = CustomerFactory(user_id="ana", name="Ana Silva", country="PT")
    rui = CustomerFactory(user_id="rui", name="Rui Costa", country="PT", custom={"ltv": 900})
    CustomerFactory(user_id="eva", name="Eva Sousa", country="PT", custom={"ltv": 120})
    lia = CustomerFactory(user_id="lia", name="Lia Ruiz", country="ES")
    for customer in (ana, lia):
        CustomerTag.objects.create(customer=customer, tag=vip)
    return {"ana": ana, "rui": rui}


def _count(page: Page):
    return page.locator("#preview .preview-count")


def _settled(page: Page) -> None:
    """Wait until a structural change has been drawn and htmx has wired up the new editor
    (it does so a moment after the swap, when it drops the ``htmx-added`` class)."""
    expect(page.locator("#rules-fieldset")).to_be_enabled()
    expect(page.locator("#rules-editor")).not_to_have_class(re.compile(r"htmx-added"))


def test_marketer_builds_a_two_group_segment_and_reads_why_a_member_is_in(
    page: Page, marketer, customers, password
):
    login(page, marketer.email, password)
    page.goto("/segments/")
    page.get_by_role("link", name="+ New segment").click()
    page.wait_for_url(re.compile(r"/segments/new/$"))
    expect(heading(page)).to_have_text("New segment")
    page.get_by_label("Name").fill("Portuguese VIPs or big spenders")
    expect(page.locator("#preview")).to_contain_text("Complete the filter to see a count.")

    # Country is PT: the "add filter" lists are open on a new segment; search and pick.
    page.get_by_label("Search what to filter on").fill("country")
    page.get_by_role("button", name=re.compile(r"^Country")).click()
    _settled(page)
    page.locator("input[name='r.c0.value']").fill("pt")  # text compares ignore case
    expect(_count(page)).to_have_text("3")

    # And (a tag: VIP, or a custom field: lifetime value at least 500), in a nested group.
    page.locator("#n-r > .group-foot").get_by_role("button", name="+ Add group").click()
    _settled(page)
    group = page.locator("#n-r-c1")
    group.get_by_label("Search what to filter on").fill("vip")
    group.locator("[data-picker-group]", has_text="Tags").get_by_role("button", name="VIP").click()
    _settled(page)
    expect(_count(page)).to_have_text("1")
    group.get_by_label("Match all or any").select_option("any")
    _settled(page)
    group.locator(".group-foot").get_by_role("button", name="+ Add filter").click()
    _settled(page)
    expect(_count(page)).to_have_count(0)  # a half-built rule has no count
    expect(page.locator("#preview")).to_contain_text("Complete the filter to see a count.")
    group.get_by_label("Search what to filter on").fill("lifetime")
    group.get_by_label("Search what to filter on").press("Enter")  # picks the first match
    _settled(page)
    group.locator("select[name='r.c1.c1.op']").select_option("gte")
    _settled(page)
    group.get_by_label("Lifetime value value").fill("500")
    expect(_count(page)).to_have_text("2")
    # The count after each top-level condition, next to it.
    expect(page.locator("#ct-r-c0")).to_have_text("3")
    expect(page.locator("#ct-r-c1")).to_have_text("2")
    preview = page.locator("#preview")
    expect(preview.get_by_role("link", name="Ana Silva")).to_be_visible()
    expect(preview.get_by_role("link", name="Rui Costa")).to_be_visible()
    expect(preview.get_by_role("link", name="Eva Sousa")).to_have_count(0)
    shot(page, "segment-builder")

    page.get_by_role("button", name="Create segment").click()
    page.wait_for_url(re.compile(r"/segments/\d+/$"))
    segment = Segment.objects.get(name="Portuguese VIPs or big spenders")
    expect(heading(page)).to_have_text(segment.name)
    status = page.locator("#segment-status")
    expect(status).to_contain_text("Computing")

    segment_build(segment.pk)  # what the worker does with the queued build
    assert Segment.objects.get(pk=segment.pk).status == SegmentStatus.READY
    expect(status).to_contain_text("Ready")  # the page polls while computing
    expect(status.locator("[data-member-count]")).to_have_text("2")
    members = page.locator("#members tbody tr")
    expect(members).to_have_count(2)
    shot(page, "segment-built")

    members.get_by_role("link", name="ana").click()
    page.wait_for_url(re.compile(rf"/customers/{customers['ana'].pk}/$"))
    card = page.locator("#customer-segments")  # loaded into the page by htmx
    expect(card.get_by_role("link", name=segment.name)).to_be_visible()
    expect(card).not_to_have_class(re.compile(r"htmx-added"))
    card.get_by_label("Why is or isn’t this customer in…").select_option(str(segment.pk))
    why = card.locator("#segment-why")
    expect(why).to_contain_text("Is a member")
    expect(why.locator(".rule.held")).to_have_count(2)  # country, and the VIP tag
    expect(why.locator(".rule.missed")).to_have_count(1)  # no lifetime value
    expect(why).to_contain_text("VIP")
    shot(page, "segment-why")


def test_editing_shows_who_would_enter_and_exit_before_saving(
    page: Page, marketer, customers, password
):
    login(page, marketer.email, password)
    page.goto("/segments/new/")
    page.get_by_label("Name").fill("Portuguese")
    page.get_by_label("Search what to filter on").fill("country")
    page.get_by_label("Search what to filter on").press("Enter")
    _settled(page)
    page.locator("input[name='r.c0.value']").fill("PT")
    expect(_count(page)).to_have_text("3")
    page.get_by_role("button", name="Create segment").click()
    page.wait_for_url(re.compile(r"/segments/\d+/$"))
    segment = Segment.objects.get(name="Portuguese")
    segment_build(segment.pk)

    page.goto(f"/segments/{segment.pk}/edit/")
    expect(_count(page)).to_have_text("3")
    value = page.locator("input[name='r.c0.value']")
    value.fill("ES")
    value.press("Enter")  # counts now; does not save
    expect(_count(page)).to_have_text("1")
    expect(page).to_have_url(re.compile(rf"/segments/{segment.pk}/edit/$"))
    page.get_by_role("button", name="Save changes…").click()
    expect(page.locator("#change-summary")).to_contain_text("+1 will enter, −3 will exit")
    shot(page, "segment-confirm")
    page.get_by_role("button", name="Confirm and save").click()
    page.wait_for_url(re.compile(rf"/segments/{segment.pk}/$"))
    segment.refresh_from_db()
    assert segment.rules["children"][0]["value"] == "ES" and segment.revision == 2
