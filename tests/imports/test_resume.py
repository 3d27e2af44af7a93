"""A real kill -9: ``manage.py import_customers`` runs in a subprocess against the test
database and is killed while staging or while merging; the import then resumes in this
process from its last checkpoint, with the same result as an uninterrupted run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection

from customers.models import Customer
from imports import pipeline
from imports.models import Import, ImportChange, ImportPhase, ImportStatus
from tests.imports.conftest import created_logged, customers

ROWS = 30_000
EXISTING = 3_000  # u00000 .. u02999 exist before the import
CHUNK = 2_000


def database_url() -> str:
    """The URL of the database this test runs on (a TCP host, or a socket folder as
    ``?host=``, which is how the embedded server is reached)."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    host = db.get("HOST") or ""
    name = quote(db["NAME"], safe="")
    if host.startswith("/"):
        return f"postgresql://{user}{password}@{port}/{name}?host={quote(host, safe='/')}"
    return f"postgresql://{user}{password}@{host or 'localhost'}{port}/{name}"


def big_file(path: Path) -> tuple[dict[str, dict[str, str]], set[str]]:
    """30,000 data rows: existing and new customers, a bad e-mail every 997 rows (the row
    fails) and user IDs repeated at the end (the last row wins). Returns the expected values
    per user ID and the existing customers the import changes."""
    lines = ["id,name,email,country"]
    expected = {
        f"u{i:05d}": {"name": f"Before {i}", "email": "", "country": "PT"} for i in range(EXISTING)
    }
    for n in range(ROWS - 100):
        i = n * 2  # every other ID is in the file
        user_id, email = f"u{i:05d}", f"c{i}@example.com"
        if n % 997 == 0:
            email = "not-an-address"
        lines.append(f"{user_id},Name {i},{email},DE")
        if email != "not-an-address":
            expected[user_id] = {"name": f"Name {i}", "email": email, "country": "DE"}
    for n in range(100):  # repeated IDs: the last row wins
        i = n * 2 + 2
        lines.append(f"u{i:05d},Again {i},again{i}@example.com,FR")
        expected[f"u{i:05d}"] = {
            "name": f"Again {i}",
            "email": f"again{i}@example.com",
            "country": "FR",
        }
    path.write_text("\n".join(lines) + "\n")
    changed = {u for u, v in expected.items() if int(u[1:]) < EXISTING and v["country"] != "PT"}
    return expected, changed


def start(path: Path, imports_dir: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        # Its job messages (run_import after the commit) go to this test run's own queues.
        "DRAMATIQ_NAMESPACE": django_settings.DRAMATIQ_BROKER["OPTIONS"]["namespace"],
        "IMPORTS_CHUNK_ROWS": str(CHUNK),
        # Killed while checking rows in its process pool, or merging on two connections.
        "IMPORTS_PARALLEL_FROM_ROWS": "1000",
        "IMPORTS_DIR": str(imports_dir),
    }
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "import_customers", str(path)],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group, so the kill below takes its staging pool's processes too
            # (as a stopped container or host would) instead of leaving them orphaned.
            start_new_session=True,
        )


def wait_for(proc: subprocess.Popen, log: Path, reached) -> Import:
    """Poll the import row until ``reached(imp)``; fail if the command ends first."""
    deadline = time.monotonic() + 300  # a hang guard, not a speed check
    while time.monotonic() < deadline:
        imp = Import.objects.filter(file_name="big.csv").first()
        if imp is not None and reached(imp):
            return imp
        if proc.poll() is not None:
            pytest.fail(f"the command ended first:\n{log.read_text()[-2000:]}")
        time.sleep(0.01)
    pytest.fail("the import never reached the point to kill it at")


def resume(import_id: int) -> Import:
    """Run the import in this process once the killed runner's session is gone (PostgreSQL
    frees its advisory lock when it notices the closed connection)."""
    for _ in range(600):
        result = pipeline.import_run(import_id)
        if result is not None:
            return result
        time.sleep(0.05)
    pytest.fail("the killed runner's lock was never released")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("phase", "reached", "server_crashed"),
    [
        (ImportPhase.STAGE, lambda imp: imp.rows_read > 0, False),
        (ImportPhase.APPLY, lambda imp: imp.applied_through > 0, False),
        # The database server crashed too: it empties the unlogged staging partition.
        (ImportPhase.APPLY, lambda imp: imp.applied_through > 0, True),
    ],
    ids=["staging", "merging", "merging-server-crashed"],
)
def test_an_import_killed_with_sigkill_resumes_from_its_checkpoint(
    tmp_path, settings, imports_dir, phase, reached, server_crashed
):
    settings.IMPORTS_CHUNK_ROWS = CHUNK
    Customer.objects.bulk_create(
        Customer(user_id=f"u{i:05d}", name=f"Before {i}", country="PT") for i in range(EXISTING)
    )
    path = tmp_path / "big.csv"
    expected, changed = big_file(path)
    log = tmp_path / "command.log"

    proc = start(path, imports_dir, log)
    try:
        imp = wait_for(proc, log, reached)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    imp.refresh_from_db()
    assert imp.status == ImportStatus.RUNNING  # killed half-way
    assert imp.staged_through > 0
    if phase == ImportPhase.STAGE:
        assert not ImportChange.objects.exists()
        assert Customer.objects.count() == EXISTING
    else:
        assert 0 < imp.applied_through < imp.staged_through
    killed_at = (imp.phase, imp.staged_through, imp.applied_through)
    partition = f"imports_stagedrow_{imp.pk}"
    if server_crashed:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {partition}")  # as crash recovery resets an unlogged one

    result = resume(imp.pk)

    assert result.status == ImportStatus.COMPLETED_WITH_ERRORS, (killed_at, result.message)
    imp.refresh_from_db()
    assert imp.total_rows == ROWS
    assert imp.created + imp.updated + imp.unchanged + imp.failed == ROWS
    failed_emails = len(range(0, ROWS - 100, 997))
    assert imp.failed == failed_emails + 100  # bad e-mails, and the rows a later row replaced
    new = len(expected) - EXISTING
    assert (imp.created, imp.updated) == (new, len(changed))
    got = {u: {k: c[k] for k in ("name", "email", "country")} for u, c in customers().items()}
    assert got == expected
    assert Customer.objects.count() == len(expected)  # each customer exactly once
    assert len(created_logged(imp)) == imp.created
    assert ImportChange.objects.filter(import_id=imp.pk, created=False).count() == imp.updated
    with connection.cursor() as cursor:  # kept for the error report, and now logged
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", [partition])
        assert cursor.fetchone() == ("p",)
