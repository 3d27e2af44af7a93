from __future__ import annotations

import pytest
from django.test import Client

from members.roles import Role
from tests.api_client import Api
from tests.factories import PASSWORD, MemberFactory


@pytest.fixture(autouse=True)
def fast_password_hashing(request, settings):
    """Argon2 is slow on purpose; tests that are not about hashing hash with MD5. Argon2 stays
    listed so hashes made elsewhere still verify."""
    if "real_hashers" not in request.keywords:
        settings.PASSWORD_HASHERS = [
            "django.contrib.auth.hashers.MD5PasswordHasher",
            *settings.PASSWORD_HASHERS,
        ]


@pytest.fixture
def admin(db):
    return MemberFactory(role=Role.ADMIN, email="admin@test.example", name="Ada Admin")


@pytest.fixture
def marketer(db):
    return MemberFactory(role=Role.MARKETER, email="marketer@test.example", name="Max Marketer")


@pytest.fixture
def viewer(db):
    return MemberFactory(role=Role.VIEWER, email="viewer@test.example", name="Vera Viewer")


@pytest.fixture
def cast(admin, marketer, viewer):
    """The fixed cast of members, one per role."""
    return {Role.ADMIN: admin, Role.MARKETER: marketer, Role.VIEWER: viewer}


def _client_for(member) -> Client:
    client = Client()
    client.force_login(member)
    return client


@pytest.fixture
def admin_client(admin):
    return _client_for(admin)


@pytest.fixture
def marketer_client(marketer):
    return _client_for(marketer)


@pytest.fixture
def viewer_client(viewer):
    return _client_for(viewer)


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def api(client, request):
    """The REST API as a role: api("post", "/events", body, role=Role.VIEWER)."""
    return Api(client, request)
