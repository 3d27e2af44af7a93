"""Segment size over time as an inline SVG line, drawn on the server (no chart library)."""

from __future__ import annotations

from dataclasses import dataclass

from segments.models import SegmentSize


@dataclass(frozen=True)
class Sparkline:
    """An inline SVG line of daily member counts, drawn on the server (no chart library)."""

    width: int
    height: int
    line: str  # polyline points
    area: str  # polygon points: the line closed along the bottom edge
    end_x: float
    end_y: float
    label: str  # the same numbers in words, for screen readers and the tooltip
    caption: str  # shorter, shown under the larger chart on a segment's page


def sparkline(sizes: list[SegmentSize], width: int = 84, height: int = 26) -> Sparkline | None:
    if not sizes:
        return None
    counts = [s.member_count for s in sizes]
    if len(counts) == 1:
        counts = counts * 2  # one day: a flat line
    low, high = min(counts), max(counts)
    pad = 3  # keeps the stroke and the end dot inside the box
    step = (width - 2 * pad) / (len(counts) - 1)
    span = high - low

    def y(count: int) -> float:
        if not span:
            return height / 2
        return round(height - pad - (count - low) / span * (height - 2 * pad), 1)

    points = [(round(pad + i * step, 1), y(c)) for i, c in enumerate(counts)]
    line = " ".join(f"{px},{py}" for px, py in points)
    area = f"{points[0][0]},{height} {line} {points[-1][0]},{height}"
    first, last = sizes[0], sizes[-1]
    label = (
        f"{first.member_count:,} on {first.day:%-d %b} → {last.member_count:,} on "
        f"{last.day:%-d %b} (low {min(counts):,}, high {max(counts):,})"
    )
    caption = f"{first.member_count:,} → {last.member_count:,} since {first.day:%-d %b}"
    return Sparkline(width, height, line, area, points[-1][0], points[-1][1], label, caption)
