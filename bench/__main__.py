"""``python -m bench`` lists the scenarios; ``python -m bench NAME [options]`` runs one."""

from __future__ import annotations

import argparse
import os
import sys

from bench.scenarios import load_all, row_count


def build_parser(scenarios) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run a Workbench benchmark scenario against the workbench_bench database.",
    )
    sub = parser.add_subparsers(dest="scenario", metavar="SCENARIO")
    for scenario in scenarios.values():
        scenario_parser = sub.add_parser(
            scenario.name, help=scenario.help, description=scenario.help
        )
        if scenario.default_size is not None:
            scenario_parser.add_argument(
                "--size",
                type=row_count,
                default=scenario.default_size,
                help=f"rows (default {scenario.default_size:,}); 1_000_000, 1M and 50k work too",
            )
        scenario_parser.add_argument(
            "--repeat",
            type=row_count,
            default=3,
            help="runs per figure; the median is reported (default 3)",
        )
        scenario.add_arguments(scenario_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    scenarios = load_all()
    parser = build_parser(scenarios)
    args = parser.parse_args(argv)
    if not args.scenario:
        print("usage: python -m bench SCENARIO [--size N] [--repeat R]  (--help for options)")
        print("\nscenarios:")
        width = max(map(len, scenarios), default=0)
        for name, scenario in sorted(scenarios.items()):
            print(f"  {name:<{width}}  {scenario.help}")
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    from bench.db import BENCH_DATABASE, setup_django

    main_db = setup_django()
    print(
        f"bench {args.scenario}: database {BENCH_DATABASE} (your {main_db} is not touched)",
        flush=True,
    )
    load_before = os.getloadavg()[0]
    scenarios[args.scenario].run(args)
    print(
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
        f" ({os.cpu_count()} CPUs; other work running meanwhile makes the figures noise)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
