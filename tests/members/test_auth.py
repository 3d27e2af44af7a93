from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.test import Client

pytestmark = pytest.mark.django_db


def login(client: Client, email: str, password: str, **extra):
    return client.post("/login/", {"email": email, "password": password}, **extra)


def test_login_with_correct_password_redirects_home(client, marketer, password):
    response = login(client, marketer.email, password)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_email_is_case_insensitive(client, marketer, password):
    assert login(client, marketer.email.upper(), password).status_code == 302


def test_login_follows_safe_next_only(client, marketer, password):
    response = client.post(
        "/login/?next=/customers/", {"email": marketer.email, "password": password}
    )
    assert response["Location"] == "/customers/"
    client.logout()
    response = client.post(
        "/login/", {"email": marketer.email, "password": password, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_wrong_password_shows_error(client, marketer):
    response = login(client, marketer.email, "wrong")
    assert response.status_code == 400
    assert b"do not match" in response.content


def test_deactivated_member_cannot_sign_in(client, marketer, password):
    marketer.is_active = False
    marketer.save()
    assert login(client, marketer.email, password).status_code == 400


@pytest.mark.real_hashers
def test_passwords_are_hashed_with_argon2(marketer):
    assert identify_hasher(marketer.password).algorithm == "argon2"


def test_logout_needs_post(client, marketer, password):
    login(client, marketer.email, password)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_too_many_failures_for_one_email_blocks_even_the_right_password(
    client, marketer, password, settings
):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    ip = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    for _ in range(3):
        assert login(client, marketer.email, "wrong", REMOTE_ADDR=ip).status_code == 400
    response = login(client, marketer.email, password, REMOTE_ADDR=ip)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert b"Too many failed sign-in attempts" in response.content


def test_spoofed_forwarded_for_cannot_bypass_ip_throttle(client, db, settings):
    settings.LOGIN_FAILURES_PER_IP = 3
    settings.TRUSTED_PROXY_COUNT = 0
    ip = f"192.0.2.{uuid.uuid4().int % 250}"
    for attempt in range(3):
        login(
            client,
            f"{uuid.uuid4().hex}@x.example",
            "x",
            REMOTE_ADDR=ip,
            HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}",
        )
    response = login(
        client,
        f"{uuid.uuid4().hex}@x.example",
        "x",
        REMOTE_ADDR=ip,
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    assert response.status_code == 429


def test_behind_a_trusted_proxy_only_the_proxys_entry_counts(client, db, settings):
    settings.LOGIN_FAILURES_PER_IP = 2
    settings.TRUSTED_PROXY_COUNT = 1
    real_client = f"198.51.100.{uuid.uuid4().int % 250}"
    for spoof in ("1.1.1.1", "2.2.2.2"):
        # The client prepends junk; the proxy appends the address it really saw.
        login(
            client,
            f"{uuid.uuid4().hex}@x.example",
            "x",
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"{spoof}, {real_client}",
        )
    response = login(
        client,
        f"{uuid.uuid4().hex}@x.example",
        "x",
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR=f"9.9.9.9, {real_client}",
    )
    assert response.status_code == 429


def test_member_timezone_is_used_for_display(client, marketer, password):
    marketer.timezone = "Asia/Tokyo"
    marketer.save()
    login(client, marketer.email, password)
    response = client.get("/profile/")
    assert b"Asia/Tokyo" in response.content


def test_profile_rejects_unknown_timezone(marketer_client, marketer):
    response = marketer_client.post(
        "/profile/", {"action": "profile", "name": "M", "timezone": "Mars/Base"}
    )
    assert response.status_code == 200
    marketer.refresh_from_db()
    assert marketer.timezone == "UTC"


def test_profile_saves_timezone(marketer_client, marketer):
    response = marketer_client.post(
        "/profile/", {"action": "profile", "name": "Max", "timezone": "Europe/Berlin"}
    )
    assert response.status_code == 302
    marketer.refresh_from_db()
    assert (marketer.name, marketer.timezone) == ("Max", "Europe/Berlin")


def test_password_change(marketer_client, marketer, password):
    new = "an even longer passphrase 42"
    response = marketer_client.post(
        "/profile/",
        {
            "action": "password",
            "old_password": password,
            "new_password1": new,
            "new_password2": new,
        },
    )
    assert response.status_code == 302
    marketer.refresh_from_db()
    assert marketer.check_password(new)
