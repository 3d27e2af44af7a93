"""Shared fixtures for the import tests: uploads go into the test's own folder, the job actors
send nothing (transactional tests really commit, and their on_commit callbacks would reach
the broker), and ``make_import`` runs the whole pipeline (upload → configure → start → run)
in the test's own process, as the worker would."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from activity.services import Actor
from customers.models import Customer
from imports import pipeline, services
from imports import tasks as import_tasks
from imports.models import Import, ImportChange, ImportCreated
from segments import tasks as segment_tasks
from tags.models import CustomerTag

SYSTEM = Actor.system("tests")

# Every standard field and the custom values: a customer's whole importable state.
CUSTOMER_FIELDS = (
    "user_id",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "city",
    "country",
    "region",
    "timezone",
    "external_id",
    "user_type",
    "custom",
)


@pytest.fixture(autouse=True)
def imports_dir(settings, tmp_path) -> Path:
    """Every test keeps its uploads in a folder of its own."""
    settings.IMPORTS_DIR = tmp_path / "imports"
    return settings.IMPORTS_DIR


@pytest.fixture(autouse=True)
def sent(monkeypatch) -> list[tuple[str, tuple]]:
    """The messages the import and segment actors would have sent: (actor name, args)."""
    messages: list[tuple[str, tuple]] = []
    for actor in (
        import_tasks.run_import,
        import_tasks.undo_import,
        import_tasks.sweep_imports,
        segment_tasks.build_segment,
        segment_tasks.evaluate_pending,
        segment_tasks.ensure_segment_indexes,
        segment_tasks.sweep_segments,
    ):

        def send(*args, _name=actor.actor_name, **kwargs):
            messages.append((_name, args))

        monkeypatch.setattr(actor, "send", send)
    return messages


def as_bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def upload(data: str | bytes, *, name: str = "people.csv", actor: Actor = SYSTEM) -> Import:
    """services.import_upload on the bytes (text is sent as UTF-8), in 1 KB chunks."""
    raw = as_bytes(data)
    chunks = (raw[i : i + 1024] for i in range(0, len(raw), 1024))
    return services.import_upload(chunks=chunks, file_name=name, actor=actor)


def mapping_for(imp: Import, mapping: Sequence[str] | Mapping[str, str] | None) -> list[str]:
    """A list as it is; {header: target} over the suggested mapping; None: the suggestion."""
    if mapping is None:
        return list(imp.mapping)
    if isinstance(mapping, Mapping):
        return [mapping.get(h, t) for h, t in zip(imp.headers, imp.mapping, strict=True)]
    return list(mapping)


def queue_import(
    data: str | bytes,
    mapping: Sequence[str] | Mapping[str, str] | None = None,
    *,
    tags: Sequence[str] = (),
    fill_empty: Sequence[str] = (),
    dry_run: bool = False,
    name: str = "people.csv",
    actor: Actor = SYSTEM,
) -> Import:
    """Upload, configure and start: the import as queued, not yet run."""
    imp = upload(data, name=name, actor=actor)
    services.import_configure(
        imp=imp, mapping=mapping_for(imp, mapping), tags=list(tags), fill_empty=list(fill_empty)
    )
    return services.import_start(imp=imp, actor=actor, dry_run=dry_run)


def make_import(
    data: str | bytes,
    mapping: Sequence[str] | Mapping[str, str] | None = None,
    tags: Sequence[str] = (),
    fill_empty: Sequence[str] = (),
    dry_run: bool = False,
    *,
    name: str = "people.csv",
    progress: Callable[[Import], None] | None = None,
) -> Import:
    """The whole import, run synchronously; returns the Import as stored at the end."""
    imp = queue_import(data, mapping, tags=tags, fill_empty=fill_empty, dry_run=dry_run, name=name)
    result = pipeline.import_run(imp.pk, progress=progress)
    assert result is not None, "the import did not run"
    imp.refresh_from_db()
    return imp


def rerun(imp: Import) -> Import:
    """A finished dry run started again for real (as the wizard's "Import" button does)."""
    services.import_start(imp=imp, actor=SYSTEM, dry_run=False)
    assert pipeline.import_run(imp.pk) is not None
    imp.refresh_from_db()
    return imp


def csv_text(header: str, *rows: str, eol: str = "\n") -> str:
    return eol.join([header, *rows]) + eol


# --- reading the database back ---------------------------------------------------------------


def customers() -> dict[str, dict[str, Any]]:
    """Every customer by user ID, with every importable field."""
    return {row["user_id"]: row for row in Customer.objects.values(*CUSTOMER_FIELDS).order_by("id")}


def customer(user_id: str) -> Customer:
    return Customer.objects.get(user_id=user_id)


def counts(imp: Import) -> dict[str, int]:
    imp.refresh_from_db()
    return {
        "created": imp.created,
        "updated": imp.updated,
        "unchanged": imp.unchanged,
        "failed": imp.failed,
        "tagged": imp.tagged,
        "total": imp.total_rows,
    }


def changes(imp: Import) -> dict[str, tuple[bool, Any]]:
    """The import's undo log: user ID → (created, changes)."""
    by_id = dict(Customer.objects.values_list("id", "user_id"))
    logged = {
        by_id.get(c.customer_id, f"#{c.customer_id}"): (c.created, c.changes)
        for c in ImportChange.objects.filter(import_id=imp.pk)
    }
    for pk in created_logged(imp):
        logged[by_id.get(pk, f"#{pk}")] = (True, None)
    return logged


def created_logged(imp: Import | None = None) -> list[int]:
    """The ids of the customers the import (or every import) logged as created."""
    rows = ImportCreated.objects.all()
    if imp is not None:
        rows = rows.filter(import_id=imp.pk)
    return [pk for row in rows for pk in row.ids]


def undo_log_size(imp: Import) -> int:
    """Customers left on the import's undo log."""
    return ImportChange.objects.filter(import_id=imp.pk).count() + len(created_logged(imp))


def tag_names(user_id: str) -> set[str]:
    return set(
        CustomerTag.objects.filter(customer__user_id=user_id).values_list("tag__name", flat=True)
    )


def files_in(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.exists() else []


def table_count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - a literal in the tests
        return cursor.fetchone()[0]
