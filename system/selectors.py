from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection

from system.models import WorkerCheck


@dataclass
class EngineStatus:
    name: str
    ok: bool
    detail: str


def _redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def database_status() -> EngineStatus:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version')")
            version = cursor.fetchone()[0]
    except Exception as exc:  # any failure to answer means unhealthy
        return EngineStatus("PostgreSQL", False, type(exc).__name__)
    return EngineStatus("PostgreSQL", True, f"PostgreSQL {version}")


def redis_status() -> EngineStatus:
    try:
        client = _redis_client()
        client.ping()
        version = client.info("server").get("redis_version", "?")
    except (redis.RedisError, OSError) as exc:
        return EngineStatus("Redis", False, type(exc).__name__)
    return EngineStatus("Redis", True, f"Redis {version}")


def queue_depths() -> dict[str, int | None]:
    namespace = settings.DRAMATIQ_BROKER["OPTIONS"]["namespace"]
    depths: dict[str, int | None] = {}
    try:
        client = _redis_client()
        for queue in (settings.QUEUE_SHORT, settings.QUEUE_LONG):
            depths[queue] = client.llen(f"{namespace}:{queue}")
    except (redis.RedisError, OSError):
        depths = dict.fromkeys((settings.QUEUE_SHORT, settings.QUEUE_LONG))
    return depths


def recent_worker_checks(limit: int = 10) -> list[WorkerCheck]:
    return list(WorkerCheck.objects.select_related("requested_by")[:limit])
