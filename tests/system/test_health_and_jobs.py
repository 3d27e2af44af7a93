from __future__ import annotations

import dramatiq
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from system.models import WorkerCheck
from system.services import worker_check_request


@pytest.mark.django_db
def test_healthz_ok_when_database_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_healthz_503_when_redis_does_not_answer(client, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing-listens-here.sock"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"] == "unavailable"


@pytest.fixture
def worker():
    """A real Dramatiq worker on the real Redis broker, in this process."""
    broker = dramatiq.get_broker()
    for queue in (django_settings.QUEUE_SHORT, django_settings.QUEUE_LONG):
        broker.flush(queue)
    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    yield broker
    worker.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("queue", [django_settings.QUEUE_SHORT, django_settings.QUEUE_LONG])
def test_job_is_enqueued_on_commit_and_processed(worker, queue):
    check = worker_check_request(queue=queue)
    worker.join(queue, timeout=10_000)
    check.refresh_from_db()
    assert check.completed_at is not None
    assert check.worker


@pytest.mark.django_db(transaction=True)
def test_job_enqueued_in_a_rolled_back_transaction_never_runs(worker):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        worker_check_request()
        raise RuntimeError("roll back")
    assert not WorkerCheck.objects.exists()
    assert worker.client.llen(f"{worker.namespace}:{django_settings.QUEUE_SHORT}") == 0


@pytest.mark.django_db(transaction=True)
def test_completing_twice_is_harmless(worker):
    from system.tasks import complete_worker_check

    check = worker_check_request()
    worker.join(django_settings.QUEUE_SHORT, timeout=10_000)
    check.refresh_from_db()
    first = check.completed_at
    complete_worker_check.send(check.pk)
    worker.join(django_settings.QUEUE_SHORT, timeout=10_000)
    check.refresh_from_db()
    assert check.completed_at == first


@pytest.mark.django_db(transaction=True)
def test_ping_worker_command(worker, capsys):
    call_command("ping_worker", "--timeout", "10")
    out = capsys.readouterr().out
    assert "queue default: processed" in out and "queue long: processed" in out


def test_actors_declare_queue_retries_and_time_limit():
    broker = dramatiq.get_broker()
    for name in broker.get_declared_actors():
        actor = broker.get_actor(name)
        if actor.fn.__module__.split(".")[0] not in {
            "system",
            "customers",
            "segments",
            "imports",
            "tags",
        }:
            continue
        assert actor.queue_name in (django_settings.QUEUE_SHORT, django_settings.QUEUE_LONG), name
        assert "max_retries" in actor.options and "time_limit" in actor.options, name


def test_status_page_for_admin(admin_client):
    response = admin_client.get("/settings/system/")
    assert response.status_code == 200
    assert b"Answering" in response.content


def test_status_page_shows_disabled_webhook_endpoints(admin_client):
    from django.utils import timezone

    from webhooks.models import Endpoint

    assert b"None disabled" in admin_client.get("/settings/system/").content
    Endpoint.objects.create(
        url="https://hooks.example.com/",
        secret="whsec_c2VjcmV0",
        enabled=False,
        disabled_at=timezone.now(),
        disabled_reason="410 Gone",
    )
    assert b"1 disabled" in admin_client.get("/settings/system/").content


def test_worker_check_button_enqueues(admin_client):
    response = admin_client.post(
        "/settings/system/worker-check/", {"queue": "long"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert WorkerCheck.objects.get().queue == "long"
