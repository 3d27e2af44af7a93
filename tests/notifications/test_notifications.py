"""Notifications: sending, the bell's unread count, the list (page and htmx), opening one and
marking all read; every member sees only their own."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import Notification
from notifications.services import notification_mark_read, notification_send

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_send_and_mark_read(marketer, viewer):
    mine = notification_send(member=marketer, title="Done", body="3 added", url="/x/")
    notification_send(member=viewer, title="Theirs")
    assert mine.unread
    assert notification_mark_read(member=viewer, pk=mine.pk) == 0  # not theirs
    assert notification_mark_read(member=marketer, pk=mine.pk) == 1
    mine.refresh_from_db()
    assert not mine.unread
    assert Notification.objects.get(member=viewer).unread


@pytest.mark.parametrize("url", ["https://evil.example/", "//evil.example/", "javascript:x"])
def test_send_refuses_links_off_site(marketer, url):
    with pytest.raises(ValueError):
        notification_send(member=marketer, title="x", url=url)


def test_bell_shows_the_unread_count_on_every_page(marketer, marketer_client):
    page = marketer_client.get(reverse("home")).content.decode()
    assert 'id="notification-bell"' in page and 'data-testid="unread-count"' not in page
    notification_send(member=marketer, title="One")
    notification_send(member=marketer, title="Two")
    page = marketer_client.get(reverse("home")).content.decode()
    assert 'data-testid="unread-count">2<' in page


def test_bell_partial(marketer, marketer_client):
    notification_send(member=marketer, title="One")
    html = marketer_client.get(reverse("notification-bell"), **HTMX).content.decode()
    assert ">1<" in html and "<html" not in html


def test_list_page_and_partial(marketer, viewer, marketer_client):
    notification_send(member=marketer, title="Import finished: list.csv", body="3 added")
    notification_send(member=viewer, title="Not for the marketer")
    page = marketer_client.get(reverse("notification-list")).content.decode()
    assert "Import finished: list.csv" in page and "Not for the marketer" not in page
    assert "<html" in page and "1 unread" in page
    partial = marketer_client.get(reverse("notification-list"), **HTMX).content.decode()
    assert "<html" not in partial and "Import finished: list.csv" in partial


def test_open_marks_read_and_follows_the_link(marketer, marketer_client):
    n = notification_send(member=marketer, title="Done", url="/do-not-contact/")
    response = marketer_client.post(reverse("notification-open", args=[n.pk]))
    assert response["Location"] == "/do-not-contact/"
    n.refresh_from_db()
    assert not n.unread


def test_cannot_open_someone_elses(viewer, marketer_client):
    n = notification_send(member=viewer, title="Theirs", url="/x/")
    assert marketer_client.post(reverse("notification-open", args=[n.pk])).status_code == 404
    n.refresh_from_db()
    assert n.unread


def test_mark_all_read(marketer, viewer, marketer_client):
    notification_send(member=marketer, title="One")
    notification_send(member=marketer, title="Two")
    notification_send(member=viewer, title="Theirs")
    response = marketer_client.post(reverse("notification-read-all"))
    assert response.status_code == 302
    assert not Notification.objects.filter(member=marketer, read_at__isnull=True).exists()
    assert Notification.objects.get(member=viewer).unread


def test_mark_all_read_over_htmx(marketer, marketer_client):
    notification_send(member=marketer, title="One")
    response = marketer_client.post(reverse("notification-read-all"), **HTMX)
    assert response.status_code == 200
    assert "notifications-changed" in response["HX-Trigger"]
    assert "All read" in response.content.decode()


def test_anonymous_is_sent_to_log_in(client, marketer):
    for name in ("notification-list", "notification-bell"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/login" in response["Location"]
        assert client.get(reverse(name), **HTMX).status_code == 401
    n = notification_send(member=marketer, title="Done")
    for url in (reverse("notification-read-all"), reverse("notification-open", args=[n.pk])):
        response = client.post(url)
        assert response.status_code == 302 and "/login" in response["Location"]
    n.refresh_from_db()
    assert n.unread


def test_get_is_not_allowed_for_writes(marketer_client):
    assert marketer_client.get(reverse("notification-read-all")).status_code == 405
