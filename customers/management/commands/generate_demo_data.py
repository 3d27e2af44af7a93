from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from customers.demo_data import generate_customers


class Command(BaseCommand):
    help = (
        "Load seeded demo customers fast (COPY), with custom field values and tags (the demo"
        " custom fields and tags are created when missing). Re-running with the same seed adds"
        " nothing twice; another seed adds more."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers", type=int, default=5000, help="How many customers (default 5000)"
        )
        parser.add_argument("--seed", type=int, default=1, help="Random seed; same seed, same data")

    def handle(self, *args, customers: int, seed: int, **options):
        if customers < 0:
            raise CommandError("--customers must be zero or more")
        if seed < 0:
            raise CommandError("--seed must be zero or more")
        result = generate_customers(count=customers, seed=seed)
        line = (
            f"customers: {result.created:,} created of {result.requested:,} requested "
            f"(seed {seed}) in {result.seconds:.1f}s"
        )
        if result.created and result.seconds:
            line += f", {result.created / result.seconds:,.0f} rows/s"
        self.stdout.write(f"{line}; {result.tagged:,} tag assignments")
        if result.custom_fields_created:
            self.stdout.write(f"custom fields created: {', '.join(result.custom_fields_created)}")
        if result.tags_created:
            self.stdout.write(f"tags created: {', '.join(result.tags_created)}")
