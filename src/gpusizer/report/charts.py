"""Small self-contained SVG line charts (no plotting library, no CDN): time series and
CDFs for reports and ``--plot``. Pure string building."""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

__all__ = ["line_chart"]

W, H, PAD = 720, 420, 64
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def line_chart(
    title: str,
    xlabel: str,
    ylabel: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    max_points: int = 600,
) -> str:
    """One SVG with a line per series (label, xs, ys); long series are thinned evenly."""
    pts = [(lab, list(xs), list(ys)) for lab, xs, ys in series if len(xs)]
    xs_all = [x for _, xs, _ in pts for x in xs if math.isfinite(x)]
    ys_all = [y for _, _, ys in pts for y in ys if math.isfinite(y)]
    x_lo, x_hi = (min(xs_all), max(xs_all)) if xs_all else (0.0, 1.0)
    y_lo, y_hi = (min(0.0, min(ys_all)), max(ys_all)) if ys_all else (0.0, 1.0)
    if x_hi == x_lo:
        x_hi = x_lo + 1
    if y_hi == y_lo:
        y_hi = y_lo + 1

    def sx(x: float) -> float:
        return PAD + (W - 2 * PAD) * (x - x_lo) / (x_hi - x_lo)

    def sy(y: float) -> float:
        return H - PAD - (H - 2 * PAD) * (y - y_lo) / (y_hi - y_lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="black"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="black"/>',
    ]
    for x in _ticks(x_lo, x_hi):
        out.append(f'<text x="{sx(x):.1f}" y="{H - PAD + 16}" text-anchor="middle">{x:g}</text>')
    for y in _ticks(y_lo, y_hi):
        out.append(f'<line x1="{PAD}" y1="{sy(y):.1f}" x2="{W - PAD}" y2="{sy(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{PAD - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 18}" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(
        f'<text x="16" y="{H / 2}" transform="rotate(-90 16 {H / 2})" text-anchor="middle">{escape(ylabel)}</text>'
    )
    for i, (label, xs, ys) in enumerate(pts):
        stride = max(1, len(xs) // max_points)
        coords = " ".join(
            f"{sx(x):.1f},{sy(y):.1f}"
            for x, y in list(zip(xs, ys, strict=False))[::stride]
            if math.isfinite(x) and math.isfinite(y)
        )
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{coords}"/>')
        out.append(
            f'<text x="{W - PAD - 4}" y="{PAD + 14 * (i + 1)}" text-anchor="end" fill="{colour}">'
            f"{escape(label)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
