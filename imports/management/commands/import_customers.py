"""manage.py import_customers FILE [--mapping JSON] [--tag NAME ...] [--dry-run]

The same pipeline as the wizard and the API, run in this process with a progress bar (if a
worker picked the import up first, this follows its progress instead)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from activity.services import Actor
from imports.models import Import
from imports.pipeline import import_run
from imports.reader import FileRejected
from imports.services import (
    ImportInvalid,
    import_configure,
    import_discard,
    import_start,
    import_upload,
    mapping_from,
)


class Command(BaseCommand):
    help = "Import customers from a CSV file (add or update by user ID)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--mapping",
            help='JSON: {"Column header": "target"} or a list with one target per column. '
            "Targets: id, a profile field, custom.<name>, new.<type>, skip. Default: matched "
            "from the headers.",
        )
        parser.add_argument(
            "--tag", action="append", default=[], help="Tag every imported customer (repeatable)."
        )
        parser.add_argument(
            "--fill-empty",
            action="append",
            default=[],
            metavar="HEADER",
            help="Only fill this column's field where the customer has no value (repeatable).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count only; write nothing.")

    def handle(self, *args, **opts):
        path: Path = opts["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        actor = Actor.system("manage.py import_customers")
        try:
            with path.open("rb") as source:
                imp = import_upload(
                    chunks=iter(lambda: source.read(1 << 20), b""),
                    file_name=path.name,
                    actor=actor,
                )
        except FileRejected as exc:
            raise CommandError(exc.message) from None
        try:
            mapping = _mapping(imp, opts["mapping"])
            import_configure(
                imp=imp, mapping=mapping, tags=opts["tag"], fill_empty=opts["fill_empty"]
            )
            imp = import_start(imp=imp, actor=actor, dry_run=opts["dry_run"])
        except (ImportInvalid, ValueError) as exc:
            import_discard(imp)
            raise CommandError(getattr(exc, "message", str(exc))) from None
        self.stdout.write(f"Import {imp.pk}: {imp.file_name}, {len(imp.headers)} columns")
        for header, target in zip(imp.headers, imp.mapping, strict=True):
            self.stdout.write(f"  {header} → {target}")
        if import_run(imp.pk, progress=_bar) is None:
            while not (imp := Import.objects.get(pk=imp.pk)).finished:
                _bar(imp)
                time.sleep(0.5)
        imp.refresh_from_db()
        _bar(imp)
        sys.stderr.write("\n")
        self.stdout.write(
            f"{imp.get_status_display()}{' (dry run)' if imp.dry_run else ''}: "
            f"{imp.created:,} created, {imp.updated:,} updated, {imp.unchanged:,} unchanged, "
            f"{imp.failed:,} failed" + (f", {imp.tagged:,} tagged" if imp.tagged else "")
        )
        if imp.message:
            self.stdout.write(imp.message)
        if imp.failed:
            self.stdout.write(
                f"Error report: GET /api/v1/imports/{imp.pk}/errors, or the Imports page"
            )
        if imp.status == "failed":
            raise CommandError("The import failed.")


def _mapping(imp: Import, raw: str | None) -> list[str]:
    if not raw:
        return list(imp.mapping)
    try:
        value = json.loads(raw)
    except ValueError:
        raise ImportInvalid("--mapping must be JSON.") from None
    return mapping_from(imp, value)


def _bar(imp: Import) -> None:
    done = imp.progress
    filled = done * 30 // 100
    label = imp.get_phase_display()
    rows = imp.rows_read if imp.phase == "stage" else imp.processed
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (30 - filled)}] {done:3d}%  {label}: {rows:,} rows   "
    )
    sys.stderr.flush()
