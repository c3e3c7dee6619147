"""Small inline SVG charts for the reports.

Hand-written SVG rather than matplotlib: labels stay text that the reader's browser
draws with its own Chinese fonts (matplotlib would need a CJK font on the rendering
machine, and draws boxes without one), each chart is a few kilobytes, and hundreds of
institution reports render in seconds.
"""
from __future__ import annotations

import html
from typing import Callable, Sequence

from pipeline.fonts import CSS_FONT_FAMILY

FONT = "font-family:" + CSS_FONT_FAMILY
BAR = "#3b6ea5"
OWN = "#c0392b"
PEER = "#8a9bb0"


def _e(s) -> str:
    return html.escape(str(s), quote=True)


def money(v) -> str:
    return f"¥{float(v or 0):,.2f}"


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{_e(title)}" style="{FONT}">'
            f'<title>{_e(title)}</title>{body}</svg>')


def bar_chart(items: Sequence[tuple], title: str,
              fmt: Callable[[float], str] = lambda v: f"{v:,.0f}", width: int = 560) -> str:
    """Horizontal bars, one per (label, value[, text shown]), in the given order."""
    if not items:
        return ""
    label_w, row_h, top = 230, 24, 8
    height = top + row_h * len(items) + 8
    vmax = max((float(v[1]) for v in items), default=0) or 1.0
    span = width - label_w - 90
    rows = []
    for k, (label, value, *text) in enumerate(items):
        y = top + k * row_h
        shown = text[0] if text else fmt(float(value))
        w = max(1.0, span * float(value) / vmax) if value else 0
        short = label if len(label) <= 34 else label[:33] + "…"
        rows.append(f'<text x="{label_w - 6}" y="{y + 16}" font-size="12" text-anchor="end">'
                    f'<title>{_e(label)}</title>{_e(short)}</text>'
                    f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{BAR}"/>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + 16}" font-size="12">{_e(shown)}</text>')
    return _svg(width, height, "".join(rows), title)


def line_chart(points: Sequence[tuple[str, float]], title: str,
               fmt: Callable[[float], str] = lambda v: f"{v:,.0f}", width: int = 560,
               height: int = 200, highlight_last: bool = True) -> str:
    """A time series: x labels (run dates) evenly spaced, y from zero."""
    if not points:
        return ""
    left, right, top, bottom = 70, 44, 14, 40
    vmax = max(float(v) for _, v in points) or 1.0
    n = len(points)
    xs = [left + (width - left - right) * (k / (n - 1) if n > 1 else 0.5) for k in range(n)]
    ys = [top + (height - top - bottom) * (1 - float(v) / vmax) for _, v in points]
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
            f'<text x="{left - 4}" y="{top + 4}" font-size="11" text-anchor="end">{_e(fmt(vmax))}</text>',
            f'<text x="{left - 4}" y="{height - bottom}" font-size="11" text-anchor="end">{_e(fmt(0))}</text>']
    if n > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
        body.append(f'<polyline points="{path}" fill="none" stroke="{BAR}" stroke-width="2"/>')
    # about five x labels, none crowding the last one; dates of one year lose the year
    labels = [str(lb) for lb, _ in points]
    if len({lb[:4] for lb in labels}) == 1 and all(len(lb) == 10 for lb in labels):
        labels = [lb[5:] for lb in labels]
    step = max(1, -(-n // 5))
    gap = 7 * max(len(lb) for lb in labels)
    for k, ((label, value), x, y) in enumerate(zip(points, xs, ys)):
        last = highlight_last and k == n - 1
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{4 if last else 3}" fill="{OWN if last else BAR}">'
                    f'<title>{_e(label)}: {_e(fmt(float(value)))}</title></circle>')
        label = labels[k]
        if k == n - 1 or (k % step == 0 and xs[-1] - x >= gap):
            anchor = "end" if n > 1 and k == n - 1 else "middle"
            body.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" font-size="11" '
                        f'text-anchor="{anchor}">{_e(label)}</text>')
    return _svg(width, height, "".join(body), title)


def strip_chart(title: str, peers: Sequence[float], own: float | None,
                fmt: Callable[[float], str] = lambda v: f"{v:,.2f}", width: int = 560) -> str:
    """One metric: each peer a grey dot on a line, the institution a red diamond, the
    peers' median a tick; a supervisor sees at once how far out the institution sits."""
    values = [float(v) for v in peers if v is not None]
    if own is None and not values:
        return ""
    allv = values + ([float(own)] if own is not None else [])
    lo, hi = min(allv + [0.0]), max(allv)
    hi = hi if hi > lo else lo + 1
    left, right, height, axis_y = 12, 12, 62, 30
    width = max(width, 120)

    def x(v):
        return left + (width - left - right) * (float(v) - lo) / (hi - lo)

    body = [f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#bbb"/>',
            f'<text x="{left}" y="{axis_y + 24}" font-size="11">{_e(fmt(lo))}</text>',
            f'<text x="{width - right}" y="{axis_y + 24}" font-size="11" text-anchor="end">{_e(fmt(hi))}</text>']
    for v in values:
        body.append(f'<circle cx="{x(v):.1f}" cy="{axis_y}" r="4" fill="{PEER}" fill-opacity="0.6"/>')
    if values:
        s = sorted(values)
        med = (s[len(s) // 2] + s[(len(s) - 1) // 2]) / 2
        body.append(f'<line x1="{x(med):.1f}" y1="{axis_y - 10}" x2="{x(med):.1f}" y2="{axis_y + 10}" '
                    f'stroke="#333" stroke-width="2"><title>median / 中位数 {_e(fmt(med))}</title></line>')
    if own is not None:
        cx = x(own)
        anchor = "start" if cx < 60 else "end" if cx > width - 60 else "middle"
        body.append(f'<path d="M{cx:.1f},{axis_y - 8} l7,8 l-7,8 l-7,-8 z" fill="{OWN}"/>'
                    f'<text x="{cx:.1f}" y="{axis_y - 12}" font-size="11" text-anchor="{anchor}" '
                    f'fill="{OWN}">{_e(fmt(own))}</text>')
    return _svg(width, height, "".join(body), title)
