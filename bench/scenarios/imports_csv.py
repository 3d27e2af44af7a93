"""imports_csv: CSV imports of customers end to end, as `manage.py import_customers` runs them
(upload, analyse, stage with COPY, merge, finish) in a fresh process each time, so the figure
includes start-up and the process's peak memory is the worker's.

1. 1M rows × 20 columns of new customers (target ≤ 30 s);
2. the same file again, every row unchanged (target ≤ 15 s);
3. baseline: django-import-export in its bulk mode on the first 100k rows of the same file,
   measured in this run (target: at least 20× its rows/s);
4. with --wide: a 128 MB file with 99 columns (target ≤ 60 s).
Peak memory of every import process is printed (target ≤ 500 MB).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.db import quiet_server
from bench.scenarios import register, row_count
from bench.timing import Figure, fmt_seconds, ratio_line

STANDARD = [
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
]
CUSTOM = [
    "plan",
    "interests",
    "lifetime_value",
    "loyalty_points",
    "birthday",
    "signup_date",
    "newsletter",
    "churn_risk",
]
FIRST = ["Ada", "Ben", "Chen", "Dara", "Emma", "Hugo", "Lina", "Omar", "Rosa", "Yara"]
LAST = ["Costa", "Ito", "Meyer", "Novak", "Okafor", "Patel", "Santos", "Weber"]
PLACES = [
    ("Lisbon", "PT", "LI", "Europe/Lisbon", "+35191"),
    ("Berlin", "DE", "BE", "Europe/Berlin", "+4915"),
    ("Austin", "US", "TX", "America/Chicago", "+1512"),
    ("Paris", "FR", "IDF", "Europe/Paris", "+336"),
]
MEMORY_TARGET_MB = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline-size",
        type=row_count,
        default=100_000,
        help="rows for the django-import-export baseline (default 100k; 0 skips it)",
    )
    parser.add_argument("--wide", action="store_true", help="also the 128 MB, 99-column file")
    parser.add_argument("--seed", type=int, default=11)


def _phone(prefix: str, k: int) -> str:
    digits = {"+35191": 7, "+4915": 9, "+1512": 7, "+336": 8}[prefix]
    if prefix == "+1512":
        return f"+1512555{k % 10000:04d}"
    return f"{prefix}{k % 10**digits:0{digits}d}"


def write_file(path: Path, rows: int, seed: int) -> None:
    """Compact but realistic rows (~125 bytes): a million of them stay under the 128 MB upload
    limit, as the issue's file must. Some cells are empty, as in real exports."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", *STANDARD, *(f"custom.{c}" for c in CUSTOM)])
        for k in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            city, country, region, tz, phone = rng.choice(PLACES)
            writer.writerow(
                [
                    f"{k:07d}",
                    f"{first} {last}" if k % 3 else "",
                    first,
                    last,
                    f"{first[0]}{last}{k}@x.io".lower(),
                    _phone(phone, k) if k % 2 else "",
                    city,
                    country,
                    region if k % 4 == 0 else "",
                    tz if k % 5 == 0 else "",
                    f"x{k}",
                    "live" if k % 50 else "test",
                    rng.choice(["free", "pro"]),
                    rng.choice(["music", "sport", ""]),
                    rng.randint(0, 9999),
                    rng.randint(0, 5000),
                    f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.choice(["yes", "no"]),
                    f"{rng.random():.2f}",
                ]
            )


def write_wide(path: Path, target_bytes: int, seed: int) -> int:
    """99 columns (id, the 11 profile fields, 87 custom text fields) up to ``target_bytes``."""
    rng = random.Random(seed)
    rows = 0
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", *STANDARD, *(f"custom.wide_{i:02d}" for i in range(87))])
        while out.tell() < target_bytes - 4096:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            city, country, region, tz, phone = rng.choice(PLACES)
            writer.writerow(
                [
                    f"wide-{rows:07d}",
                    f"{first} {last}",
                    first,
                    last,
                    f"{first}.{last}.w{rows}@example.com".lower(),
                    _phone(phone, rows),
                    city,
                    country,
                    region,
                    tz,
                    f"ext-{rows}",
                    "live",
                    *(f"{rng.choice(words)}-{rng.randint(0, 99999)}" for _ in range(87)),
                ]
            )
            rows += 1
    return rows


def _fields(wide: bool) -> None:
    from customers.demo_data import _ensure_setup
    from customers.models import CustomField, CustomFieldType

    _ensure_setup()
    if wide:
        for i in range(87):
            CustomField.objects.get_or_create(
                name=f"wide_{i:02d}",
                defaults={"label": f"Wide {i:02d}", "type": CustomFieldType.TEXT},
            )


def _empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE customers_customer, tags_customertag, imports_import, imports_stagedrow,"
            " imports_importchange, imports_importcreated, segments_pendingcustomer"
            " RESTART IDENTITY CASCADE"
        )
    # A 1M-row import writes ~2 GB of WAL; its checkpoint ran during the next run (±2 s).
    quiet_server()


def run_command(path: Path, env: dict) -> tuple[float, float, str]:
    """(seconds, peak MB, last output line) of one `manage.py import_customers` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "import_customers", str(path), "--tag", "bench import"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"import_customers failed:\n{done.stdout}\n{done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far: a later, smaller child shows the same.
    summary = [
        line for line in done.stdout.splitlines() if line.startswith(("Completed", "Failed"))
    ]
    return elapsed, max(peak, before) / 1024, summary[-1] if summary else done.stdout[-200:]


def _child_env() -> dict:
    from bench.dataset import bench_database_url

    env = dict(os.environ)
    env["DATABASE_URL"] = bench_database_url()
    return env


def baseline_import_export(
    path: Path, rows: int, *, create_only: bool, custom: bool = False
) -> float:
    """django-import-export in bulk mode (no diffs, no per-row results), keyed by user ID as
    our import is (it looks up each row's customer), or ``create_only`` with
    ``force_init_instance``, its fastest set-up, which cannot update anyone. Returns seconds
    for ``rows`` rows into an empty table.

    Without ``custom`` it imports the id and the 11 profile columns only. With it, all 20
    columns, as our import does: the custom fields' cells typed with the same function our
    import uses (``coerce_custom_value``) into the customer's ``custom`` JSON, in the
    resource's ``import_instance``, the hook django-import-export offers for it. Neither
    variant validates the profile fields (``clean_model_instances`` stays off: a model
    ``full_clean`` a row would also query the user ID's uniqueness), which ours does."""
    import tablib
    from import_export import fields, resources

    from customers.custom_fields import coerce_custom_value, custom_field_specs
    from customers.models import Customer

    types = {name: spec.type for name, spec in custom_field_specs().items() if name in CUSTOM}

    class CustomerResource(resources.ModelResource):
        id = fields.Field(attribute="user_id", column_name="id")

        class Meta:
            model = Customer
            import_id_fields = ("id",)
            fields = ("id", *STANDARD)
            use_bulk = True
            force_init_instance = create_only
            batch_size = 1000
            skip_diff = True
            skip_unchanged = False
            report_skipped = False
            skip_html_diff = True

        def import_instance(self, instance, row, **kwargs):
            super().import_instance(instance, row, **kwargs)
            if custom:
                values = dict(instance.custom or {})
                for name, type_ in types.items():
                    if cell := row[f"custom.{name}"]:
                        values[name] = coerce_custom_value(type_, cell, lenient=True)
                instance.custom = values

    wanted = ("id", *STANDARD, *(f"custom.{c}" for c in CUSTOM)) if custom else ("id", *STANDARD)
    with path.open(encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        keep = [header.index(c) for c in wanted]
        data = tablib.Dataset(headers=[header[i] for i in keep])
        for k, row in enumerate(reader):
            if k >= rows:
                break
            data.append([row[i] for i in keep])
    started = time.perf_counter()
    result = CustomerResource().import_data(data, raise_errors=True)
    elapsed = time.perf_counter() - started
    assert not result.has_errors()
    return elapsed


@register(
    "imports_csv",
    "CSV import of 1M new customers end to end, the unchanged re-import, django-import-export"
    " bulk mode on 100k rows, peak memory (and --wide: 128 MB × 99 columns)",
    default_size=1_000_000,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    _fields(args.wide)
    env = _child_env()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        path = Path(tmp) / "customers.csv"
        started = time.perf_counter()
        write_file(path, args.size, args.seed)
        print(
            f"file: {args.size:,} rows × 20 columns, {path.stat().st_size / 2**20:,.1f} MB,"
            f" written in {fmt_seconds(time.perf_counter() - started)}",
            flush=True,
        )
        fresh, again, peaks = [], [], []
        for i in range(args.repeat):
            _empty()
            seconds, peak, summary = run_command(path, env)
            fresh.append(seconds)
            peaks.append(peak)
            print(
                f"  new customers run {i + 1}/{args.repeat}: {fmt_seconds(seconds)}, peak"
                f" {peak:,.0f} MB — {summary}",
                flush=True,
            )
            quiet_server()
            seconds, peak, summary = run_command(path, env)
            again.append(seconds)
            peaks.append(peak)
            print(
                f"  unchanged re-import run {i + 1}/{args.repeat}: {fmt_seconds(seconds)}, peak"
                f" {peak:,.0f} MB — {summary}",
                flush=True,
            )
        new_fig = Figure("import new customers (20 columns)", args.size, fresh)
        again_fig = Figure("re-import unchanged", args.size, again)
        print(new_fig.line() + f"  target ≤ 30 s: {'met' if new_fig.median <= 30 else 'MISSED'}")
        print(
            again_fig.line() + f"  target ≤ 15 s: {'met' if again_fig.median <= 15 else 'MISSED'}"
        )
        if args.baseline_size:
            for create_only, custom, label in (
                (False, True, "django-import-export bulk mode, keyed by user ID, all 20 columns"),
                (False, False, "django-import-export bulk mode, keyed by user ID, profile columns"),
                (True, False, "django-import-export bulk mode, create only (force_init_instance)"),
            ):
                base = []
                for i in range(args.repeat):
                    _empty()
                    base.append(
                        baseline_import_export(
                            path, args.baseline_size, create_only=create_only, custom=custom
                        )
                    )
                    print(
                        f"  {label} run {i + 1}/{args.repeat}: {fmt_seconds(base[-1])}", flush=True
                    )
                base_fig = Figure(label, args.baseline_size, base)
                print(base_fig.line())
                ratio = new_fig.rate / base_fig.rate
                # The target compares like with like: the same file, every column imported.
                verdict = "met" if ratio >= 20 else "MISSED"
                suffix = f"  target ≥ 20x: {verdict}" if custom else "  (for reference)"
                print(ratio_line(new_fig, base_fig) + suffix)
        if args.wide:
            wide = Path(tmp) / "wide.csv"
            rows = write_wide(wide, 128 * 2**20 - 1, args.seed)
            print(
                f"file: {rows:,} rows × 99 columns, {wide.stat().st_size / 2**20:,.1f} MB",
                flush=True,
            )
            times = []
            for i in range(args.repeat):
                _empty()
                seconds, peak, summary = run_command(wide, env)
                times.append(seconds)
                peaks.append(peak)
                print(
                    f"  wide run {i + 1}/{args.repeat}: {fmt_seconds(seconds)}, peak"
                    f" {peak:,.0f} MB — {summary}",
                    flush=True,
                )
            wide_fig = Figure("import 128 MB × 99 columns", rows, times)
            print(
                wide_fig.line() + f"  target ≤ 60 s: {'met' if wide_fig.median <= 60 else 'MISSED'}"
            )
        top = max(peaks)
        print(
            f"peak memory of an import process: {top:,.0f} MB  target ≤ {MEMORY_TARGET_MB} MB:"
            f" {'met' if top <= MEMORY_TARGET_MB else 'MISSED'}"
        )
    _empty()
