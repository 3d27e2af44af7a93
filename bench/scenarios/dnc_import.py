"""dnc_import: a Do Not Contact file import of a million e-mail addresses from a zip of about
15 MB (the upload limit), end to end as the worker runs it: store the upload, check and unzip
it, analyse (read, clean every row, COPY into staging, count duplicates and entries already
present), then add the entries in checkpointed chunks. Target: under 30 s.

The baseline is the same addresses through the ``entries_add`` service in 1,000-entry batches
(each row cleaned with ``entry_clean``, one INSERT ... ON CONFLICT per batch), over
``--baseline-size`` rows; the ratio compares rows per second.

The list is emptied before each run and at the end (dnc_check empties it too)."""

from __future__ import annotations

import argparse
import io
import random
import string
import time
import zipfile

from bench.dataset import bench_member
from bench.scenarios import register, row_count
from bench.timing import fmt_seconds, measure, ratio_line

TARGET_SECONDS = 30
DOMAINS = [f"{w}{i}.example" for w in ("mail", "post", "inbox", "corp") for i in range(250)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline-size",
        type=row_count,
        default=200_000,
        help="rows added through entries_add for the baseline (default 200k)",
    )
    parser.add_argument("--seed", type=int, default=11, help="address generator seed")


def _addresses(size: int, seed: int) -> list[str]:
    """Distinct, varied addresses (random local parts compress like real ones do)."""
    rng = random.Random(seed)
    letters = string.ascii_lowercase + string.digits + "_-"
    out = []
    for i in range(size):
        local = "".join(rng.choices(letters, k=rng.randint(6, 12)))
        out.append(f"{local}{i}@{rng.choice(DOMAINS)}")
    return out


def _zip(addresses: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("unsubscribed.txt", "\n".join(addresses) + "\n")
    return buffer.getvalue()


def _empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE donotcontact_entry RESTART IDENTITY")
        cursor.execute("TRUNCATE donotcontact_entryimportrow")
        cursor.execute("DELETE FROM donotcontact_entryimport")


@register(
    "dnc_import",
    "Do Not Contact import of 1M e-mail addresses from a ~15 MB zip, end to end (< 30 s)",
    default_size=1_000_000,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    import tempfile
    from pathlib import Path

    from django.conf import settings

    from activity.services import Actor
    from donotcontact import importing
    from donotcontact.contacts import entry_clean
    from donotcontact.models import Entry, ImportStatus, Source
    from donotcontact.services import entries_add

    size = args.size
    started = time.perf_counter()
    addresses = _addresses(size, args.seed)
    raw = _zip(addresses)
    print(
        f"  generated {size:,} addresses, zip {len(raw) / 1024 / 1024:.1f} MB"
        f" (limit {settings.DNC_IMPORT_MAX_BYTES / 1024 / 1024:.0f} MB)"
        f" in {fmt_seconds(time.perf_counter() - started)}",
        flush=True,
    )
    if len(raw) > settings.DNC_IMPORT_MAX_BYTES:
        raise SystemExit("the generated zip is over the upload limit; use a smaller --size")

    member = bench_member()
    actor = Actor("ui", member=member)
    settings.DNC_IMPORTS_DIR = Path(tempfile.mkdtemp(prefix="bench-dnc-"))
    phases: dict[str, list[float]] = {"upload": [], "analyze": [], "import": []}

    def whole_import():
        t0 = time.perf_counter()
        chunks = (raw[i : i + 65536] for i in range(0, len(raw), 65536))
        imp = importing.entry_import_upload(chunks=chunks, file_name="bench.zip", actor=actor)
        t1 = time.perf_counter()
        # As the worker does: the analysis and the import run outside the request.
        imp.status = ImportStatus.ANALYZING
        imp.save(update_fields=["status"])
        importing.import_analyze(imp.pk)
        t2 = time.perf_counter()
        imp.refresh_from_db()
        importing.entry_import_start(imp=imp, accounts=[""], actor=actor)
        imp = importing.import_run(imp.pk)
        t3 = time.perf_counter()
        phases["upload"].append(t1 - t0)
        phases["analyze"].append(t2 - t1)
        phases["import"].append(t3 - t2)
        return imp

    def check(imp) -> None:
        assert imp.status == ImportStatus.COMPLETED, imp.message
        assert imp.added == size, (imp.added, size)
        assert Entry.objects.count() == size

    try:
        figure = measure(
            "import (zip → entries)", size, whole_import, repeat=args.repeat, setup=_empty,
            check=check,
        )  # fmt: skip
        for name, seconds in phases.items():
            print(f"    {name}: median {fmt_seconds(sorted(seconds)[len(seconds) // 2])}")

        # Re-importing the same file: everything already present, nothing added.
        imp_again = None

        def reimport():
            nonlocal imp_again
            imp_again = whole_import()
            return imp_again

        again = measure("re-import (all present)", size, reimport, repeat=1)
        assert imp_again is not None and imp_again.added == 0 and imp_again.present == size

        base_rows = addresses[: args.baseline_size]

        def baseline():
            for i in range(0, len(base_rows), 1000):
                batch = [entry_clean(a) for a in base_rows[i : i + 1000]]
                entries_add(entries=batch, source=Source.IMPORT, actor=actor)

        base = measure(
            "baseline entries_add x1000", len(base_rows), baseline, repeat=1, setup=_empty
        )
    finally:
        _empty()
        import shutil

        shutil.rmtree(settings.DNC_IMPORTS_DIR, ignore_errors=True)

    print()
    for fig in (figure, again, base):
        print(fig.line())
    met = "met" if figure.median < TARGET_SECONDS else "MISSED"
    print(f"target < {TARGET_SECONDS} s for {size:,} rows: {met}")
    print(ratio_line(figure, base))
