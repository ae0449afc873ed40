"""Charts drawn on the server as inline SVG: no script, no fonts or files from elsewhere.

A chart is an image to a screen reader (``role="img"``, its ``<title>`` and ``<desc>`` name it
and say every value), and every value is in a table beside it too. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
LABEL_WIDTH = 150
VALUE_WIDTH = 110
ROW_HEIGHT = 34
BAR_HEIGHT = 20
TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: ``share`` is 0 to 100 (percent of the full width); ``text`` is the value as it is written."""

    label: str
    share: float
    text: str


def bar_chart(*, chart_id: str, title: str, description: str, bars: Sequence[Bar]) -> Markup:
    """Horizontal bars, one a row, scaled to 100 %; it scales down with its container (a phone)."""
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    height = TOP * 2 + ROW_HEIGHT * max(1, len(bars))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" font-family="sans-serif" font-size="14">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
        f'<line x1="{LABEL_WIDTH}" y1="0" x2="{LABEL_WIDTH}" y2="{height}" stroke="#5b6573" stroke-width="1"/>',
        f'<line x1="{LABEL_WIDTH + span}" y1="0" x2="{LABEL_WIDTH + span}" y2="{height}" '
        'stroke="#d7dce3" stroke-width="1" stroke-dasharray="4 3"/>',
    ]
    for index, bar in enumerate(bars):
        y = TOP + index * ROW_HEIGHT
        middle = y + ROW_HEIGHT / 2
        width = round(span * min(max(bar.share, 0.0), 100.0) / 100, 1)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{middle}" text-anchor="end" dominant-baseline="middle" '
            f'fill="#1d2430">{escape(bar.label)}</text>'
        )
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{middle - BAR_HEIGHT / 2}" width="{span}" height="{BAR_HEIGHT}" fill="#e6ebf2"/>'
        )
        parts.append(
            f'<rect x="{LABEL_WIDTH}" y="{middle - BAR_HEIGHT / 2}" width="{width}" height="{BAR_HEIGHT}" fill="#1f5fbf"/>'
        )
        parts.append(
            f'<text x="{LABEL_WIDTH + span + 8}" y="{middle}" dominant-baseline="middle" '
            f'fill="#1d2430">{escape(bar.text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
