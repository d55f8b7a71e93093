"""A small SVG line chart of metric series, for reports.

A plotting library would weigh tens of megabytes for one kind of chart; this draws the series
as polylines over time, with the thresholds as dashed lines and the value range on the axis.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 30, 40
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")


def _label(value: float) -> str:
    return f"{value:.4g}"


def _clock(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%H:%M:%S")


def line_chart(title: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
               thresholds: Sequence[tuple[str, float]] = ()) -> str:
    """An SVG document: each ``(label, [(unix_time, value), ...])`` as a line, each
    ``(label, value)`` threshold as a dashed line. Non-finite values are left out."""
    points = [(t, v) for _, samples in series for t, v in samples if math.isfinite(v)]
    values = [v for _, v in points] + [v for _, v in thresholds if math.isfinite(v)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{LEFT}" y="18" font-size="13">{escape(title)}</text>']
    if not points:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT // 2}">no samples</text></svg>')
        return "\n".join(parts)
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    low, high = min(values), max(values)
    if high == low:  # a flat line still needs a scale
        low, high = low - (abs(low) or 1) * 0.1, high + (abs(high) or 1) * 0.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (plot_w * (t - t0) / (t1 - t0) if t1 > t0 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - low) / (high - low))

    parts += [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>',
              f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
              f'stroke="#444"/>',
              f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{_label(high)}</text>',
              f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">{_label(low)}</text>',
              f'<text x="{LEFT}" y="{HEIGHT - 22}">{_clock(t0)}</text>',
              f'<text x="{LEFT + plot_w}" y="{HEIGHT - 22}" text-anchor="end">{_clock(t1)} UTC'
              f'</text>']
    for label, value in thresholds:
        if math.isfinite(value):
            parts.append(f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{LEFT + plot_w}" '
                         f'y2="{y(value):.1f}" stroke="#d62728" stroke-dasharray="5,4"/>'
                         f'<text x="{LEFT + plot_w}" y="{y(value) - 3:.1f}" text-anchor="end" '
                         f'fill="#d62728">{escape(label)}</text>')
    legend_y = HEIGHT - 6
    for index, (label, samples) in enumerate(series):
        color = COLORS[index % len(COLORS)]
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in samples if math.isfinite(v))
        if coords:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                         f'points="{coords}"><title>{escape(label)}</title></polyline>')
            if len(samples) == 1:
                parts.append(f'<circle cx="{coords.split(",")[0]}" '
                             f'cy="{coords.split(",")[1]}" r="3" fill="{color}"/>')
        if index < 4:
            parts.append(f'<text x="{LEFT + 140 * index}" y="{legend_y}" fill="{color}">'
                         f'{escape(label[:24] or "value")}</text>')
    if len(series) > 4:
        parts.append(f'<text x="{LEFT + 560}" y="{legend_y}">+{len(series) - 4} more</text>')
    parts.append("</svg>")
    return "\n".join(parts)
