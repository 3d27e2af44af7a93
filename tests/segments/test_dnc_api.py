"""The Do Not Contact condition and the reachable counts through the REST API: preview,
create, explain, the rule errors and the OpenAPI description."""

from __future__ import annotations

import pytest

from donotcontact.models import Entry
from members.roles import Role
from segments.membership import segment_build
from segments.models import Segment
from tests.factories import CustomerFactory
from tests.segments.test_api import errors_of, group

pytestmark = pytest.mark.django_db


def dnc(operator: str = "is", channel: str | None = None, **scope: str) -> dict:
    return {"type": "do_not_contact", "operator": operator, "channel": channel, **scope}


@pytest.fixture
def people():
    CustomerFactory(user_id="ann", email="ann@x.io", phone="+4711111111")
    CustomerFactory(user_id="bob", email="bob@x.io", phone="+4722222222")
    CustomerFactory(user_id="cat", email="", phone="+4733333333")
    Entry.objects.create(contact="ann@x.io", channel="email")
    Entry.objects.create(contact="+4722222222", channel="sms", sender="Acme")


# The people fixture's reachable counts for "is not on the list for Email": bob's SMS entry is
# for one sender only, so both bob and cat are reachable by SMS.
REACHABLE = {"email": 1, "sms": 2, "whatsapp": 2, "viber": 2, "rcs": 2, "voice": 2, "push": 0}


def test_preview_with_the_condition_and_reachable_counts(api, people):
    response = api(
        "post", "/segments/preview", {"rules": group(dnc("is_not", "email"))}, role=Role.VIEWER
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 2 and body["sample_user_ids"] == ["bob", "cat"]
    assert body["reachable"] == REACHABLE
    alone = {"rules": group(dnc("is_not", "email")), "reachable": False}
    body = api("post", "/segments/preview", alone).json()
    assert (body["count"], body["reachable"]) == (2, None)
    assert api("post", "/segments/preview", {**alone, "reachable": "no"}).status_code == 422

    body = api(
        "post", "/segments/preview", {"rules": group(dnc("is", "sms", sender="Acme"))}
    ).json()
    assert body["sample_user_ids"] == ["bob"]


def test_rule_errors_name_the_node(api, people):
    errors = errors_of(
        api("post", "/segments/preview", {"rules": group(dnc("is", "fax"))}, role=Role.VIEWER)
    )
    assert [e["field"] for e in errors] == ["rules.children[0]"]
    assert "channel" in errors[0]["message"]
    errors = errors_of(api("post", "/segments/preview", {"rules": group({**dnc(), "when": "now"})}))
    assert [e["node"] for e in errors] == ["children[0]"]


def test_create_and_explain(api, people):
    response = api("post", "/segments", {"name": "Listed", "rules": group(dnc("is", None))})
    assert response.status_code == 201, response.content
    segment = Segment.objects.get(name="Listed")
    assert response.json()["rules"]["children"] == [dnc("is", None)]
    segment_build(segment.pk)
    body = api("get", f"/segments/{segment.pk}/explain/ann", role=Role.VIEWER).json()
    assert (body["matches"], body["member"]) == (True, True)
    seen = body["rules"]["children"][0]["seen"]
    assert (seen["contact"], seen["channel"], seen["sender"]) == ("ann@x.io", "email", "")
    body = api("get", f"/segments/{segment.pk}/explain/cat").json()
    assert body["matches"] is False and body["rules"]["children"][0]["seen"] is None


def test_the_openapi_schema_documents_the_node_and_the_counts(api):
    schema = api("get", "/openapi.json").json()
    text = str(schema)
    assert "do_not_contact" in text
    assert "reachable" in schema["components"]["schemas"]["PreviewOut"]["properties"]


@pytest.mark.parametrize("expected_matches", [0, 10**9])
def test_both_forms_of_the_reachable_counts_agree(api, people, monkeypatch, expected_matches):
    # Few expected matches: a look-up per customer and channel; many: the grouped join.
    monkeypatch.setattr("segments.query._estimate", lambda cursor, where: expected_matches)
    body = api("post", "/segments/preview", {"rules": group(dnc("is_not", "email"))}).json()
    assert body["reachable"] == REACHABLE
