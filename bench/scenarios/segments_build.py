"""segments_build: the full build of a newly created segment at a million customers and 20M
events, every entering customer getting a membership row, a transition and a segment-entered
event; then a rebuild with nothing to change. Baseline: a hand-written INSERT … SELECT of the
same members into segments_membership (no transitions, no events)."""

from __future__ import annotations

import argparse
import itertools

from bench.dataset import (
    DEMO_EVENTS,
    add_events_dataset_arguments,
    finish,
    first_new_event_id,
    remove_added_events,
    remove_bench_segments,
    segment_new,
    segments_analyze,
    segments_setup,
)
from bench.scenarios import register
from bench.timing import StatementProfile, measure, ratio_line

TARGET_SECONDS = 3

EVENT_RULES = {
    "type": "group",
    "match": "all",
    "children": [
        {
            "type": "event",
            "name": "purchase",
            "count": {"operator": "gte", "value": 3},
            "time": {"operator": "within_last", "value": 30, "unit": "days"},
        }
    ],
}
HAND_EVENT = """
INSERT INTO segments_membership (segment_id, customer_id, entered_at)
SELECT %(segment)s, customer_id, now() FROM events_event
WHERE event_type_id = %(type)s AND occurred_at >= now() - interval '30 days'
GROUP BY customer_id HAVING count(*) >= 3
"""
ATTRIBUTE_RULES = {
    "type": "group",
    "match": "all",
    "children": [
        {"type": "attribute", "field": "country", "operator": "is", "value": "DE"},
        {
            "type": "attribute",
            "field": "last_seen",
            "operator": "was_within",
            "value": 90,
            "unit": "days",
        },
    ],
}
HAND_ATTRIBUTE = """
INSERT INTO segments_membership (segment_id, customer_id, entered_at)
SELECT %(segment)s, id, now() FROM customers_customer
WHERE lower(NULLIF(country, '')) = 'de' AND last_seen >= %(since)s AND last_seen < %(until)s
"""
CASES = {
    "event": ("purchase >= 3 in the last 30 days", EVENT_RULES, HAND_EVENT),
    "attribute": ("country DE, seen within 90 days", ATTRIBUTE_RULES, HAND_ATTRIBUTE),
}


def _cases(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - set(CASES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown: {', '.join(sorted(unknown))}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_events_dataset_arguments(parser)
    parser.add_argument(
        "--segments",
        type=_cases,
        default=list(CASES),
        help="which segments to build, comma-separated (default event,attribute)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more untimed build of each on one connection, printing each statement's time",
    )


class Trial:
    """The segment of the current run: a new one before each (untimed), the previous one and
    everything its build wrote deleted first."""

    def __init__(self, label: str, rules: dict) -> None:
        self.label, self.rules = label, rules
        self.names = itertools.count(1)
        self.segment = None
        self.first_event = 0

    def fresh(self) -> None:
        self.discard()
        self.first_event = first_new_event_id()
        self.segment = segment_new(f"build {self.label} {next(self.names)}", self.rules)

    def discard(self) -> None:
        from django.db import connection

        if self.segment is None:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM segments_transition WHERE segment_id = %s", [self.segment.pk]
            )
            cursor.execute(
                "DELETE FROM segments_membership WHERE segment_id = %s", [self.segment.pk]
            )
            cursor.execute("DELETE FROM events_event WHERE id >= %s", [self.first_event])
        self.segment.delete()
        self.segment = None

    def written(self) -> tuple[int, int, int]:
        """Memberships, transitions and segment-entered events the segment has now."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM segments_membership WHERE segment_id = %(s)s),"
                " (SELECT count(*) FROM segments_transition WHERE segment_id = %(s)s"
                "   AND kind = 'entered'),"
                " (SELECT count(*) FROM events_event e JOIN events_eventtype t"
                "   ON t.id = e.event_type_id WHERE e.id >= %(first)s"
                "   AND t.name = 'segment-entered'"
                "   AND (e.properties->>'segment_id')::bigint = %(s)s)",
                {"s": self.segment.pk, "first": self.first_event},
            )
            return cursor.fetchone()


@register(
    "segments_build",
    "full build of a new segment with transitions and segment-entered events, and a rebuild"
    " with no changes; baseline a hand-written INSERT … SELECT into segments_membership",
    default_size=DEMO_EVENTS,
    add_arguments=add_arguments,
)
def run(args: argparse.Namespace) -> None:
    from datetime import UTC, datetime, timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from events.models import EventType
    from segments.compiler import compile_rules
    from segments.membership import segment_build
    from segments.query import compile_context

    segments_setup(args)
    first_new_id = first_new_event_id()

    now = timezone.now()
    today = now.astimezone(UTC).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    hand_params = {
        "type": EventType.objects.get(name="purchase").pk,
        "since": midnight - timedelta(days=90),
        "until": midnight + timedelta(days=1),
    }
    lines: list[str] = []
    try:
        for key in args.segments:
            label, rules, hand = CASES[key]
            trial = Trial(label, rules)
            trial.fresh()
            tree = trial.segment.rules
            where = compile_rules(tree, compile_context(tree, "UTC"))
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT count(*) FROM customers_customer c WHERE {where.sql}",  # noqa: S608
                    where.params,
                )
                expected = cursor.fetchone()[0]
            print(f"{label}: {expected:,} customers", flush=True)

            def check(result, trial=trial, expected=expected) -> None:
                entered = len(result.changes.entered)
                # Purchases cross the 30-day edge while the scenario runs: allow a few.
                if result.status != "built" or abs(entered - expected) > expected * 0.005:
                    raise SystemExit(f"build: {result.status}, {entered:,} entered of {expected:,}")
                written = trial.written()
                if written != (entered,) * 3:
                    raise SystemExit(
                        f"build: {entered:,} entered but (memberships, transitions, events)"
                        f" = {written}"
                    )

            build = measure(
                f"segment_build, new segment '{label}'",
                expected,
                lambda trial=trial: segment_build(trial.segment.pk),
                repeat=args.repeat,
                setup=trial.fresh,
                check=check,
            )

            if args.profile:
                trial.fresh()
                profile = StatementProfile()
                # On one connection: the profile sees this thread's statements only.
                check(profile.run(lambda trial=trial: segment_build(trial.segment.pk, workers=1)))
                profile.show(f"one build of '{label}' on one connection")

            def unchanged(result) -> None:
                if result.status != "built" or result.changes:
                    raise SystemExit(f"rebuild: {result.status}, {result.changes}")

            # The statistics the scenario started with know nothing of the new segment (as
            # in production until autovacuum's next ANALYZE of the whole membership table).
            rebuild = measure(
                f"segment_build again, no changes '{label}'",
                expected,
                lambda trial=trial: segment_build(trial.segment.pk),
                repeat=args.repeat,
                check=unchanged,
            )
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE segments_membership")
            analysed = measure(
                f"segment_build again, no changes, after ANALYZE segments_membership '{label}'",
                expected,
                lambda trial=trial: segment_build(trial.segment.pk),
                repeat=args.repeat,
                check=unchanged,
            )
            trial.discard()
            segments_analyze()  # as the next case's build meets them: without that segment

            baseline_segment = segment_new(f"build baseline {key}", rules)

            def empty(segment=baseline_segment) -> None:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "DELETE FROM segments_membership WHERE segment_id = %s", [segment.pk]
                    )

            def insert(hand=hand, segment=baseline_segment) -> int:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(hand, {**hand_params, "segment": segment.pk})
                    return cursor.rowcount

            def same(inserted, expected=expected) -> None:
                if abs(inserted - expected) > expected * 0.005:
                    raise SystemExit(f"baseline inserted {inserted:,}, expected {expected:,}")

            baseline = measure(
                "baseline hand-written INSERT … SELECT into segments_membership",
                expected,
                insert,
                repeat=args.repeat,
                setup=empty,
                check=same,
            )
            empty()
            met = "met" if build.median <= TARGET_SECONDS else "MISSED"
            lines += [
                f"{label} ({expected:,} members):",
                f"  {build.line()}  target <= {TARGET_SECONDS} s: {met}",
                f"  {rebuild.line()}",
                f"  {analysed.line()}",
                f"  {baseline.line()}",
                f"  {ratio_line(build, baseline)}",
            ]
    finally:
        remove_bench_segments()
        remove_added_events(first_new_id)
    finish(args)

    print()
    for line in lines:
        print(line)
    print(
        "(every build checked: a membership row, an entered transition and a segment-entered"
        " event for each member)"
    )
