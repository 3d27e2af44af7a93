from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command

from apitokens.models import ApiToken
from apitokens.services import api_token_create, api_token_revoke
from tests.api_client import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(marketer):
    return api_token_create(member=marketer, name="CRM sync")


def test_token_is_stored_as_sha256_hash_with_visible_prefix(token):
    record, plaintext = token
    assert plaintext.startswith(record.prefix + "_")
    assert record.prefix.startswith("wbt_")
    assert record.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert not ApiToken.objects.filter(token_hash=plaintext).exists()


def test_me_answers_for_the_tokens_member(client, token, marketer):
    record, plaintext = token
    response = client.get("/api/v1/me", **bearer(plaintext))
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == marketer.email
    assert body["role"] == "marketer"
    assert body["token_prefix"] == record.prefix
    record.refresh_from_db()
    assert record.last_used_at is not None


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_AUTHORIZATION": "Bearer wbt_nope_nope"}, {"HTTP_AUTHORIZATION": "Basic abc"}],
    ids=["missing", "unknown", "wrong-scheme"],
)
def test_missing_or_unknown_token_is_401_json(client, headers):
    response = client.get("/api/v1/me", **headers)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"] == "Bearer"
    assert "detail" in response.json()


def test_revoked_token_is_refused(client, token):
    record, plaintext = token
    api_token_revoke(token=record)
    assert client.get("/api/v1/me", **bearer(plaintext)).status_code == 401


def test_deactivated_members_token_is_refused(client, token, marketer):
    marketer.is_active = False
    marketer.save()
    assert client.get("/api/v1/me", **bearer(token[1])).status_code == 401


def test_rate_limit_answers_429_with_retry_after(client, token, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    statuses = [client.get("/api/v1/me", **bearer(token[1])).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/api/v1/me", **bearer(token[1]))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 61
    assert response.json()["detail"].startswith("Rate limit")


def test_rate_limit_is_per_token(client, token, marketer, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    _, other = api_token_create(member=marketer, name="other")
    assert client.get("/api/v1/me", **bearer(token[1])).status_code == 200
    assert client.get("/api/v1/me", **bearer(token[1])).status_code == 429
    assert client.get("/api/v1/me", **bearer(other)).status_code == 200


def test_patch_me_updates_timezone(client, token, marketer):
    response = client.patch(
        "/api/v1/me",
        json.dumps({"timezone": "Asia/Tokyo"}),
        content_type="application/json",
        **bearer(token[1]),
    )
    assert response.status_code == 200
    marketer.refresh_from_db()
    assert marketer.timezone == "Asia/Tokyo"


def test_invalid_field_is_422_with_field_messages(client, token):
    response = client.patch(
        "/api/v1/me",
        json.dumps({"timezone": "Mars/Olympus"}),
        content_type="application/json",
        **bearer(token[1]),
    )
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["field"] == "timezone"
    assert "IANA" in body["errors"][0]["message"]


def test_unknown_field_is_422(client, token):
    response = client.patch(
        "/api/v1/me",
        json.dumps({"colour": "red"}),
        content_type="application/json",
        **bearer(token[1]),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "colour"


def test_malformed_json_is_a_client_error_not_500(client, token):
    response = client.patch(
        "/api/v1/me", "{not json", content_type="application/json", **bearer(token[1])
    )
    assert 400 <= response.status_code < 500
    assert "detail" in response.json()


def test_oversized_body_is_413(client, token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"name": "x" * 5000})
    response = client.patch("/api/v1/me", body, content_type="application/json", **bearer(token[1]))
    assert response.status_code == 413
    assert response.json()["detail"]


def test_openapi_and_docs_are_served(client):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/me" in schema.json()["paths"]
    assert client.get("/api/v1/docs").status_code == 200


def test_create_api_token_command_prints_token_once(marketer, capsys):
    call_command("create_api_token", "--member", marketer.email.upper(), "--name", "Import script")
    plaintext = capsys.readouterr().out.strip()
    record = ApiToken.objects.get(name="Import script")
    assert record.member == marketer
    assert record.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()


def test_create_api_token_command_rejects_unknown_member(db):
    with pytest.raises(CommandError, match="No member"):
        call_command("create_api_token", "--member", "ghost@example.com", "--name", "x")


def test_admin_creates_and_revokes_token_in_ui(admin_client, marketer):
    response = admin_client.post(
        "/settings/api-tokens/", {"name": "Warehouse", "member": marketer.pk}
    )
    assert response.status_code == 302  # Post/Redirect/Get: a reload cannot create a second token
    shown = admin_client.get("/settings/api-tokens/")
    record = ApiToken.objects.get(name="Warehouse")
    plaintext = shown.context["created"][1]
    assert record.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext.encode() in shown.content  # shown once, on the next page view only
    assert plaintext.encode() not in admin_client.get("/settings/api-tokens/").content
    admin_client.post(f"/settings/api-tokens/{record.pk}/revoke/")
    record.refresh_from_db()
    assert record.revoked_at is not None


def test_marketer_cannot_manage_tokens(marketer_client, admin):
    assert (
        marketer_client.post("/settings/api-tokens/", {"name": "x", "member": admin.pk}).status_code
        == 403
    )
    assert not ApiToken.objects.exists()
