"""`make run`: migrate, first-run set-up, then the web server, a Dramatiq worker and the
periodic-job scheduler together.

This process owns the embedded engines (when DATABASE_URL / REDIS_URL are unset): settings
started them and exported their URLs, so the children connect to the same servers by URL
and the engines stop when this process exits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from customers.demo_data import generate_customers
from customers.models import Customer
from members.models import Member
from members.roles import Role
from members.services import member_create
from workbench.engines import VAR_DIR

DEMO_CUSTOMERS = 5_000


class Command(BaseCommand):
    help = "Run Workbench: migrate, create the first admin and demo data once, start web + worker."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-demo-data", action="store_true")

    def handle(self, *args, host: str, port: int, no_demo_data: bool, **options):
        self._check_port_free(host, port)
        call_command("migrate", interactive=False, verbosity=0)
        self._first_run(load_demo=not no_demo_data)
        # Bring time-based segments (the predefined ones among them) up to date now rather
        # than at the scheduler's next run.
        from segments.tasks import sweep_segments

        sweep_segments.send()

        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        children = [
            subprocess.Popen([python, manage, "rundramatiq", "--processes", "1", "--threads", "4"]),
            subprocess.Popen([python, manage, "runscheduler"]),
            subprocess.Popen([python, manage, "runserver", f"{host}:{port}"]),
        ]
        self.stdout.write(self.style.SUCCESS(f"\nWorkbench is running at http://{host}:{port}/"))
        self.stdout.write(f"Engines: {self._engines_line()}. Press Ctrl+C to stop.\n")

        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
        if not stopping:
            raise CommandError(
                "The web server, the worker or the scheduler exited; Workbench stopped."
            )

    def _check_port_free(self, host: str, port: int) -> None:
        with socket.socket() as probe:
            if probe.connect_ex((host, port)) == 0:
                raise CommandError(f"Port {port} on {host} is in use; choose another with PORT=…")

    def _engines_line(self) -> str:
        parts = []
        for name, flag in (
            ("PostgreSQL", "WORKBENCH_EMBEDDED_POSTGRES"),
            ("Redis", "WORKBENCH_EMBEDDED_REDIS"),
        ):
            parts.append(f"{name} {'embedded under var/' if os.environ.get(flag) else 'external'}")
        return ", ".join(parts)

    def _first_run(self, *, load_demo: bool) -> None:
        if not Member.objects.exists():
            email = os.environ.get("WORKBENCH_ADMIN_EMAIL", "admin@example.com")
            member, password = member_create(email=email, name="Admin", role=Role.ADMIN)
            login_file = VAR_DIR / "first-login.txt"
            login_file.write_text(f"e-mail: {member.email}\npassword: {password}\n")
            login_file.chmod(0o600)
            self.stdout.write(self.style.SUCCESS("Created the first Admin member:"))
            self.stdout.write(f"    e-mail:   {member.email}\n    password: {password}")
            self.stdout.write(f"    (also in {login_file}; change it under Your profile)\n")
        elif (login_file := VAR_DIR / "first-login.txt").exists():
            self.stdout.write(f"First Admin login is in {login_file}.")
        if load_demo and not Customer.objects.exists():
            from events.demo_data import generate_events

            result = generate_customers(count=DEMO_CUSTOMERS, seed=1)
            self.stdout.write(f"Loaded {result.created:,} demo customers in {result.seconds:.1f}s.")
            # Over the last 180 days (about 30 for each of the customers who get some), so
            # timelines, the events catalog and event rules have something to show.
            events = generate_events(100_000, seed=1)
            self.stdout.write(f"Loaded {events.created:,} demo events in {events.seconds:.1f}s.")
            from segments.demo_data import create_demo_segments

            segments = create_demo_segments()
            self.stdout.write(f"Created {len(segments)} example segments (the worker builds them).")
