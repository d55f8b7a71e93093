"""A small SVG line chart of metric series, for reports.

A plotting library would weigh tens of megabytes for one kind of chart; this draws the series
as polylines over time, on a grid of round values and clock times, with the thresholds as
dashed red lines, a baseline's limits as dashed orange lines, the samples that broke a rule as
red dots, and moments (an observation's start) as vertical lines.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from html import escape

from ..units import is_clock_time

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 24, 34, 46
COLORS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
          "#7f7f7f", "#ff7f0e", "#d62728")
THRESHOLD, LIMIT, BREACH, MARK = "#d62728", "#e07b00", "#d62728", "#555"
TICKS = 5


def _label(value: float) -> str:
    return f"{value:.4g}"


def _text(text: str) -> str:
    """``text`` for the SVG's XML: escaped, without the control characters XML refuses."""
    return escape(_CONTROL.sub("", text))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _held(value: float) -> float:
    """``value`` within ±1e300: the width of the value axis then stays a finite number."""
    return max(-1e300, min(1e300, value))


def _clock(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%H:%M:%S")


def ticks(low: float, high: float, count: int = TICKS) -> list[float]:
    """Round values from ``low`` to ``high``, about ``count`` of them (steps of 1, 2, 2.5 or
    5 times a power of ten)."""
    raw = (high - low) / count
    if not raw > 0 or not math.isfinite(raw):
        return [low]
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + index * step for index in range(int((high - first) / step + 1e-9) + 1)]


def line_chart(title: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
               thresholds: Sequence[tuple[str, float]] = (),
               limits: Sequence[tuple[str, float]] = (),
               breaches: Sequence[tuple[float, float]] = (),
               marks: Sequence[tuple[str, float]] = ()) -> str:
    """An SVG document: each ``(label, [(unix_time, value), ...])`` as a line, each
    ``(label, value)`` threshold or limit as a dashed line, each breach ``(time, value)`` as a
    red dot, each mark ``(label, time)`` as a vertical line. Non-finite values are left out."""
    # What can be drawn: finite values (held within a range whose width is finite too) at
    # times a clock can show.
    drawn = [(label, [(t, _held(v)) for t, v in samples if is_clock_time(t) and math.isfinite(v)])
             for label, samples in series]
    dots = [(t, _held(v)) for t, v in breaches if is_clock_time(t) and math.isfinite(v)]
    moments_marked = [(label, t) for label, t in marks if is_clock_time(t)]
    points = [point for _, samples in drawn for point in samples]
    lines = [(label, _held(value), color) for pairs, color in ((thresholds, THRESHOLD),
                                                                (limits, LIMIT))
             for label, value in pairs if math.isfinite(value)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{LEFT}" y="18" font-size="13">{_text(title)}</text>']
    if not points:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT // 2}">no samples</text></svg>')
        return "\n".join(parts)
    times = [t for t, _ in points] + [t for _, t in moments_marked]
    t0, t1 = min(times), max(times)
    values = [v for _, v in points] + [value for _, value, _ in lines]
    low, high = min(values), max(values)
    if high == low:  # a flat line still needs a scale
        low, high = low - (abs(low) or 1) * 0.1, high + (abs(high) or 1) * 0.1
    else:  # room above and below, so that a line on the edge stays visible
        low, high = low - (high - low) * 0.05, high + (high - low) * 0.05
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (plot_w * (t - t0) / (t1 - t0) if t1 > t0 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - low) / (high - low))

    for value in ticks(low, high):
        parts.append(f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{LEFT + plot_w}" '
                     f'y2="{y(value):.1f}" stroke="#e5e5e5"/>'
                     f'<text x="{LEFT - 5}" y="{y(value) + 4:.1f}" text-anchor="end">'
                     f'{_label(value)}</text>')
    moments = [t0 + (t1 - t0) * index / (TICKS - 1) for index in range(TICKS)] \
        if t1 > t0 else [t0]
    for moment in moments:
        parts.append(f'<line x1="{x(moment):.1f}" y1="{TOP + plot_h}" x2="{x(moment):.1f}" '
                     f'y2="{TOP + plot_h + 4}" stroke="#444"/>'
                     f'<text x="{x(moment):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
                     f'{_clock(moment)}</text>')
    parts += [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>',
              f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
              f'stroke="#444"/>',
              f'<text x="{LEFT + plot_w}" y="{TOP + plot_h + 30}" text-anchor="end">UTC</text>']
    for label, moment in moments_marked:
        parts.append(f'<line x1="{x(moment):.1f}" y1="{TOP}" x2="{x(moment):.1f}" '
                     f'y2="{TOP + plot_h}" stroke="{MARK}" stroke-dasharray="2,3"/>'
                     f'<text x="{x(moment) + 3:.1f}" y="{TOP + 10}" fill="{MARK}">'
                     f'{_text(label)}</text>')
    for label, value, color in lines:
        parts.append(f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{LEFT + plot_w}" '
                     f'y2="{y(value):.1f}" stroke="{color}" stroke-dasharray="6,4"/>'
                     f'<text x="{LEFT + plot_w}" y="{y(value) - 3:.1f}" text-anchor="end" '
                     f'fill="{color}">{_text(label)}</text>')
    legend_y = HEIGHT - 6
    for index, (label, samples) in enumerate(drawn):
        color = COLORS[index % len(COLORS)]
        coords = [(x(t), y(v)) for t, v in samples]
        if coords:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                         f'points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in coords)}">'
                         f'<title>{_text(label)}</title></polyline>')
            if len(coords) == 1:
                parts.append(f'<circle cx="{coords[0][0]:.1f}" cy="{coords[0][1]:.1f}" r="3" '
                             f'fill="{color}"/>')
        if index < 4:
            parts.append(f'<text x="{LEFT + 130 * index}" y="{legend_y}" fill="{color}">'
                         f'{_text(label[:22] or "value")}</text>')
    if len(drawn) > 4:
        parts.append(f'<text x="{LEFT + 520}" y="{legend_y}">+{len(drawn) - 4} more</text>')
    for t, v in dots:
        parts.append(f'<circle class="breach" cx="{x(t):.1f}" cy="{y(v):.1f}" r="4" '
                     f'fill="{BREACH}"><title>breach: {_label(v)} at {_clock(t)} UTC'
                     f'</title></circle>')
    if dots:
        parts.append(f'<circle cx="{LEFT + plot_w - 70}" cy="{legend_y - 4}" r="4" '
                     f'fill="{BREACH}"/><text x="{LEFT + plot_w - 62}" y="{legend_y}" '
                     f'fill="{BREACH}">breach ({len(dots)})</text>')
    parts.append("</svg>")
    return "\n".join(parts)
