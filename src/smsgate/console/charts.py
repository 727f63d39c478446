"""Dashboard charts drawn as inline SVG on the server: no script, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Colour per send status; the legend names them, so colour is never the only cue.
STATUS_COLOURS = {
    "DELIVERED": "#2f9e44",
    "SUBMITTED": "#74b816",
    "SENDING": "#1c7ed6",
    "QUEUED": "#4dabf7",
    "UNKNOWN": "#f59f00",
    "UNDELIVERED": "#e8590c",
    "FAILED": "#e03131",
    "CANCELLED": "#868e96",
}


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    text: str  # what is written at the end of the bar


def stacked_days(
    chart_id: str, days: Sequence[str], counts: dict[str, dict[str, int]], title: str
) -> Markup:
    """Vertical bars, one per day, stacked by status; `counts[day][status]`."""
    width, height, left, bottom, top = 760, 260, 40, 40, 10
    plot_h = height - bottom - top
    peak = max((sum(counts.get(day, {}).values()) for day in days), default=0) or 1
    slot = (width - left - 10) / max(1, len(days))
    bar_w = max(2.0, slot * 0.7)
    parts: list[str] = []
    for tick in (0, peak / 2, peak):
        y = top + plot_h - tick / peak * plot_h
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{round(tick)}</text>'
        )
    statuses = [s for s in STATUS_COLOURS if any(s in counts.get(d, {}) for d in days)]
    for index, day in enumerate(days):
        x = left + index * slot + (slot - bar_w) / 2
        y = top + plot_h
        for status in statuses:
            count = counts.get(day, {}).get(status, 0)
            if not count:
                continue
            h = count / peak * plot_h
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{STATUS_COLOURS[status]}" data-status="{status}">'
                f"<title>{escape(day)} {status}: {count}</title></rect>"
            )
        if index % 5 == 0 or index == len(days) - 1:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{escape(day[5:])}</text>'
            )
    legend_x = left
    for status in statuses:
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" '
            f'fill="{STATUS_COLOURS[status]}"/>'
            f'<text x="{legend_x + 14}" y="{height - 5}">{status}</text>'
        )
        legend_x += 14 + 8 * len(status) + 16
    if not statuses:
        parts.append(
            f'<text x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle">'
            "no messages in this period</text>"
        )
    return _svg(chart_id, width, height, title, parts)


def horizontal_bars(chart_id: str, bars: Sequence[Bar], peak: float, title: str) -> Markup:
    """One labelled bar per row, scaled to `peak` (100 for percentages)."""
    row_h, label_w, width = 26, 150, 760
    height = max(1, len(bars)) * row_h + 10
    plot_w = width - label_w - 90
    parts: list[str] = []
    for index, bar in enumerate(bars):
        y = 5 + index * row_h
        w = 0 if peak <= 0 else bar.value / peak * plot_w
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" class="bar">'
            f"<title>{escape(bar.label)}: {escape(bar.text)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{escape(bar.text)}</text>'
        )
    if not bars:
        parts.append(f'<text x="{width / 2}" y="20" text-anchor="middle">no messages yet</text>')
    return _svg(chart_id, width, height, title, parts)


def _svg(chart_id: str, width: int, height: int, title: str, parts: list[str]) -> Markup:
    # Every interpolated label above went through escape(); numbers are formatted by us.
    body = "".join(parts)
    return Markup(  # noqa: S704 - built from escaped labels and our own numbers
        f'<svg id="{chart_id}" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )
