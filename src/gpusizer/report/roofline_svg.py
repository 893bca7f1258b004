"""The roofline picture as a self-contained SVG: the GPU's achievable roof (bandwidth slope
up to the ridge point, then the compute ceiling) on log-log axes, and one point per batch
size at its decode step's arithmetic intensity and achieved FLOP/s. Pure string building,
no plotting library; the file opens in any browser."""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

from gpusizer.api import PerfResult
from gpusizer.estimate.roofline import compute_peak_flops

__all__ = ["roofline_svg"]

W, H, PAD = 720, 460, 70


def roofline_svg(res: PerfResult) -> str:
    dep = res.fit.deployment
    bandwidth_fraction, compute_fraction = res.bandwidth_fraction, res.compute_fraction
    peak, dtype = compute_peak_flops(dep.gpu, dep.quant.fmt.compute_dtype)
    bw = dep.gpu.memory_bandwidth_bps
    ridge = peak / bw
    pts = [
        (r.batch, r.decode_step.arithmetic_intensity, r.decode_step.flops / r.tpot_s)
        for r in res.rows
        if r.decode_step.arithmetic_intensity > 0
    ]
    x_lo = 10 ** math.floor(math.log10(min([p[1] for p in pts] + [ridge / 100, 0.5])))
    x_hi = 10 ** math.ceil(math.log10(max([p[1] for p in pts] + [ridge * 10])))
    y_hi = 10 ** math.ceil(math.log10(peak * 1.2))
    y_lo = 10 ** math.floor(math.log10(min([p[2] for p in pts] + [bw * x_lo])))

    def sx(x: float) -> float:
        return PAD + (W - 2 * PAD) * (math.log10(x) - math.log10(x_lo)) / (
            math.log10(x_hi) - math.log10(x_lo)
        )

    def sy(y: float) -> float:
        return (
            H
            - PAD
            - (H - 2 * PAD) * (math.log10(y) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))
        )

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15">'
        f"{escape(res.fit.model.name)} on {escape(dep.gpu.name)} — roofline ({dtype})</text>",
    ]
    # axes with decade ticks
    out.append(f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="black"/>')
    out.append(f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="black"/>')
    x = x_lo
    while x <= x_hi * 1.0001:
        out.append(
            f'<line x1="{sx(x):.1f}" y1="{H - PAD}" x2="{sx(x):.1f}" y2="{H - PAD + 5}" stroke="black"/>'
        )
        out.append(f'<text x="{sx(x):.1f}" y="{H - PAD + 18}" text-anchor="middle">{x:g}</text>')
        x *= 10
    y = y_lo
    while y <= y_hi * 1.0001:
        out.append(f'<text x="{PAD - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y / 1e12:g}</text>')
        y *= 10
    out.append(
        f'<text x="{W / 2}" y="{H - 20}" text-anchor="middle">arithmetic intensity (FLOP per byte read)</text>'
    )
    out.append(
        f'<text x="18" y="{H / 2}" transform="rotate(-90 18 {H / 2})" text-anchor="middle">TFLOP/s</text>'
    )
    # roof (peak) and achievable roof (with efficiency factors)
    for frac_b, frac_c, colour, label, dy in (
        (1.0, 1.0, "#999", "peak", -6),
        (bandwidth_fraction, compute_fraction, "#1f77b4", "achievable", 16),
    ):
        r = peak * frac_c / (bw * frac_b)
        x0 = x_lo
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
            f"{sx(x0):.1f},{sy(max(bw * frac_b * x0, y_lo)):.1f} {sx(r):.1f},{sy(peak * frac_c):.1f} "
            f'{sx(x_hi):.1f},{sy(peak * frac_c):.1f}"/>'
        )
        out.append(
            f'<text x="{sx(x_hi) - 4:.1f}" y="{sy(peak * frac_c) + dy:.1f}" text-anchor="end" '
            f'fill="{colour}">{label}: {peak * frac_c / 1e12:,.0f} TFLOP/s, ridge {r:,.0f} FLOP/B</text>'
        )
    for batch, ai, achieved in pts:
        out.append(f'<circle cx="{sx(ai):.1f}" cy="{sy(achieved):.1f}" r="5" fill="#d62728"/>')
        out.append(f'<text x="{sx(ai) + 7:.1f}" y="{sy(achieved) + 4:.1f}">B={batch}</text>')
    out.append(f'<text x="{PAD + 8}" y="{PAD + 14}" fill="#d62728">● decode step at batch B</text>')
    out.append("</svg>")
    return "\n".join(out)
