"""/api/v1/do-not-contact: list, add (one or many), remove, check; roles and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activity.models import Activity
from donotcontact.models import Entry
from members.roles import Role

pytestmark = pytest.mark.django_db

BASE = "/do-not-contact"


# --- Adding -------------------------------------------------------------------------------


def test_add_one(api, marketer):
    response = api(
        "post", BASE, {"contact": "0044 20 7946 0958", "channel": "WhatsApp", "reason": "STOP"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["added"], body["already_present"], body["rejected"]) == (1, 0, 0)
    result = body["results"][0]
    assert (result["status"], result["contact"]) == ("added", "+442079460958")
    assert result["entry"]["channel"] == "whatsapp"
    assert result["entry"]["source"] == "api"
    assert result["entry"]["added_by"] == marketer.email
    entry = Entry.objects.get()
    assert (entry.reason, entry.source) == ("STOP", "api")
    # Again: already present, 200, nothing changes.
    again = api(
        "post", BASE, {"contact": "+442079460958", "channel": "whatsapp", "source": "campaign"}
    )
    assert again.status_code == 200
    assert again.json()["results"][0]["status"] == "already_present"
    assert Entry.objects.get().source == "api"


def test_add_one_refused_is_422_with_the_reason(api):
    response = api("post", BASE, {"contact": "jane@example.com", "channel": "sms"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "channel", "message": "An e-mail address can only be added for Email, not SMS."}
    ]
    response = api("post", BASE, {"contact": "call me", "channel": "sms"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "contact"
    response = api("post", BASE, {"contact": "+442079460958", "colour": "red"})
    assert response.json()["errors"] == [{"field": "colour", "message": "Unknown field."}]
    response = api("post", BASE, {"contact": "+442079460958", "source": "rumour"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "source"
    assert not Entry.objects.exists()


def test_add_many_each_with_its_status(api):
    Entry.objects.create(contact="old@example.com", channel="email")
    body = {
        "entries": [
            {"contact": "a@example.com"},
            {"contact": "old@example.com", "channel": "email"},
            {"contact": "+442079460958", "channel": "email"},
            {"contact": "A@example.com"},
            {"contact": "+442079460958", "channel": "sms", "sender": "Acme", "source": "end_user"},
            "not an object",
            {"contact": "+442079460958", "sender": "x" * 101},
        ]
    }
    response = api("post", BASE, body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert [r["status"] for r in data["results"]] == [
        "added",
        "already_present",
        "rejected",
        "already_present",  # a repeat within the request
        "added",
        "rejected",
        "rejected",
    ]
    assert (data["added"], data["already_present"], data["rejected"]) == (2, 2, 3)
    assert data["results"][2]["errors"][0]["field"] == "channel"
    assert data["results"][5]["errors"] == [{"field": "entry", "message": "Must be a JSON object."}]
    assert data["results"][6]["errors"][0]["field"] == "sender"
    assert data["results"][1]["entry"]["contact"] == "old@example.com"
    assert Entry.objects.get(sender="Acme").source == "end_user"
    assert Entry.objects.count() == 3
    # One log entry per source batch, not one per entry.
    assert Activity.objects.filter(action="do_not_contact.added").count() == 2


def test_add_many_limits(api):
    too_many = {"entries": [{"contact": f"u{i}@example.com"} for i in range(1001)]}
    response = api("post", BASE, too_many)
    assert response.status_code == 422
    assert "limit is 1000" in response.json()["detail"]
    assert api("post", BASE, {"entries": "a@example.com"}).status_code == 422
    assert api("post", BASE, {"entries": [], "extra": 1}).status_code == 422
    assert api("post", BASE, raw="{not json").status_code == 400
    assert api("post", BASE, raw="[1, 2]").status_code == 422
    assert not Entry.objects.exists()


def test_writes_need_a_marketer(api):
    response = api("post", BASE, {"contact": "a@example.com"}, role=Role.VIEWER)
    assert response.status_code == 403
    entry = Entry.objects.create(contact="a@example.com", channel="email")
    assert api("delete", f"{BASE}/{entry.pk}", role=Role.VIEWER).status_code == 403
    assert Entry.objects.count() == 1


def test_unauthenticated_is_401(client):
    assert client.get(f"/api/v1{BASE}").status_code == 401
    assert client.get(f"/api/v1{BASE}/check", {"contact": "a@example.com"}).status_code == 401


# --- Removing -----------------------------------------------------------------------------


def test_remove(api):
    entry = Entry.objects.create(contact="a@example.com", channel="email")
    assert api("delete", f"{BASE}/{entry.pk}").status_code == 204
    assert not Entry.objects.exists()
    assert api("delete", f"{BASE}/{entry.pk}").status_code == 404
    assert api("delete", f"{BASE}/0").status_code == 422
    assert api("delete", f"{BASE}/{2**63}").status_code == 422
    assert Activity.objects.filter(action="do_not_contact.removed").count() == 1


def test_get_one(api):
    entry = Entry.objects.create(contact="a@example.com", channel="email", reason="r")
    response = api("get", f"{BASE}/{entry.pk}", role=Role.VIEWER)
    assert response.status_code == 200 and response.json()["reason"] == "r"
    assert api("get", f"{BASE}/{entry.pk + 1}", role=Role.VIEWER).status_code == 404


# --- Listing ------------------------------------------------------------------------------


@pytest.fixture
def listed(db):
    now = datetime.now(UTC)
    rows = [
        Entry(
            contact="a@example.com",
            channel="email",
            source="manual",
            added_at=now - timedelta(days=3),
        ),
        Entry(
            contact="+442079460958",
            channel="sms",
            sender="Acme",
            source="api",
            added_at=now - timedelta(days=2),
        ),
        Entry(
            contact="+442079460958",
            channel="viber",
            source="import",
            added_at=now - timedelta(days=1),
        ),
        Entry(contact="+14155550123", channel="", account="eu", source="api", added_at=now),
    ]
    return Entry.objects.bulk_create(rows)


def _contacts(response):
    assert response.status_code == 200, response.content
    return [(e["contact"], e["channel"]) for e in response.json()["entries"]]


def test_list_filters(api, listed):
    get = lambda params: _contacts(api("get", BASE, params, role=Role.VIEWER))  # noqa: E731
    assert len(get({})) == 4
    assert get({"channel": ["sms", "Viber"]}) == [
        ("+442079460958", "sms"),
        ("+442079460958", "viber"),
    ]
    assert get({"channel": "*"}) == [("+14155550123", "")]
    assert get({"contact": "0044 20 7946 0958"}) == [
        ("+442079460958", "sms"),
        ("+442079460958", "viber"),
    ]
    assert get({"sender": "Acme"}) == [("+442079460958", "sms")]
    assert get({"account": ["eu"], "source": ["api"]}) == [("+14155550123", "")]
    assert get({"source": ["manual", "import"]}) == [
        ("a@example.com", "email"),
        ("+442079460958", "viber"),
    ]
    since = (listed[2].added_at - timedelta(minutes=1)).isoformat()
    assert get({"added_from": since}) == [("+442079460958", "viber"), ("+14155550123", "")]
    assert get({"added_to": since}) == [("a@example.com", "email"), ("+442079460958", "sms")]


def test_list_bad_filters_are_422(api, listed):
    assert api("get", BASE, {"channel": "fax"}, role=Role.VIEWER).status_code == 422
    assert api("get", BASE, {"source": "rumour"}, role=Role.VIEWER).status_code == 422
    response = api("get", BASE, {"contact": "nobody"}, role=Role.VIEWER)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "contact"
    assert api("get", BASE, {"cursor": "nonsense"}, role=Role.VIEWER).status_code == 422
    assert api("get", BASE, {"limit": 0}, role=Role.VIEWER).status_code == 422


def test_list_cursor_pages_through_everything(api, listed):
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        data = api("get", BASE, params, role=Role.VIEWER).json()
        seen += [e["id"] for e in data["entries"]]
        cursor = data["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(e.pk for e in listed)


# --- The check ----------------------------------------------------------------------------


def test_check(api, listed):
    def check(**params):
        response = api("get", f"{BASE}/check", params, role=Role.VIEWER)
        assert response.status_code == 200, response.content
        data = response.json()
        return data["suppressed"], [(e["channel"], e["sender"]) for e in data["entries"]], data

    suppressed, entries, data = check(contact="A@Example.com")
    assert (suppressed, entries, data["contact"]) == (True, [("email", "")], "a@example.com")
    # Phone typed in another format, on a channel with an entry for it.
    assert check(contact="0044 20 7946 0958", channel="viber")[:2] == (True, [("viber", "")])
    # The SMS entry is for sender Acme only: not suppressed for every sender, but for Acme.
    assert check(contact="+442079460958", channel="sms")[:2] == (False, [])
    assert check(contact="+442079460958", channel="SMS", sender="Acme")[:2] == (
        True,
        [("sms", "Acme")],
    )
    # An all-channels entry scoped to an account.
    assert check(contact="+14155550123", channel="voice")[0] is False
    assert check(contact="+14155550123", channel="voice", account="eu")[0] is True
    # Without a channel: suppressed on some channel.
    assert check(contact="+442079460958")[0] is True
    assert check(contact="nobody@example.com")[:2] == (False, [])


def test_check_bad_input(api):
    response = api("get", f"{BASE}/check", {"contact": "hello"}, role=Role.VIEWER)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "contact"
    assert "international format" in response.json()["errors"][0]["message"]
    response = api(
        "get", f"{BASE}/check", {"contact": "a@example.com", "channel": "sms"}, role=Role.VIEWER
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "channel"
    response = api(
        "get", f"{BASE}/check", {"contact": "+442079460958", "channel": "fax"}, role=Role.VIEWER
    )
    assert response.status_code == 422
    assert api("get", f"{BASE}/check", {}, role=Role.VIEWER).status_code == 422
    response = api("get", f"{BASE}/check", {"contact": "a\x00@example.com"}, role=Role.VIEWER)
    assert response.status_code == 422
