from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from events.demo_data import generate_events


class Command(BaseCommand):
    help = (
        "Load seeded demo events fast (COPY) over the customers there are: built-in analytics"
        " and custom events, skewed per customer, over the last --days days. Re-running with"
        " the same seed adds nothing twice; another seed adds more."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--events", type=int, default=100_000, help="How many events (default 100000)"
        )
        parser.add_argument("--seed", type=int, default=1, help="Random seed; same seed, same data")
        parser.add_argument(
            "--days", type=int, default=180, help="Spread over this many days (default 180)"
        )

    def handle(self, *args, events: int, seed: int, days: int, **options):
        if events < 0:
            raise CommandError("--events must be zero or more")
        if seed < 0:
            raise CommandError("--seed must be zero or more")
        if days < 1:
            raise CommandError("--days must be at least 1")
        result = generate_events(events, seed=seed, days=days)
        line = (
            f"events: {result.created:,} created of {result.requested:,} requested "
            f"(seed {seed}) in {result.seconds:.1f}s"
        )
        if result.created and result.seconds:
            line += f", {result.created / result.seconds:,.0f} rows/s"
        self.stdout.write(
            f"{line}; {result.customers:,} customers with new events,"
            f" {result.customers_updated:,} had first/last seen moved"
        )
        if result.requested and not result.created and not result.customers:
            self.stdout.write("(nothing to add: no customers, or every event was there already)")
        if result.types_created:
            self.stdout.write(f"event types created: {', '.join(result.types_created)}")
