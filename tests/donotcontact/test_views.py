"""Configuration → Do Not Contact: roles, filters with several values, sort, paging, the inline
add row (htmx and plain), removing one or many, export, and the customer page's card."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from activity.models import Activity
from donotcontact.models import Entry
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LIST = "/do-not-contact/"
ADD = "/do-not-contact/add/"
BULK = "/do-not-contact/bulk/"
EXPORT = "/do-not-contact/export/"
HX = {"HTTP_HX_REQUEST": "true"}


def _remove_url(entry):
    return f"/do-not-contact/{entry.pk}/remove/"


@pytest.fixture
def rows(db):
    now = datetime.now(UTC)
    specs = [
        ("b@example.com", "email", "", "", "manual", 5),
        ("+442079460958", "sms", "Acme", "", "end_user", 4),
        ("+442079460958", "viber", "", "", "campaign", 3),
        ("+14155550123", "", "", "eu", "api", 2),
        ("a@example.com", "email", "Shop", "us", "import", 1),
    ]
    return Entry.objects.bulk_create(
        Entry(
            contact=c, channel=ch, sender=s, account=a, source=src, added_at=now - timedelta(days=d)
        )
        for c, ch, s, a, src, d in specs
    )


def _listed(response):
    assert response.status_code == 200, response.content[:500]
    return [(e.contact, e.channel) for e in response.context["page"].rows]


# --- Roles --------------------------------------------------------------------------------


def test_viewer_reads_without_write_controls(viewer_client, rows):
    response = viewer_client.get(LIST)
    html = response.content.decode()
    assert len(_listed(response)) == 5
    assert ADD not in html and BULK not in html and _remove_url(rows[0]) not in html
    assert "/do-not-contact/import/" not in html


def test_marketer_sees_write_controls(marketer_client, rows):
    html = marketer_client.get(LIST).content.decode()
    assert ADD in html and BULK in html and _remove_url(rows[0]) in html
    assert 'href="/do-not-contact/import/"' in html


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", ADD),
        ("post", BULK),
        ("get", EXPORT),
        ("post", EXPORT),
        ("get", "remove"),
        ("post", "remove"),
    ],
)
def test_viewer_may_not_write_or_export(viewer_client, rows, method, url):
    url = _remove_url(rows[0]) if url == "remove" else url
    data = {"contact": "x@example.com", "ids": [rows[0].pk], "action": "delete", "confirm": "yes"}
    assert getattr(viewer_client, method)(url, data).status_code == 403
    assert getattr(viewer_client, method)(url, data, **HX).status_code == 403
    assert Entry.objects.count() == 5


def test_anonymous_is_sent_to_login(client):
    response = client.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get(LIST, **HX).status_code == 401


# --- Filters, search, sort, paging --------------------------------------------------------


def test_filters_take_several_values(viewer_client, rows):
    get = lambda params: _listed(viewer_client.get(LIST, params))  # noqa: E731
    assert sorted(get({"channel": ["sms", "viber"]})) == [
        ("+442079460958", "sms"),
        ("+442079460958", "viber"),
    ]
    assert get({"channel": ["*"]}) == [("+14155550123", "")]
    assert sorted(get({"source": ["manual", "import"]})) == [
        ("a@example.com", "email"),
        ("b@example.com", "email"),
    ]
    assert sorted(get({"sender": ["Acme", "Shop"]})) == [
        ("+442079460958", "sms"),
        ("a@example.com", "email"),
    ]
    assert get({"account": ["eu"], "channel": ["*", "sms"]}) == [("+14155550123", "")]
    assert len(get({"sender": ["*"]})) == 3


def test_search_is_a_prefix_and_phones_are_normalised(viewer_client, rows):
    get = lambda q: sorted(_listed(viewer_client.get(LIST, {"q": q})))  # noqa: E731
    assert get("A@EX") == [("a@example.com", "email")]
    assert get("0044 20 79") == [("+442079460958", "sms"), ("+442079460958", "viber")]
    assert get("(+1) 415") == [("+14155550123", "")]
    assert get("nobody") == []
    assert get("") == sorted((e.contact, e.channel) for e in rows)


def test_contact_filter_is_exact(viewer_client, rows):
    response = viewer_client.get(LIST, {"contact": "0044 20 7946 0958"})
    assert sorted(_listed(response)) == [("+442079460958", "sms"), ("+442079460958", "viber")]
    assert _listed(viewer_client.get(LIST, {"contact": "+44207946"})) == []
    html = response.content.decode()
    assert "Contact: <strong" in html
    assert "contact=" not in response.context["without_contact"]
    assert (
        "sort=contact"
        in viewer_client.get(LIST, {"contact": "x@y.z", "sort": "contact"}).context[
            "without_contact"
        ]
    )


def test_added_range(viewer_client, rows):
    day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    assert _listed(viewer_client.get(LIST, {"added_from": day, "added_to": day})) == [
        ("+442079460958", "viber")
    ]


def test_bad_filter_says_so(viewer_client, rows):
    response = viewer_client.get(LIST, {"channel": "fax", "added_from": "yesterday"})
    assert response.status_code == 200
    assert _listed(response) == []
    assert 'class="notice error"' in response.content.decode()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (
            "contact",
            ["+14155550123", "+442079460958", "+442079460958", "a@example.com", "b@example.com"],
        ),
        (
            "-added",
            ["a@example.com", "+14155550123", "+442079460958", "+442079460958", "b@example.com"],
        ),
        (
            "added",
            ["b@example.com", "+442079460958", "+442079460958", "+14155550123", "a@example.com"],
        ),
        ("-sender", ["a@example.com", "+442079460958"]),
        ("channel", ["+14155550123"]),
        ("account", ["b@example.com"]),
        ("-source", ["b@example.com", "a@example.com", "+442079460958", "+442079460958"]),
    ],
)
def test_every_column_sorts(viewer_client, rows, sort, expected):
    listed = [c for c, _ in _listed(viewer_client.get(LIST, {"sort": sort}))]
    assert listed[: len(expected)] == expected


def test_headers_toggle_direction_and_keep_filters(viewer_client, rows):
    headers = viewer_client.get(LIST, {"sort": "contact", "channel": ["sms", "viber"]}).context[
        "headers"
    ]
    by_key = {h["key"]: h for h in headers}
    assert by_key["contact"]["order"] == "ascending"
    assert "sort=-contact" in by_key["contact"]["url"]
    assert "channel=sms&channel=viber" in by_key["contact"]["url"]
    assert "sort=-added" in by_key["added"]["url"]


@pytest.mark.parametrize("sort", ["-added", "contact", "-channel", "sender", "source", "-account"])
def test_keyset_pages_cover_every_row_once(viewer_client, monkeypatch, sort):
    monkeypatch.setattr("donotcontact.selectors.PAGE_SIZE", 3)
    now = datetime.now(UTC)
    Entry.objects.bulk_create(
        Entry(
            contact=f"u{i % 4}@example.com",
            channel="email",
            sender=f"s{i % 3}",
            account=f"a{i % 2}",
            source=["api", "manual"][i % 2],
            added_at=now - timedelta(minutes=i % 5),
        )
        for i in range(11)
    )
    seen, after = [], ""
    for _ in range(10):
        page = viewer_client.get(LIST, {"sort": sort, "after": after}).context["page"]
        seen += [e.pk for e in page.rows]
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert sorted(seen) == sorted(Entry.objects.values_list("pk", flat=True))
    assert len(seen) == len(set(seen))


def test_a_bad_cursor_is_the_first_page(viewer_client, rows):
    assert len(_listed(viewer_client.get(LIST, {"after": "[nonsense"}))) == 5
    assert len(_listed(viewer_client.get(LIST, {"after": '["x", 99999999999999999999]'}))) == 5


def test_htmx_gets_the_results_only(viewer_client, rows):
    response = viewer_client.get(LIST, {"channel": "sms"}, **HX)
    html = response.content.decode()
    assert 'id="results"' in html and "<html" not in html
    assert "+442079460958" in html and "b@example.com" not in html
    assert b"<html" in viewer_client.get(LIST, {"channel": "sms"}).content


# --- Adding -------------------------------------------------------------------------------


def test_add_without_js_redirects_back_to_the_filtered_list(marketer_client, marketer):
    response = marketer_client.post(
        ADD,
        {
            "contact": "0044 20 7946 0958",
            "channel": "viber",
            "sender": " Acme ",
            "reason": "STOP",
            "filter": "channel=viber",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/do-not-contact/?channel=viber"
    entry = Entry.objects.get()
    assert (
        entry.contact,
        entry.channel,
        entry.sender,
        entry.source,
        entry.reason,
        entry.added_by,
    ) == (
        "+442079460958",
        "viber",
        "Acme",
        "manual",
        "STOP",
        marketer,
    )
    assert Activity.objects.get(action="do_not_contact.added").target_id == entry.pk


def test_add_with_htmx_rerenders_the_results(marketer_client):
    response = marketer_client.post(ADD, {"contact": "Ann@Example.com", "channel": ""}, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "ann@example.com" in html and "Added ann@example.com" in html
    assert json.loads(response["HX-Trigger"]) == {"dnc-changed": {}}
    again = marketer_client.post(ADD, {"contact": "ann@example.com"}, **HX).content.decode()
    assert "already on the list" in again
    assert Entry.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"contact": "", "channel": "sms"},
            "contact",
            "Enter an e-mail address or a phone number.",
        ),
        ({"contact": "call me"}, "contact", "neither an e-mail address nor a phone number"),
        ({"contact": "ann@example.com", "channel": "sms"}, "channel", "only be added for Email"),
        ({"contact": "+442079460958", "channel": "email"}, "channel", "can't be added for Email"),
        ({"contact": "+442079460958", "channel": "fax"}, "channel", "Select a valid choice"),
        ({"contact": "+442079460958", "reason": "x" * 201}, "reason", "at most 200 characters"),
    ],
)
def test_add_refused_shows_the_error_inline(marketer_client, data, field, message):
    for extra in ({}, HX):
        response = marketer_client.post(ADD, data, **extra)
        assert response.status_code == 200
        form = response.context["form"]
        assert message in " ".join(form.errors[field])
        html = response.content.decode()
        assert ("<html" in html) == (not extra)
        assert 'class="errorlist' in html
        # The typed value is kept for correcting.
        if data["contact"]:
            assert f'value="{data["contact"]}"' in html
    assert not Entry.objects.exists()


def test_add_get_redirects_to_the_list(marketer_client):
    assert marketer_client.get(ADD).status_code == 302


# --- Removing -----------------------------------------------------------------------------


def test_remove_one_asks_first(marketer_client, rows):
    entry = rows[1]
    confirm = marketer_client.get(_remove_url(entry), {"filter": "channel=sms"}, **HX)
    html = confirm.content.decode()
    assert "<html" not in html and "+442079460958" in html and "Remove entry" in html
    assert b"<html" in marketer_client.get(_remove_url(entry)).content
    response = marketer_client.post(_remove_url(entry), {"filter": "channel=sms"})
    assert response.status_code == 302 and response["Location"] == "/do-not-contact/?channel=sms"
    assert not Entry.objects.filter(pk=entry.pk).exists()
    assert marketer_client.post(_remove_url(entry)).status_code == 404


def test_bulk_delete_ticked_after_confirmation(marketer_client, rows):
    ids = [rows[0].pk, rows[1].pk]
    confirm = marketer_client.post(BULK, {"ids": ids, "action": "delete", "filter": "q=b"})
    assert confirm.status_code == 200 and confirm.context["total"].value == 2
    assert Entry.objects.count() == 5
    done = marketer_client.post(
        BULK, {"ids": ids, "action": "delete", "confirm": "yes", "filter": "q=b"}
    )
    assert done.status_code == 302 and done["Location"] == "/do-not-contact/?q=b"
    assert Entry.objects.count() == 3
    log = Activity.objects.get(action="do_not_contact.removed")
    assert log.count == 2


def test_bulk_delete_all_matching_the_filter(marketer_client, rows):
    data = {
        "all": "on",
        "action": "delete",
        "confirm": "yes",
        "filter": "channel=sms&channel=viber",
    }
    marketer_client.post(BULK, data)
    assert sorted(Entry.objects.values_list("channel", flat=True)) == ["", "email", "email"]


def test_bulk_without_selection_says_so(marketer_client, rows):
    response = marketer_client.post(BULK, {"action": "delete"}, follow=True)
    assert "Select entries first" in response.content.decode()
    assert Entry.objects.count() == 5


# --- Export -------------------------------------------------------------------------------


def test_export_csv_of_ticked_entries_is_formula_escaped(marketer_client, rows):
    Entry.objects.filter(pk=rows[1].pk).update(sender="=HYPERLINK(1)", reason="+1", note="@note")
    response = marketer_client.post(EXPORT, {"ids": [rows[1].pk, rows[3].pk], "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0] == [
        "contact",
        "channel",
        "sender",
        "account",
        "source",
        "reason",
        "note",
        "added_at",
        "added_by",
    ]
    assert lines[1][:7] == [
        "+442079460958",
        "SMS",
        "'=HYPERLINK(1)",
        "",
        "Message from the end user",
        "'+1",
        "'@note",
    ]
    assert lines[2][:5] == ["+14155550123", "", "", "eu", "API"]
    assert len(lines) == 3
    assert Activity.objects.get(action="do_not_contact.exported").count == 2


def test_export_xlsx_of_all_matching(marketer_client, rows):
    Entry.objects.filter(pk=rows[2].pk).update(reason="=cmd|' /C calc'!A0")
    data = {"all": "on", "filter": "channel=viber&channel=sms", "format": "xlsx"}
    response = marketer_client.post(EXPORT, data)
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "contact" and len(values) == 3
    assert {v[1] for v in values[1:]} == {"SMS", "Viber"}
    assert "'=cmd|' /C calc'!A0" in [v[5] for v in values]
    assert all(cell.data_type == "s" for row in sheet.iter_rows() for cell in row if cell.value)


def test_export_escapes_an_email_that_starts_like_a_formula(marketer_client):
    entry = Entry.objects.create(contact="=cmd@example.com", channel="email")
    response = marketer_client.post(EXPORT, {"ids": [entry.pk], "format": "csv"})
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[1][0] == "'=cmd@example.com"


def test_export_link_exports_the_filter(marketer_client, rows):
    response = marketer_client.get(EXPORT, {"source": ["api"], "format": "csv"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 2 and lines[1].startswith("+14155550123")


def test_export_refuses_an_unknown_format(marketer_client, rows):
    response = marketer_client.post(EXPORT, {"ids": [rows[0].pk], "format": "pdf"})
    assert response.status_code == 302


# --- The customer page ----------------------------------------------------------------------


def test_customer_page_shows_the_status_per_channel(viewer_client):
    customer = CustomerFactory(email="ann@example.com", phone="+442079460958")
    Entry.objects.create(contact="ann@example.com", channel="email")
    Entry.objects.create(contact="+442079460958", channel="sms", sender="Acme")
    response = viewer_client.get(f"/customers/{customer.pk}/")
    status = {c.channel: c for c in response.context["dnc"].channels}
    assert status["email"].suppressed and status["sms"].scoped and not status["viber"].entries
    html = response.content.decode()
    assert 'id="dnc-card"' in html and "Suppressed for some senders" in html
    assert "/do-not-contact/?contact=ann%40example.com" in html


def test_export_xlsx_escapes_a_formula_behind_control_characters(marketer_client, rows):
    # Stored before reasons refused control characters (or written by other means): the
    # writer drops them and must escape what they hid.
    Entry.objects.filter(pk=rows[0].pk).update(reason="\x01=HYPERLINK(1)", note="\x1f@x")
    response = marketer_client.post(EXPORT, {"ids": [rows[0].pk], "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[1][5:7] == ["'=HYPERLINK(1)", "'@x"]
    assert all(cell.data_type == "s" for row in sheet.iter_rows() for cell in row if cell.value)


def test_delete_all_matching_an_invalid_filter_removes_nothing(marketer_client, rows):
    data = {"all": "on", "action": "delete", "confirm": "yes", "filter": "channel=fax"}
    response = marketer_client.post(BULK, data)
    assert response.status_code in (200, 302)
    assert Entry.objects.count() == 5
    assert not Activity.objects.filter(action="do_not_contact.removed").exists()


def test_delete_all_matching_marks_the_customers_and_records_one_entry(marketer_client, rows):
    from segments.models import PendingCustomer

    customer = CustomerFactory(email="b@example.com", phone="+442079460958")
    segment_reading_the_list()
    data = {"all": "on", "action": "delete", "confirm": "yes", "filter": "channel=email"}
    marketer_client.post(BULK, data)
    assert set(Entry.objects.values_list("channel", flat=True)) == {"sms", "viber", ""}
    assert PendingCustomer.objects.filter(customer_id=customer.pk).exists()
    log = Activity.objects.get(action="do_not_contact.removed")
    assert log.count == 2 and log.target_label == "2 Do Not Contact entries"
    marketer_client.post(BULK, {**data, "filter": "channel=viber"})
    one = Activity.objects.filter(action="do_not_contact.removed").latest("pk")
    assert one.target_id == str(rows[2].pk) or one.target_id == rows[2].pk
    assert "+442079460958" in one.target_label


def segment_reading_the_list():
    from segments.fields import ChangeKind
    from segments.models import Segment

    Segment.objects.create(name="reads the list", rules={}, change_kinds=ChangeKind.DO_NOT_CONTACT)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("reason", ["a", "b", "c", "", ""]),
        ("-reason", ["", "", "c", "b", "a"]),
        ("note", ["n1", "n2", "n3", "", ""]),
    ],
)
def test_reason_and_note_sort(viewer_client, rows, sort, expected):
    for entry, reason, note in zip(
        rows, ["b", "a", "c", "", ""], ["n2", "n3", "n1", "", ""], strict=True
    ):
        Entry.objects.filter(pk=entry.pk).update(reason=reason, note=note)
    page = viewer_client.get(LIST, {"sort": sort}).context["page"]
    column = sort.lstrip("-")
    got = [getattr(e, column) for e in page.rows]
    assert sorted(got, reverse=sort.startswith("-")) == got
    assert [v for v in got if v] == [v for v in expected if v]
    headers = viewer_client.get(LIST, {"sort": sort}).context["text_headers"]
    assert {h["key"]: h["order"] for h in headers}[column] in ("ascending", "descending")


@pytest.mark.parametrize("sort", ["reason", "-note"])
def test_keyset_pages_by_reason_and_note_cover_every_row_once(viewer_client, monkeypatch, sort):
    monkeypatch.setattr("donotcontact.selectors.PAGE_SIZE", 3)
    Entry.objects.bulk_create(
        Entry(contact=f"u{i}@example.com", channel="email", reason=f"r{i % 3}", note=f"n{i % 2}")
        for i in range(11)
    )
    seen, after = [], ""
    for _ in range(10):
        page = viewer_client.get(LIST, {"sort": sort, "after": after}).context["page"]
        seen += [e.pk for e in page.rows]
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert sorted(seen) == sorted(Entry.objects.values_list("pk", flat=True))
    assert len(seen) == len(set(seen))
