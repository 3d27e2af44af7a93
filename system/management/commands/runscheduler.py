"""Run the periodic-job scheduler: dramatiq-crontab's `crontab` command (every `@cron` actor
in the apps' tasks modules), kept trying. Run one or several: a Redis lock lets one enqueue at
a time, and another takes over within seconds when it stops."""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand
from dramatiq_crontab.management.commands import crontab


class Command(BaseCommand):
    help = "Enqueue Workbench's periodic jobs (segment sweeps, event maintenance) when due."

    def handle(self, *args, **options):
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True
            raise KeyboardInterrupt(f"Received {signal.Signals(signum).name}, shutting down…")

        # crontab installs its own handler once it holds the lock; ours also records that a
        # signal (not a lost lock) ended it, and interrupts the wait for the lock.
        crontab.kill_softly = stop
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, stop)
        scheduler = crontab.Command(stdout=self.stdout, stderr=self.stderr)
        try:
            while not stopping:
                # Returns when another scheduler holds the lock (after 15 s) or loses it.
                scheduler.handle(no_task_loading=False, no_heartbeat=True)
                time.sleep(1)
        except KeyboardInterrupt:
            pass
