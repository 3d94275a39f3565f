"""Server-rendered SVG charts: geometry computed here, drawn by templates/incidents/summary.html (no JavaScript)."""

import math
from dataclasses import dataclass, field
from datetime import date

from .models import Impact

IMPACTS = [impact.value for impact in Impact]


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    impact: int
    label: str  # the tooltip and the accessible name of the segment


@dataclass
class Tick:
    position: float
    label: str
    x: float = 0


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    plot_left: float = 0
    plot_right: float = 0
    plot_top: float = 0
    plot_bottom: float = 0
    row_labels: list[Tick] = field(default_factory=list)
    totals: list[Tick] = field(default_factory=list)


def nice_ceiling(value: int) -> int:
    """The smallest round number (1, 2 or 5 × 10ⁿ) at or above value, so that axes read easily."""
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def columns_over_time(
    periods: list[date],
    counts: dict[date, dict[int, int]],
    *,
    bucket: str,
    width: int = 760,
    height: int = 260,
    max_x_labels: int = 10,
) -> Chart:
    """Stacked columns: one per day (or week), split by impact, most severe at the bottom."""
    left, right, top, bottom = 44, width - 8, 12, height - 28
    chart = Chart(width=width, height=height, plot_left=left, plot_right=right, plot_top=top, plot_bottom=bottom)
    top_value = nice_ceiling(max((sum(counts[p].values()) for p in periods), default=0))
    scale = (bottom - top) / top_value
    for fraction in (0, 0.5, 1):
        value = top_value * fraction
        if fraction == 0.5 and value != int(value):
            continue
        chart.y_ticks.append(Tick(position=bottom - value * scale, label=f"{int(value)}"))
    slot = (right - left) / max(len(periods), 1)
    bar_width = max(slot * 0.75, 1)
    label_every = max(1, math.ceil(len(periods) / max_x_labels))
    for index, period in enumerate(periods):
        x = left + index * slot + (slot - bar_width) / 2
        y: float = bottom
        name = f"{period:%d %b %Y}" if bucket == "day" else f"week of {period:%d %b %Y}"
        for impact in IMPACTS:
            count = counts[period].get(impact, 0)
            if not count:
                continue
            bar_height = count * scale
            y -= bar_height
            chart.bars.append(
                Bar(x, y, bar_width, bar_height, impact, f"{name}: {count} × {impact} – {Impact(impact).label}")
            )
        if index % label_every == 0:
            chart.x_ticks.append(Tick(position=left + index * slot + slot / 2, label=f"{period:%d %b}"))
    return chart


def bars_per_plan(
    rows: list[tuple[str, dict[int, int], int]],
    *,
    width: int = 760,
    row_height: int = 30,
    label_width: int = 210,
    label_length: int = 30,
) -> Chart:
    """Horizontal stacked bars: one per response plan, split by impact; labels of at most `label_length` characters
    in the `label_width` on the left."""
    left, right, top = label_width, width - 50, 6
    height = top + max(len(rows), 1) * row_height + 6
    chart = Chart(width=width, height=height, plot_left=left, plot_right=right, plot_top=top, plot_bottom=height - 6)
    # No axis here (each bar is labelled with its total), so the longest bar may fill the width.
    scale = (right - left) / max((total for _, _, total in rows), default=1)
    for index, (label, impacts, total) in enumerate(rows):
        y = top + index * row_height
        x: float = left
        for impact in IMPACTS:
            count = impacts.get(impact, 0)
            if not count:
                continue
            bar_width = count * scale
            name = f"{label}: {count} × {impact} – {Impact(impact).label}"
            chart.bars.append(Bar(x, y + 4, bar_width, row_height - 8, impact, name))
            x += bar_width
        middle = y + row_height / 2
        chart.row_labels.append(
            Tick(position=middle, label=label if len(label) <= label_length else label[: label_length - 1] + "…")
        )
        chart.totals.append(Tick(position=middle, label=str(total), x=x + 6))
    return chart
