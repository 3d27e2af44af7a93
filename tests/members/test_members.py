from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from members.models import Member
from members.roles import Role
from members.services import member_create, member_update

pytestmark = pytest.mark.django_db


def test_admin_adds_member_and_sees_password_once(admin_client):
    response = admin_client.post(
        "/settings/members/", {"email": "New@Example.com", "name": "Nia", "role": "viewer"}
    )
    assert response.status_code == 200
    member = Member.objects.get(email="new@example.com")
    email, password = response.context["created"][0].email, response.context["created"][1]
    assert email == "new@example.com" and member.role == Role.VIEWER
    assert member.check_password(password)


def test_htmx_add_returns_the_members_fragment(admin_client):
    response = admin_client.post(
        "/settings/members/",
        {"email": "frag@example.com", "role": "marketer"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert b'id="members"' in response.content
    assert b"<html" not in response.content


def test_duplicate_email_is_a_form_error(admin_client, marketer):
    response = admin_client.post(
        "/settings/members/", {"email": marketer.email.upper(), "role": "viewer"}
    )
    assert b"already exists" in response.content
    assert Member.objects.filter(email__iexact=marketer.email).count() == 1


def test_the_last_admin_cannot_be_demoted_or_deactivated(admin):
    with pytest.raises(ValidationError):
        member_update(member=admin, name=admin.name, role=Role.MARKETER, is_active=True)
    with pytest.raises(ValidationError):
        member_update(member=admin, name=admin.name, role=Role.ADMIN, is_active=False)
    other, _ = member_create(email="second@example.com", name="", role=Role.ADMIN)
    member_update(member=admin, name=admin.name, role=Role.VIEWER, is_active=True)
    admin.refresh_from_db()
    assert admin.role == Role.VIEWER


def test_admin_changes_role_in_ui(admin_client, marketer):
    response = admin_client.post(
        f"/settings/members/{marketer.pk}/", {"name": "M", "role": "viewer", "is_active": "on"}
    )
    assert response.status_code == 302
    marketer.refresh_from_db()
    assert marketer.role == Role.VIEWER


def test_edit_shows_last_admin_error(admin_client, admin):
    response = admin_client.post(
        f"/settings/members/{admin.pk}/", {"name": "A", "role": "viewer", "is_active": "on"}
    )
    assert response.status_code == 200
    assert b"at least one active Admin" in response.content


def test_reset_password_shows_new_one(admin_client, marketer):
    response = admin_client.post(f"/settings/members/{marketer.pk}/", {"action": "reset-password"})
    marketer.refresh_from_db()
    assert marketer.check_password(response.context["new_password"])


@pytest.mark.parametrize("client_fixture", ["marketer_client", "viewer_client"])
def test_only_admins_manage_members_page_and_partial(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    assert client.get("/settings/members/").status_code == 403
    response = client.post(
        "/settings/members/", {"email": "x@example.com", "role": "admin"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 403
    assert not Member.objects.filter(email="x@example.com").exists()


def test_unauthenticated_htmx_request_gets_hx_redirect(client):
    response = client.get("/settings/members/", HTTP_HX_REQUEST="true")
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith("/login/")
