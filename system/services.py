from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from system.models import WorkerCheck
from workbench.jobs import enqueue_on_commit


@transaction.atomic
def worker_check_request(*, queue: str = settings.QUEUE_SHORT, requested_by=None) -> WorkerCheck:
    from system import tasks

    actor = (
        tasks.complete_worker_check_long
        if queue == settings.QUEUE_LONG
        else tasks.complete_worker_check
    )
    check = WorkerCheck.objects.create(queue=queue, requested_by=requested_by)
    enqueue_on_commit(actor, check.pk)
    return check


def worker_check_complete(*, check_id: int, worker: str) -> None:
    # Idempotent: a retried or duplicated message finds the row already completed.
    WorkerCheck.objects.filter(pk=check_id, completed_at__isnull=True).update(
        completed_at=timezone.now(), worker=worker[:128]
    )
