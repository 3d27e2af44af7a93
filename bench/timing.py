"""Timing and plain-text reporting shared by the scenarios."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
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


@dataclass
class Latency:
    """Per-call timings of one operation (a lookup, a request), against a table of ``size``
    rows."""

    label: str
    seconds: list[float]
    size: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    def line(self, target_ms: float | None = None) -> str:
        size = f"  size={self.size:,}" if self.size is not None else ""
        text = (
            f"{self.label}{size}  median {fmt_ms(self.median)}"
            f"  (p95 {fmt_ms(self.percentile(0.95))}, max {fmt_ms(max(self.seconds))},"
            f" {len(self.seconds):,} calls)"
        )
        if target_ms is not None:
            met = self.median * 1000 < target_ms
            text += f"  target < {target_ms:g} ms: {'met' if met else 'MISSED'}"
        return text


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def time_each[T](
    label: str,
    keys: Iterable[T],
    call: Callable[[T], object],
    *,
    size: int | None = None,
    warmup: int = 0,
    check: Callable[[T, object], None] | None = None,
) -> Latency:
    """Time ``call(key)`` once per key; the first ``warmup`` keys are called untimed (caches,
    connections, lazy imports). ``check(key, result)`` runs untimed after each call."""
    seconds = []
    for n, key in enumerate(keys):
        started = time.perf_counter()
        result = call(key)
        elapsed = time.perf_counter() - started
        if check is not None:
            check(key, result)
        if n >= warmup:
            seconds.append(elapsed)
    return Latency(label, seconds, size)


def rate_line(figure: Figure, unit: str, target: float | None = None) -> str:
    """``figure``'s line with its rate in ``unit``/s (customers, requests) and the target."""
    text = figure.line().replace(" rows/s", f" {unit}/s")
    if target is not None:
        text += (
            f"  target >= {target:,.0f} {unit}/s: {'met' if figure.rate >= target else 'MISSED'}"
        )
    return text


class StatementProfile:
    """Where a call's database time goes: each statement's time by its first words, and the
    commits (deferred constraint checks run there), on this thread's connection only. Untimed
    runs only; the wrapper costs microseconds a statement."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}

    def _add(self, label: str, seconds: float) -> None:
        self.totals.setdefault(label, []).append(seconds)

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            words = " ".join(str(sql).split())
            self._add(words[:70], time.perf_counter() - started)

    def run(self, call: Callable[[], object]) -> object:
        from django.db import connection

        original = connection._commit

        def timed_commit():
            started = time.perf_counter()
            try:
                return original()
            finally:
                self._add("COMMIT", time.perf_counter() - started)

        connection._commit = timed_commit
        try:
            with connection.execute_wrapper(self):
                return call()
        finally:
            del connection._commit

    def show(self, title: str) -> None:
        """Print the statements, the slowest in total first."""
        ranked = sorted(self.totals.items(), key=lambda item: -sum(item[1]))
        print(f"where {title}'s database time goes (untimed):")
        for label, times in ranked:
            print(f"    {sum(times) * 1000:8.1f} ms  x{len(times):<4} {label}", flush=True)
