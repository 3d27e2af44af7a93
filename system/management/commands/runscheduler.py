"""Enqueue periodic jobs (workbench/schedule.py) until stopped. Run one or several: Redis
keeps them from enqueueing a job twice in its interval."""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand

from workbench.schedule import enqueue_due


class Command(BaseCommand):
    help = "Enqueue Workbench's periodic jobs (event retention and catalog recount) when due."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=30.0, help="seconds between checks")
        parser.add_argument("--once", action="store_true", help="check once and exit")

    def handle(self, *args, interval: float, once: bool, **options):
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            for name in enqueue_due():
                self.stdout.write(f"enqueued {name}")
            if once:
                return
            deadline = time.monotonic() + interval
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.5)
