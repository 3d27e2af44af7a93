"""segments_incremental: re-evaluating 1,000 changed customers against 50 segments (profile,
custom, analytics, event, tag and "in segment" rules, built first) at a million customers and
20M events, with customers_evaluate; baseline the naive ORM loop a Django developer would
write (per customer, per segment, one filtered exists() and the membership row), measured on
a sample and scaled."""

from __future__ import annotations

import argparse
import itertools
import time

from bench.dataset import (
    DEMO_EVENTS,
    active_customers,
    add_events_dataset_arguments,
    finish,
    first_new_event_id,
    last_transition_id,
    remove_added_events,
    remove_bench_segments,
    segment_mix_create,
    segments_setup,
)
from bench.scenarios import register, row_count
from bench.timing import Figure, StatementProfile, fmt_seconds, measure

TARGET_MS = 200
PLANS = ["free", "basic", "pro", "enterprise"]
COUNTRIES = ["DE", "FR", "US", "GB", "JP", "BR"]
CITIES = {"DE": "Berlin", "FR": "Paris", "US": "Austin", "GB": "London", "JP": "Tokyo"}
CITIES["BR"] = "São Paulo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_events_dataset_arguments(parser)
    parser.add_argument(
        "--changed",
        type=row_count,
        default=1000,
        help="customers changed and re-evaluated a run (default 1,000)",
    )
    parser.add_argument(
        "--baseline-customers",
        type=row_count,
        default=50,
        help="customers for the naive ORM loop, scaled to --changed (default 50; 0 skips it)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more untimed run of ChangeKind.ALL, printing the time of each statement",
    )


def change(ids: list[int], run: int) -> None:
    """Untimed: a profile change as an import or the API makes it, different each run: a new
    plan, loyalty points, country and city, so plan, points and country segments see
    customers enter and exit."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE customers_customer c SET
                custom = c.custom || jsonb_build_object(
                    'plan', (%(plans)s::text[])[1 + (c.id + %(run)s) %% 4],
                    'loyalty_points', (c.id * 7 + %(run)s * 31) %% 200),
                country = (%(countries)s::text[])[1 + (c.id + %(run)s) %% 6],
                city = (%(cities)s::text[])[1 + (c.id + %(run)s) %% 6],
                updated_at = now()
            WHERE c.id = ANY(%(ids)s)
            """,
            {
                "ids": ids,
                "run": run,
                "plans": PLANS,
                "countries": COUNTRIES,
                "cities": [CITIES[c] for c in COUNTRIES],
            },
        )


def saved_profiles(ids: list[int]) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            # custom as its JSON text, given back as is by restore_profiles.
            "SELECT id, custom::text, country, city, updated_at FROM customers_customer"
            " WHERE id = ANY(%s)",
            [ids],
        )
        return cursor.fetchall()


def restore_profiles(rows: list[tuple]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer c SET custom = r.custom, country = r.country,"
            " city = r.city, updated_at = r.updated_at"
            " FROM unnest(%s::bigint[], %s::jsonb[], %s::text[], %s::text[], %s::timestamptz[])"
            " AS r(id, custom, country, city, updated_at) WHERE c.id = r.id",
            [
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [r[3] for r in rows],
                [r[4] for r in rows],
            ],
        )


def check_membership(segments: list, ids: list[int], who: str) -> None:
    """Untimed: for each segment, the stored membership of these customers is what the
    compiled rules say now."""
    from django.db import connection

    from segments.query import matching_ids

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT segment_id, customer_id FROM segments_membership"
            " WHERE segment_id = ANY(%s) AND customer_id = ANY(%s)",
            [[s.pk for s in segments], ids],
        )
        stored: dict[int, set[int]] = {}
        for segment_id, customer_id in cursor.fetchall():
            stored.setdefault(segment_id, set()).add(customer_id)
    for segment in segments:
        want = matching_ids(segment.rules, segment.timezone, ids)
        if want != stored.get(segment.pk, set()):
            raise SystemExit(
                f"{who}: segment {segment.name!r} stores"
                f" {len(stored.get(segment.pk, set())):,} of these customers, the rules match"
                f" {len(want):,}"
            )


def predefined_q(name: str):
    """The hand-written Q of the two predefined segments (an app-launch in 30 days or not)."""
    from datetime import timedelta

    from django.db.models import Exists, OuterRef, Q

    from events.models import Event

    def launched(now):
        return Exists(
            Event.objects.filter(
                customer_id=OuterRef("pk"),
                event_type__name="app-launch",
                occurred_at__gte=now - timedelta(days=30),
            )
        )

    if name == "Active Mobile Users":
        return lambda now, _: Q(launched(now))
    return lambda now, _: ~Q(launched(now))


def naive_evaluate(ids: list[int], plan: list[tuple], refs: dict[str, int]) -> int:
    """The baseline: per customer, per segment (in dependency order), ask the ORM whether the
    customer matches the hand-written Q and whether it is a member, then add or remove the
    membership row (no transitions, no timeline events). Returns the changes made."""
    from django.utils import timezone

    from customers.models import Customer
    from segments.models import Membership

    now = timezone.now()
    changes = 0
    for pk in ids:
        for segment, q in plan:
            matches = Customer.objects.filter(pk=pk).filter(q(now, refs)).exists()
            member = Membership.objects.filter(segment_id=segment.pk, customer_id=pk)
            if matches and not member.exists():
                Membership.objects.create(segment_id=segment.pk, customer_id=pk)
                changes += 1
            elif not matches and member.exists():
                member.delete()
                changes += 1
    return changes


@register(
    "segments_incremental",
    "customers_evaluate: 1,000 changed customers against 50 built segments; baseline a naive"
    " per-customer, per-segment ORM loop on a sample, scaled",
    default_size=DEMO_EVENTS,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from django.db import connection

    from segments.fields import ChangeKind
    from segments.incremental import customers_evaluate

    segments_setup(args, analyze=False)
    after_transition = last_transition_id()
    first_new_id = first_new_event_id()

    user_ids = active_customers(args.changed, args.seed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM customers_customer WHERE user_id = ANY(%s)", [user_ids])
        ids = sorted(row[0] for row in cursor.fetchall())
    originals = saved_profiles(ids)
    runs = itertools.count(1)
    outcomes: list[tuple[int, int]] = []
    lines: list[str] = []
    try:
        plan, refs = segment_mix_create()
        segments = [segment for _, segment in plan]
        print(
            f"customers: {len(ids):,} drawn by their events; {len(segments)} segments",
            flush=True,
        )

        def evaluate(kinds: int):
            def call():
                return customers_evaluate(ids, kinds)

            return call

        def tally(changed) -> None:
            entered = sum(len(c.entered) for c in changed.values())
            exited = sum(len(c.exited) for c in changed.values())
            outcomes.append((entered, exited))

        figures: list[tuple[Figure, str]] = []
        for label, kinds in (
            ("all kinds (ChangeKind.ALL)", ChangeKind.ALL),
            ("a profile change (ChangeKind.PROFILE)", ChangeKind.PROFILE),
        ):
            outcomes.clear()
            figure = measure(
                f"customers_evaluate({len(ids):,} customers, {label})",
                len(ids),
                evaluate(kinds),
                repeat=args.repeat,
                setup=lambda: change(ids, next(runs)),
                check=tally,
            )
            # Segments this kind of change leaves alone may have aged since they were filled.
            evaluated = [s for s in segments if s.change_kinds & (kinds | ChangeKind.MEMBERSHIP)]
            check_membership(evaluated, ids, "customers_evaluate")
            entered = [e for e, _ in outcomes]
            exited = [x for _, x in outcomes]
            figures.append(
                (
                    figure,
                    f"    (entered {min(entered):,}..{max(entered):,}, exited"
                    f" {min(exited):,}..{max(exited):,} a run; memberships checked against the"
                    " rules)",
                )
            )

        if args.profile:
            change(ids, next(runs))
            profile = StatementProfile()
            changed = profile.run(evaluate(ChangeKind.ALL))
            tally(changed)
            profile.show("one run of ChangeKind.ALL")

        # The evaluation alone: the same customers again, nothing to write.
        def nothing_changed(changed) -> None:
            if changed:
                raise SystemExit(f"customers_evaluate again: {len(changed)} segments changed")

        unchanged = measure(
            f"customers_evaluate({len(ids):,} customers, ChangeKind.ALL), nothing changed",
            len(ids),
            evaluate(ChangeKind.ALL),
            repeat=args.repeat,
            setup=evaluate(ChangeKind.ALL),  # untimed: whatever aged out since, written now
            check=nothing_changed,
        )
        figures.append((unchanged, "    (every segment evaluated, no membership to write)"))

        baseline = None
        if args.baseline_customers:
            sample = ids[: args.baseline_customers]
            qs = {}
            for item, segment in plan:
                qs[segment.pk] = item.q if item is not None else predefined_q(segment.name)
            naive_plan = [(segment, qs[segment.pk]) for segment in segments]
            baseline = measure(
                f"baseline naive ORM loop, {len(sample):,} customers x {len(segments)} segments",
                len(sample),
                lambda: naive_evaluate(sample, naive_plan, refs),
                repeat=args.repeat,
                setup=lambda: change(sample, next(runs)),
            )
            check_membership(segments, sample, "naive ORM loop")

        for figure, note in figures:
            met = "met" if figure.median * 1000 <= TARGET_MS else "MISSED"
            lines += [f"{figure.line()}  target <= {TARGET_MS} ms: {met}", note]
        if baseline is not None:
            scaled = baseline.median * len(ids) / baseline.rows
            headline = figures[0][0]
            lines += [
                baseline.line(),
                f"    scaled to {len(ids):,} customers: {fmt_seconds(scaled)}"
                f" ({len(ids) * len(segments) * 2:,} queries and more)",
                f"ratio {scaled / headline.median:,.0f}x  (naive ORM loop scaled to"
                f" {len(ids):,} / customers_evaluate, all kinds)",
            ]
    finally:
        started = time.perf_counter()
        restore_profiles(originals)
        if saved_profiles(ids) != originals:
            raise SystemExit("cleanup: the customers' profiles were not restored")
        print(
            f"cleanup: restored {len(originals):,} customers' profiles in"
            f" {fmt_seconds(time.perf_counter() - started)}",
            flush=True,
        )
        remove_bench_segments(after_transition)
        remove_added_events(first_new_id)
    finish(args)

    print()
    for line in lines:
        print(line)
