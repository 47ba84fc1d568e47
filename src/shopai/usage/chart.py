"""A stacked bar chart as plain geometry, for a template to draw as inline SVG.

Drawn on the server because the shop's Content-Security-Policy allows no inline
script or style: SVG presentation attributes (x, y, width, height, fill) are
neither, so the chart needs no JavaScript and no chart library, and prints.
Colours come from a palette readable on white with distinct lightness, so the
stack order can also be told apart in grey; the data table under the chart
holds the exact numbers for screen readers and anyone who needs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from .report import UsageReport

WIDTH = 760
HEIGHT = 300
MARGIN_LEFT = 64
MARGIN_RIGHT = 12
MARGIN_TOP = 12
MARGIN_BOTTOM = 36
# Okabe-Ito colours (safe for the common colour-vision deficiencies).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
METRICS = ("calls", "tokens", "cost")
TICKS = 4  # horizontal grid lines above the axis
FEATURE_LABELS = {
    "suggest": "Search suggestions",
    "chat": "Assistant",
    "images": "Images",
    "embeddings": "Embeddings",
}


def feature_label(feature: str) -> str:
    return FEATURE_LABELS.get(feature, feature)


def feature_colour(feature: str, features: list[str]) -> str:
    return PALETTE[features.index(feature) % len(PALETTE)]


def format_value(value: float, metric: str) -> str:
    if metric == "cost":
        return f"${value:,.4f}" if 0 < value < 0.01 else f"${value:,.2f}"
    return f"{value:,.0f}"


@dataclass(frozen=True)
class Segment:
    feature: str
    label: str
    colour: str
    x: float
    y: float
    width: float
    height: float
    title: str  # the tooltip and accessible name: "2026-11-30 · Assistant: 1,234 tokens"


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class DayLabel:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    segments: list[Segment]
    ticks: list[Tick]
    day_labels: list[DayLabel]
    maximum: float

    @property
    def empty(self) -> bool:
        return not self.segments


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= `value`, so the
    axis reads in round steps (0 and below: 1)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10 * power


def _day_label(day: date) -> str:
    return day.strftime("%b %-d")


def stacked_bars(report: UsageReport, metric: str, features: list[str]) -> Chart:
    """One bar per day, one segment per feature in `features` (bottom up, in order)."""
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    totals = [sum(report.cell(f, d).metric(metric) for f in features) for d in report.days]
    step = nice_ceiling(max(totals, default=0.0) / TICKS)
    if metric != "cost":
        step = max(step, 1.0)  # whole calls and tokens on the axis
    maximum = step * TICKS
    slot = (right - left) / max(len(report.days), 1)
    bar_width = max(slot * 0.7, 1.0)
    scale = (bottom - top) / maximum
    segments: list[Segment] = []
    for index, day in enumerate(report.days):
        x = left + index * slot + (slot - bar_width) / 2
        base = float(bottom)
        for feature in features:
            value = report.cell(feature, day).metric(metric)
            if value <= 0:
                continue
            height = max(value * scale, 0.5)  # a sliver stays visible
            base -= height
            label = feature_label(feature)
            segments.append(
                Segment(
                    feature=feature,
                    label=label,
                    colour=feature_colour(feature, report.features),
                    x=round(x, 2),
                    y=round(base, 2),
                    width=round(bar_width, 2),
                    height=round(height, 2),
                    title=f"{day.isoformat()} · {label}: {format_value(value, metric)} {metric}"
                    if metric != "cost"
                    else f"{day.isoformat()} · {label}: {format_value(value, metric)}",
                )
            )
    ticks = [
        Tick(y=round(bottom - (bottom - top) * n / TICKS, 2), label=format_value(step * n, metric))
        for n in range(TICKS + 1)
    ]
    every = max(1, math.ceil(len(report.days) / 8))
    day_labels = [
        DayLabel(x=round(left + index * slot + slot / 2, 2), label=_day_label(day))
        for index, day in enumerate(report.days)
        if (len(report.days) - 1 - index) % every == 0  # always label the last day
    ]
    return Chart(WIDTH, HEIGHT, left, right, top, bottom, segments, ticks, day_labels, maximum)
