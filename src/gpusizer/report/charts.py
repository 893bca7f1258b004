"""Small self-contained SVG line charts (no plotting library, no CDN): time series and
CDFs for reports and ``--plot``. Pure string building."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

__all__ = ["line_chart", "scatter_chart"]

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


def _reference_lines(
    hlines: Sequence[tuple[str, float]],
    vlines: Sequence[tuple[str, float]],
    sx: Callable[[float], float],
    sy: Callable[[float], float],
    width: int,
    height: int,
) -> list[str]:
    """Labelled dashed lines across the plot: red horizontal targets, grey vertical marks."""
    out = []
    for label, y in hlines:
        out.append(
            f'<line class="target" x1="{PAD}" y1="{sy(y):.1f}" x2="{width - PAD}" y2="{sy(y):.1f}" '
            'stroke="#d62728" stroke-dasharray="6 4"/>'
        )
        out.append(f'<text x="{PAD + 4}" y="{sy(y) - 4:.1f}" fill="#d62728">{escape(label)}</text>')
    for label, x in vlines:
        out.append(
            f'<line x1="{sx(x):.1f}" y1="{PAD}" x2="{sx(x):.1f}" y2="{height - PAD}" stroke="#888" stroke-dasharray="3 3"/>'
        )
        out.append(f'<text x="{sx(x) + 4:.1f}" y="{height - PAD - 6}" fill="#555">{escape(label)}</text>')
    return out


def _legend_row(labels: Sequence[str]) -> list[str]:
    """A swatch and label per series in one row above the plot, so no label sits on a line."""
    out = []
    legend_x = float(PAD)
    for i, label in enumerate(labels):
        colour = COLOURS[i % len(COLOURS)]
        out.append(
            f'<rect x="{legend_x:.0f}" y="{PAD - 21}" width="14" height="3" fill="{colour}"/>'
            f'<text x="{legend_x + 18:.0f}" y="{PAD - 16}" fill="{colour}">{escape(label)}</text>'
        )
        legend_x += 18 + 7 * len(label) + 18
    return out


def line_chart(
    title: str,
    xlabel: str,
    ylabel: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    max_points: int = 600,
    hlines: Sequence[tuple[str, float]] = (),
    vlines: Sequence[tuple[str, float]] = (),
    width: int = W,
    height: int = H,
    markers: bool = False,
) -> str:
    """One SVG with a line per series (label, xs, ys); long series are thinned evenly.
    ``hlines`` (targets such as an SLO) are dashed red lines, ``vlines`` dashed grey ones,
    each labelled."""
    W, H = width, height  # the chart's own size
    pts = [(lab, list(xs), list(ys)) for lab, xs, ys in series if len(xs)]
    xs_all = [x for _, xs, _ in pts for x in xs if math.isfinite(x)] + [x for _, x in vlines]
    ys_all = [y for _, _, ys in pts for y in ys if math.isfinite(y)] + [y * 1.1 for _, y in hlines]
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
    out.extend(_reference_lines(hlines, vlines, sx, sy, W, H))
    for i, (_label, xs, ys) in enumerate(pts):
        stride = max(1, len(xs) // max_points)
        coords = " ".join(
            f"{sx(x):.1f},{sy(y):.1f}"
            for x, y in list(zip(xs, ys, strict=False))[::stride]
            if math.isfinite(x) and math.isfinite(y)
        )
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{coords}"/>')
        if markers:
            out.extend(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"><title>{x:g}: {y:,.1f}</title></circle>'
                for x, y in zip(xs, ys, strict=False)
                if math.isfinite(x) and math.isfinite(y)
            )
    out.extend(_legend_row([label for label, _, _ in pts]))
    out.append("</svg>")
    return "\n".join(out)


def scatter_chart(
    title: str,
    xlabel: str,
    ylabel: str,
    groups: Sequence[tuple[str, str, Sequence[tuple[float, float, str]]]],
    *,
    connect: str | None = None,
    log_y: bool = False,
    width: int = W,
    height: int = H,
) -> str:
    """Dots per group (label, colour, [(x, y, tooltip)]); the group named ``connect`` is
    also joined by a line in x order (a Pareto front). ``log_y`` for costs that span decades."""
    pts = [(x, y) for _, _, g in groups for x, y, _ in g if math.isfinite(x) and math.isfinite(y)]
    if log_y:
        pts = [(x, y) for x, y in pts if y > 0]

    def ty(y: float) -> float:
        return math.log10(y) if log_y else y

    x_lo, x_hi = (min(p[0] for p in pts), max(p[0] for p in pts)) if pts else (0.0, 1.0)
    y_lo, y_hi = (min(ty(p[1]) for p in pts), max(ty(p[1]) for p in pts)) if pts else (0.0, 1.0)
    x_lo = min(0.0, x_lo)
    pad_y = (y_hi - y_lo) * 0.05 or 0.5
    y_lo, y_hi = y_lo - pad_y, y_hi + pad_y
    x_hi = x_hi * 1.05 if x_hi > x_lo else x_lo + 1

    def sx(x: float) -> float:
        return PAD + (width - 2 * PAD) * (x - x_lo) / (x_hi - x_lo)

    def sy(y: float) -> float:
        return height - PAD - (height - 2 * PAD) * (ty(y) - y_lo) / (y_hi - y_lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
        f'<line x1="{PAD}" y1="{height - PAD}" x2="{width - PAD}" y2="{height - PAD}" stroke="black"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{height - PAD}" stroke="black"/>',
    ]
    for x in _ticks(x_lo, x_hi):
        out.append(f'<text x="{sx(x):.1f}" y="{height - PAD + 16}" text-anchor="middle">{x:g}</text>')
    if log_y:
        y_ticks = [10.0**k * m for k in range(math.floor(y_lo), math.ceil(y_hi) + 1) for m in (1, 2, 5)]
        y_ticks = [y for y in y_ticks if y_lo <= math.log10(y) <= y_hi]
    else:
        y_ticks = _ticks(y_lo, y_hi)
    for y in y_ticks:
        out.append(f'<line x1="{PAD}" y1="{sy(y):.1f}" x2="{width - PAD}" y2="{sy(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{PAD - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    out.append(f'<text x="{width / 2}" y="{height - 18}" text-anchor="middle">{escape(xlabel)}</text>')
    out.append(
        f'<text x="16" y="{height / 2}" transform="rotate(-90 16 {height / 2})" text-anchor="middle">{escape(ylabel)}</text>'
    )
    for i, (label, colour, g) in enumerate(groups):
        good = [(x, y, t) for x, y, t in g if math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y)]
        if label == connect and len(good) > 1:
            line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in sorted(good))
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{line}"/>')
        r = 4 if label == connect else 3
        out.extend(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{r}" fill="{colour}" fill-opacity="0.8">'
            f"<title>{escape(t)}</title></circle>"
            for x, y, t in good
        )
        out.append(
            f'<text class="legend" x="{width - PAD - 4}" y="{PAD + 14 * (i + 1)}" text-anchor="end" '
            f'fill="{colour}">● {escape(label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
