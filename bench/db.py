"""Point Django at the benchmark database: same server as the configured one, its own database."""

from __future__ import annotations

import os

BENCH_DATABASE = "workbench_bench"

# Keys dj-database-url / Django keep in OPTIONS that are not libpq connection parameters.
_DJANGO_ONLY_OPTIONS = {"pool", "server_side_binding", "isolation_level", "assume_role"}


def _server_params(database: dict) -> dict:
    """libpq connection parameters for ``database`` (a settings.DATABASES entry), minus the name."""
    params = {
        key: value
        for key, value in database.get("OPTIONS", {}).items()
        if key not in _DJANGO_ONLY_OPTIONS
    }
    for setting, param in (
        ("HOST", "host"),
        ("PORT", "port"),
        ("USER", "user"),
        ("PASSWORD", "password"),
    ):
        if database.get(setting):
            params[param] = str(database[setting])
    return params


def quiet_server() -> None:
    """Start a timed run from a quiet server: no checkpoint left over from the run before (a
    big load writes GBs of WAL, and the checkpoint it triggers otherwise runs during the next
    run). Needs superuser or pg_checkpoint; an external server's user may have neither."""
    import contextlib

    from django.db import DatabaseError, connection, transaction

    with connection.cursor() as cursor, contextlib.suppress(DatabaseError), transaction.atomic():
        cursor.execute("CHECKPOINT")


def ensure_database(name: str = BENCH_DATABASE) -> None:
    """Create database ``name`` next to the configured default database when it is missing."""
    import psycopg
    from django.conf import settings
    from psycopg import sql

    default = settings.DATABASES["default"]
    with psycopg.connect(dbname="postgres", autocommit=True, **_server_params(default)) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(name: str = BENCH_DATABASE) -> str:
    """Configure Django on the benchmark database, migrate it, and return the name of the
    developer's database it stands in for (for messages only)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "workbench.settings"
    import django
    from django.conf import settings
    from django.core.management import call_command

    default = settings.DATABASES["default"]  # imports settings: starts/attaches the engines
    main_name = default["NAME"]
    if main_name == name:
        raise SystemExit(f"refusing to benchmark: the configured database is already {name!r}")
    ensure_database(name)
    default["NAME"] = name  # before django.setup(): no connection has been opened yet
    django.setup()
    call_command("migrate", verbosity=0)
    return main_name
