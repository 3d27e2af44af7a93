from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from system.models import WorkerCheck
from system.services import worker_check_request


class Command(BaseCommand):
    help = "Send a job through each queue and wait until a worker has processed it."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, timeout: float, **options):
        checks = [
            worker_check_request(queue=q) for q in (settings.QUEUE_SHORT, settings.QUEUE_LONG)
        ]
        deadline = time.monotonic() + timeout
        pending = {c.pk for c in checks}
        while pending and time.monotonic() < deadline:
            done = WorkerCheck.objects.filter(pk__in=pending, completed_at__isnull=False)
            for check in done:
                self.stdout.write(
                    f"queue {check.queue}: processed by {check.worker} in {check.lag_ms} ms"
                )
                pending.discard(check.pk)
            time.sleep(0.1)
        if pending:
            raise CommandError(
                f"No worker processed the job(s) within {timeout:g}s: is a worker running?"
            )
