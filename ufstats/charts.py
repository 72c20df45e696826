"""Inline SVG charts for the HTML report, drawn in Python so the page needs no script.

Every drawn data element (bar, line, point) has the class ``mark`` and a
``<title>`` that browsers show on hover. All text is escaped here, so
callers pass plain strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 960
# Above this many days, the per-day chart draws lines instead of bars.
MAX_DAY_BARS = 62


@dataclass
class Series:
    """One named row of values drawn in one colour."""

    name: str
    color: str
    values: Sequence[float]


def format_number(value: float, decimals: int = 0) -> str:
    """Format a number with thin spaces between thousands, e.g. 146 368."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u202f")


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Return round axis ticks from 0 covering `maximum` (about `count` of them)."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < maximum:
        ticks.append(ticks[-1] + step)
    return ticks


def _text(x: float, y: float, text: str, anchor: str = "start", css: str = "") -> str:
    extra = f' class="{css}"' if css else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _legend(series: Sequence[Series], y: float) -> str:
    parts, x = [], 0.0
    for item in series:
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{item.color}"/>')
        parts.append(_text(x + 17, y, item.name))
        x += 30 + 8 * len(item.name)
    return "".join(parts)


def _svg(chart_id: str, height: float, label: str, body: str) -> str:
    return (
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="100%" role="img" aria-label="{escape(label)}">{body}</svg>'
    )


def day_chart(chart_id: str, label: str, days: Sequence[str], series: Sequence[Series]) -> str:
    """Draw values per day: grouped columns for up to `MAX_DAY_BARS` days, lines beyond."""
    left, right, top, plot_height = 64, 12, 28, 260
    plot_width = WIDTH - left - right
    ticks = nice_ticks(max([max(s.values, default=0) for s in series], default=0))
    scale = plot_height / ticks[-1]
    base = top + plot_height
    parts = [_legend(series, 14)]
    for tick in ticks:
        y = base - tick * scale
        parts.append(f'<line class="grid" x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(_text(left - 6, y + 4, format_number(tick), "end", "axis"))
    slot = plot_width / max(len(days), 1)
    label_every = max(1, math.ceil(len(days) / 8))
    for index, day in enumerate(days):
        if index % label_every == 0:
            parts.append(_text(left + slot * (index + 0.5), base + 18, day, "middle", "axis"))
    if len(days) <= MAX_DAY_BARS:
        bar = slot * 0.8 / len(series)
        for index, day in enumerate(days):
            for number, item in enumerate(series):
                value = item.values[index]
                x = left + slot * index + slot * 0.1 + bar * number
                height = value * scale
                parts.append(
                    f'<rect class="mark" x="{x:.1f}" y="{base - height:.1f}" width="{bar:.1f}" '
                    f'height="{height:.1f}" fill="{item.color}"><title>{escape(day)}: '
                    f"{format_number(value)} {escape(item.name)}</title></rect>"
                )
    else:
        for item in series:
            points = " ".join(
                f"{left + slot * (i + 0.5):.1f},{base - v * scale:.1f}" for i, v in enumerate(item.values)
            )
            total = format_number(sum(item.values))
            parts.append(
                f'<polyline class="mark" points="{points}" fill="none" stroke="{item.color}" '
                f'stroke-width="1.5"><title>{escape(item.name)}: {total} in total</title></polyline>'
            )
    parts.append(f'<line class="axis-line" x1="{left}" x2="{WIDTH - right}" y1="{base}" y2="{base}"/>')
    return _svg(chart_id, base + 28, label, "".join(parts))


def bar_chart(
    chart_id: str,
    label: str,
    categories: Sequence[str],
    series: Sequence[Series],
    value_format: Callable[[float], str] = format_number,
) -> str:
    """Draw horizontal grouped bars, one group per category, with values at the bar ends."""
    left, right, top = 170, 90, 28
    bar, gap = 14, 10
    group = bar * len(series) + gap
    plot_width = WIDTH - left - right
    maximum = max([max(s.values, default=0) for s in series], default=0)
    scale = plot_width / maximum if maximum > 0 else 0
    parts = [_legend(series, 14)]
    for index, category in enumerate(categories):
        y0 = top + group * index
        shown = category if len(category) <= 24 else category[:23] + "\u2026"
        parts.append(_text(left - 8, y0 + bar * len(series) / 2 + 4, shown, "end"))
        for number, item in enumerate(series):
            value = item.values[index]
            y = y0 + bar * number
            width = max(value * scale, 0)
            parts.append(
                f'<rect class="mark" x="{left}" y="{y:.1f}" width="{width:.1f}" height="{bar - 2}" '
                f'fill="{item.color}"><title>{escape(category)}: {value_format(value)} '
                f"{escape(item.name)}</title></rect>"
            )
            parts.append(_text(left + width + 4, y + bar - 4, value_format(value), "start", "value"))
    height = top + group * len(categories) + 4
    return _svg(chart_id, height, label, "".join(parts))
