"""Every URL is classified; each is checked unauthenticated and for every role.

Adding a URL without classifying it here fails test_every_url_is_classified.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from members.roles import Role

PUBLIC = "public"
API = "api"  # guarded by bearer tokens; covered in tests/apitokens

# url name -> (who may use it, sample kwargs, method)
CLASSIFIED: dict[str, tuple[str, dict, str]] = {
    "login": (PUBLIC, {}, "get"),
    "healthz": (PUBLIC, {}, "get"),
    "logout": (PUBLIC, {}, "post"),  # signing out is harmless for anyone
    "home": (Role.VIEWER, {}, "get"),
    "palette": (Role.VIEWER, {}, "get"),
    "profile": (Role.VIEWER, {}, "get"),
    "customer-list": (Role.VIEWER, {}, "get"),
    "customer-detail": (Role.VIEWER, {"pk": "customer"}, "get"),
    "customer-new": (Role.MARKETER, {}, "get"),
    "customer-columns": (Role.VIEWER, {}, "post"),
    "customer-bulk": (Role.MARKETER, {}, "post"),
    "customer-edit": (Role.MARKETER, {"pk": "customer"}, "get"),
    "customer-delete": (Role.MARKETER, {"pk": "customer"}, "get"),
    "customer-tags": (Role.MARKETER, {"pk": "customer"}, "post"),
    "customer-tag-remove": (Role.MARKETER, {"pk": "customer", "tag_id": "tag"}, "post"),
    "member-list": (Role.ADMIN, {}, "get"),
    "member-edit": (Role.ADMIN, {"pk": "member"}, "get"),
    "api-token-list": (Role.ADMIN, {}, "get"),
    "api-token-revoke": (Role.ADMIN, {"pk": "token"}, "post"),
    "system-status": (Role.ADMIN, {}, "get"),
    "system-worker-check": (Role.ADMIN, {}, "post"),
    "custom-field-list": (Role.ADMIN, {}, "get"),
    "custom-field-edit": (Role.ADMIN, {"pk": "custom_field"}, "get"),
    "custom-field-delete": (Role.ADMIN, {"pk": "custom_field"}, "get"),
    "custom-field-stats": (Role.ADMIN, {"pk": "custom_field"}, "get"),
    "tag-list": (Role.VIEWER, {}, "get"),
    "event-list": (Role.VIEWER, {}, "get"),
    "customer-events": (Role.VIEWER, {"pk": "customer"}, "get"),
    "tag-create": (Role.MARKETER, {}, "post"),
    "tag-edit": (Role.MARKETER, {"pk": "tag"}, "get"),
    "tag-delete": (Role.MARKETER, {"pk": "tag"}, "get"),
    "tag-merge": (Role.MARKETER, {"pk": "tag"}, "get"),
    "activity-list": (Role.MARKETER, {}, "get"),
    "segment-list": (Role.VIEWER, {}, "get"),
    "segment-detail": (Role.VIEWER, {"pk": "segment"}, "get"),
    "segment-new": (Role.MARKETER, {}, "get"),
    "segment-edit": (Role.MARKETER, {"pk": "segment"}, "get"),
    "segment-builder": (Role.MARKETER, {}, "post"),
    "segment-duplicate": (Role.MARKETER, {"pk": "segment"}, "post"),
    "segment-delete": (Role.MARKETER, {"pk": "segment"}, "get"),
    "segment-export": (Role.MARKETER, {"pk": "segment"}, "get"),
    "customer-segments": (Role.VIEWER, {"pk": "customer"}, "get"),
    "customer-segment-explain": (Role.VIEWER, {"pk": "customer", "segment_pk": "segment"}, "get"),
    "import-new": (Role.MARKETER, {}, "get"),
    "import-sample": (Role.VIEWER, {}, "get"),
    "import-list": (Role.VIEWER, {}, "get"),
    "import-map": (Role.MARKETER, {"pk": "import_draft"}, "get"),
    "import-column": (Role.MARKETER, {"pk": "import_draft", "index": "column"}, "get"),
    "import-review": (Role.VIEWER, {"pk": "import"}, "get"),
    "import-run": (Role.MARKETER, {"pk": "import_draft"}, "post"),
    "import-errors": (Role.VIEWER, {"pk": "import"}, "get"),
    "import-action": (Role.MARKETER, {"pk": "import", "action": "import_action"}, "post"),
    "export-list": (Role.MARKETER, {}, "get"),
    "export-new": (Role.MARKETER, {}, "get"),
    "export-download": (Role.MARKETER, {"pk": "export"}, "get"),
    "dnc-list": (Role.VIEWER, {}, "get"),
    "dnc-add": (Role.MARKETER, {}, "post"),
    "dnc-bulk": (Role.MARKETER, {}, "post"),
    "dnc-export": (Role.MARKETER, {}, "get"),
    "dnc-remove": (Role.MARKETER, {"pk": "dnc_entry"}, "get"),
    "dnc-import-new": (Role.MARKETER, {}, "get"),
    "dnc-import-map": (Role.MARKETER, {"pk": "dnc_import_draft"}, "get"),
    "dnc-import-detail": (Role.VIEWER, {"pk": "dnc_import_draft"}, "get"),
    "dnc-import-run": (Role.MARKETER, {"pk": "dnc_import_draft"}, "post"),
    "notification-list": (Role.VIEWER, {}, "get"),
    "notification-bell": (Role.VIEWER, {}, "get"),
    "notification-read-all": (Role.VIEWER, {}, "post"),
    "notification-open": (Role.VIEWER, {"pk": "notification"}, "get"),
    "webhook-list": (Role.ADMIN, {}, "get"),
    "webhook-new": (Role.ADMIN, {}, "get"),
    "webhook-detail": (Role.ADMIN, {"pk": "webhook"}, "get"),
    "webhook-edit": (Role.ADMIN, {"pk": "webhook"}, "get"),
    "webhook-delete": (Role.ADMIN, {"pk": "webhook"}, "get"),
    "webhook-enable": (Role.ADMIN, {"pk": "webhook"}, "post"),
    "webhook-rotate": (Role.ADMIN, {"pk": "webhook"}, "post"),
    "webhook-test": (Role.ADMIN, {"pk": "webhook"}, "post"),
    "webhook-replay-range": (Role.ADMIN, {"pk": "webhook"}, "post"),
    "webhook-delivery": (Role.ADMIN, {"pk": "webhook", "delivery_pk": "webhook_delivery"}, "get"),
    "webhook-replay": (Role.ADMIN, {"pk": "webhook", "delivery_pk": "webhook_delivery"}, "post"),
    "webhook-handover-customers": (Role.MARKETER, {}, "post"),
    "webhook-handover-segment": (Role.MARKETER, {"pk": "segment"}, "get"),
}
# A member's own notification answers 404 to everyone else, so the per-role sweep (one sample
# for all roles) cannot hold it; tests/notifications covers who may open what.
OWNER_ONLY = {"notification-open"}
API_PREFIX = "api/v1/"


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def test_every_url_is_classified():
    unclassified = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(API_PREFIX):
            continue
        if pattern.name not in CLASSIFIED:
            unclassified.append(route)
    assert not unclassified, f"Classify these URLs in tests/test_url_sweep.py: {unclassified}"


def test_every_guarded_view_declares_its_role():
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(API_PREFIX) or pattern.name not in CLASSIFIED:
            continue
        who = CLASSIFIED[pattern.name][0]
        if who != PUBLIC:
            assert getattr(pattern.callback, "minimum_role", None) == who, route


@pytest.fixture
def samples(cast, settings, tmp_path):
    from django.utils import timezone

    from activity.services import Actor
    from apitokens.services import api_token_create
    from donotcontact.importing import entry_import_upload
    from donotcontact.models import Entry
    from exports.models import Export, ExportFormat, ExportSource, ExportStatus
    from imports.models import Import, ImportStatus
    from imports.services import import_upload
    from notifications.services import notification_send
    from segments.services import segment_create
    from tests.factories import CustomerFactory, CustomFieldFactory, TagFactory
    from webhooks.models import Delivery, Endpoint

    segment = segment_create(
        name="Sweep",
        rules={
            "type": "group",
            "match": "all",
            "children": [
                {"type": "attribute", "field": "country", "operator": "is", "value": "PT"}
            ],
        },
        actor=Actor.system("sweep"),
        tz="UTC",
    )

    # A draft still in the wizard, with its uploaded file (map, column check, run), and a
    # finished import (review, error report, cancel: refused with a message, so a redirect).
    settings.IMPORTS_DIR = tmp_path / "imports"
    draft = import_upload(
        chunks=[b"id,email\nu1,a@example.com\n"],
        file_name="sweep.csv",
        actor=Actor.system("sweep"),
    )
    finished = Import.objects.create(
        file_name="done.csv", status=ImportStatus.COMPLETED, headers=["id"], mapping=["id"]
    )
    # A ready export of the marketer's, its file in place.
    settings.EXPORTS_DIR = tmp_path / "exports"
    settings.EXPORTS_DIR.mkdir()
    (settings.EXPORTS_DIR / "export-sweep.csv").write_text("id\nu1\n")
    export = Export.objects.create(
        member=cast[Role.MARKETER],
        source=ExportSource.ALL,
        description="All customers",
        format=ExportFormat.CSV,
        columns=["user_id"],
        status=ExportStatus.READY,
        file_path="export-sweep.csv",
        size=6,
    )

    settings.DNC_IMPORTS_DIR = tmp_path / "dnc"
    dnc_draft = entry_import_upload(
        chunks=[b"a@example.com\n"], file_name="sweep.txt", actor=Actor.system("sweep")
    )
    # Saved directly: a loopback URL is refused at connection time, so "test" answers at once.
    hook = Endpoint.objects.create(
        url="http://127.0.0.1:9/", events=["segment-entered"], secret="whsec_c2VjcmV0"
    )
    hook_delivery = Delivery.objects.create(
        endpoint=hook,
        webhook_id="msg_sweep",
        event="segment-entered",
        body="{}",
        give_up_at=timezone.now(),
    )
    notification = notification_send(member=cast[Role.VIEWER], title="Sweep")

    return {
        "dnc_entry": Entry.objects.create(contact="sweep@example.com", channel="email").pk,
        "dnc_import_draft": dnc_draft.pk,
        "webhook": hook.pk,
        "webhook_delivery": hook_delivery.pk,
        "notification": notification.pk,
        "import_draft": draft.pk,
        "column": 0,
        "import": finished.pk,
        "import_action": "cancel",
        "export": export.pk,
        "customer": CustomerFactory().pk,
        "member": cast[Role.VIEWER].pk,
        "token": api_token_create(member=cast[Role.VIEWER], name="sweep")[0].pk,
        "tag": TagFactory().pk,
        "custom_field": CustomFieldFactory().pk,
        "segment": segment.pk,
    }


def _url(name, kwargs, samples):
    from django.urls import reverse

    return reverse(name, kwargs={k: samples[v] for k, v in kwargs.items()})


RANK = {Role.VIEWER: 0, Role.MARKETER: 1, Role.ADMIN: 2}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(CLASSIFIED))
def test_unauthenticated(client, samples, name):
    who, kwargs, method = CLASSIFIED[name]
    response = getattr(client, method)(_url(name, kwargs, samples))
    if who == PUBLIC:
        assert response.status_code in (200, 302, 503)
    else:
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
        hx = getattr(client, method)(_url(name, kwargs, samples), HTTP_HX_REQUEST="true")
        assert hx.status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.ADMIN])
@pytest.mark.parametrize(
    "name", sorted(n for n, c in CLASSIFIED.items() if c[0] != PUBLIC and n not in OWNER_ONLY)
)
def test_per_role(client, cast, samples, name, role):
    who, kwargs, method = CLASSIFIED[name]
    client.force_login(cast[role])
    response = getattr(client, method)(_url(name, kwargs, samples))
    if RANK[role] >= RANK[who]:
        assert response.status_code in (200, 302), response.status_code
    else:
        assert response.status_code == 403
