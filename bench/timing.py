"""Timing and plain-text reporting shared by the scenarios."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Figure:
    """Repeated timings of one operation over ``rows`` rows."""

    label: str
    rows: int
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        """Rows per second at the median time."""
        return self.rows / self.median if self.median else float("inf")

    def line(self) -> str:
        low, high = min(self.seconds), max(self.seconds)
        return (
            f"{self.label}  size={self.rows:,}  median {fmt_seconds(self.median)}"
            f"  {self.rate:,.0f} rows/s"
            f"  (min {fmt_seconds(low)} .. max {fmt_seconds(high)}, {len(self.seconds)} runs)"
        )


def fmt_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def measure(
    label: str,
    rows: int,
    run: Callable[[], object],
    *,
    repeat: int,
    setup: Callable[[], object] | None = None,
    check: Callable[[object], None] | None = None,
    echo: bool = True,
) -> Figure:
    """Time ``run`` ``repeat`` times; ``setup`` runs untimed before each repeat and ``check``
    (untimed) gets each result, to catch a benchmark that silently did less work."""
    seconds = []
    for i in range(repeat):
        if setup is not None:
            setup()
        started = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - started
        if check is not None:
            check(result)
        seconds.append(elapsed)
        if echo:
            print(f"  {label} run {i + 1}/{repeat}: {fmt_seconds(elapsed)}", flush=True)
    return Figure(label, rows, seconds)


def ratio_line(figure: Figure, baseline: Figure) -> str:
    return (
        f"ratio {figure.rate / baseline.rate:,.1f}x"
        f"  ({figure.label} rows/s / {baseline.label} rows/s)"
    )
