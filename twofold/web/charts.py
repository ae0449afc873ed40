"""Charts drawn on the server as inline SVG: no script, no fonts or files from elsewhere.

A chart is an image to a screen reader (``role="img"``, its ``<title>`` and ``<desc>`` name it
and say every value), and every value is in a table beside it too. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH = 680
LABEL_WIDTH = 200
VALUE_WIDTH = 140
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
    """Horizontal bars, one a row, scaled to 100 %; it scales down with its container (a phone).

    Every piece is a literal template filled by ``Markup.format``, which escapes each value.
    """
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    height = TOP * 2 + ROW_HEIGHT * max(1, len(bars))
    parts = [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{id}" role="img" viewBox="0 0 {w} {h}" '
            'width="{w}" height="{h}" aria-labelledby="{id}-title {id}-desc" font-family="sans-serif" font-size="14">'
            '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
            '<line x1="{left}" y1="0" x2="{left}" y2="{h}" stroke="#5b6573" stroke-width="1"/>'
            '<line x1="{right}" y1="0" x2="{right}" y2="{h}" stroke="#d7dce3" stroke-width="1" stroke-dasharray="4 3"/>'
        ).format(
            id=chart_id,
            w=WIDTH,
            h=height,
            title=title,
            desc=description,
            left=LABEL_WIDTH,
            right=LABEL_WIDTH + span,
        )
    ]
    for index, bar in enumerate(bars):
        middle = TOP + index * ROW_HEIGHT + ROW_HEIGHT / 2
        parts.append(
            Markup(
                '<text x="{label_x}" y="{middle}" text-anchor="end" dominant-baseline="middle" fill="#1d2430">{label}</text>'
                '<rect x="{left}" y="{top}" width="{span}" height="{bar_h}" fill="#e6ebf2"/>'
                '<rect x="{left}" y="{top}" width="{width}" height="{bar_h}" fill="#1f5fbf"/>'
                '<text x="{value_x}" y="{middle}" dominant-baseline="middle" fill="#1d2430">{text}</text>'
            ).format(
                label_x=LABEL_WIDTH - 8,
                middle=middle,
                label=bar.label,
                left=LABEL_WIDTH,
                top=middle - BAR_HEIGHT / 2,
                span=span,
                bar_h=BAR_HEIGHT,
                width=round(span * min(max(bar.share, 0.0), 100.0) / 100, 1),
                value_x=LABEL_WIDTH + span + 8,
                text=bar.text,
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
