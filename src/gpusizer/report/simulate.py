"""``simulate`` results as one JSON-ready dict (CLI ``--json``, the web API, reports)."""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from gpusizer.api import SimulateResult
from gpusizer.report.charts import line_chart
from gpusizer.report.html import document, table_html

__all__ = ["POINT_COLUMNS", "point_rows", "sim_charts", "sim_to_dict", "simulate_report_html"]


def sim_to_dict(res: SimulateResult) -> dict[str, Any]:
    dep = res.fit.deployment
    pts = []
    for p in res.points:
        s = p.stats
        pts.append(
            {
                "rate": p.rate,
                "users": p.users,
                "requests": s.requests,
                "completed": s.completed,
                "ttft_ms": s.ttft.as_ms(),
                "tpot_ms": s.tpot.as_ms(),
                "itl_ms": s.itl.as_ms(),
                "e2e_ms": s.e2e.as_ms(),
                "output_tokens_per_s": round(s.output_tokens_per_s, 2),
                "requests_per_s": round(s.requests_per_s, 4),
                "goodput": {
                    "share": round(s.goodput_share, 4),
                    "requests_per_s": round(s.goodput_requests_per_s, 4),
                },
                "preemptions": s.preemptions,
                "mean_running": round(s.mean_running, 2),
                "mean_waiting": round(s.mean_waiting, 2),
                "peak_kv_used": round(s.peak_kv_used, 4),
                "prefix_cache_hit_tokens": s.prefix_hit_tokens,
                "binds": p.binds,
            }
        )
    out: dict[str, Any] = {
        "schema_version": 1,
        "model": res.fit.model.name,
        "gpu": dep.gpu.key,
        "gpus": dep.layout.gpus,
        "engine": dep.engine,
        "spec_tokens": dep.spec_tokens,
        "spec_accept": dep.spec_accept if dep.spec_tokens else None,
        "quant": dep.quant.label,
        "efficiency": res.efficiency_row,
        "uncertainty_pct": None if res.uncertainty is None else round(100 * res.uncertainty, 1),
        "kv_cache_tokens": res.fit.estimate.kv_cache_tokens,
        "points": pts,
        "knee": None if res.knee is None else {"rate": res.knee.rate, "users": res.knee.users},
    }
    if len(pts) == 1:
        out.update(pts[0])
    return out


def _tag(p: Any) -> str:
    return f"rate{p.rate:g}" if p.rate is not None else f"users{p.users}" if p.users else "trace"


def sim_charts(res: SimulateResult) -> list[tuple[str, str]]:
    """(name, SVG) per load point: engine state over time, and the TTFT/TPOT CDFs."""
    charts = []
    for p in res.points:
        tag = _tag(p)
        tr = p.trace
        t = tr.step_end_s.tolist()
        series = [
            ("running", t, tr.step_running.tolist()),
            ("waiting", t, tr.step_waiting.tolist()),
            ("KV used (%)", t, (tr.step_kv_used * 100).tolist()),
        ]
        state = line_chart(
            f"{res.fit.model.name} · {tag}: engine state over time", "time (s)", "requests / %", series
        )
        done = ~np.isnan(tr.finish_s)
        ttft = np.sort((tr.first_token_s[done] - tr.arrival_s[done] + res.request_overhead_s) * 1e3)
        multi = done & (tr.output_tokens > 1)
        tpot = np.sort((tr.finish_s[multi] - tr.first_token_s[multi]) / (tr.output_tokens[multi] - 1) * 1e3)
        cdf = [
            ("TTFT", ttft.tolist(), (np.arange(1, ttft.size + 1) / max(ttft.size, 1)).tolist()),
            ("TPOT", tpot.tolist(), (np.arange(1, tpot.size + 1) / max(tpot.size, 1)).tolist()),
        ]
        cdf_svg = line_chart(
            f"{res.fit.model.name} · {tag}: latency CDF", "milliseconds", "share of requests", cdf
        )
        charts += [(f"timeseries_{tag}", state), (f"latency_cdf_{tag}", cdf_svg)]
    return charts


POINT_COLUMNS = (
    "load",
    "req/s",
    "out tok/s",
    "TTFT p50",
    "TTFT p95",
    "TTFT p99",
    "TPOT p50",
    "TPOT p95",
    "ITL p95",
    "E2E p95",
    "goodput",
    "preempt",
)


def point_rows(res: SimulateResult) -> list[list[str]]:
    """One row of formatted cells per load point (ms, E2E in s), for the terminal and HTML."""
    rows = []
    for p in res.points:
        s = p.stats
        load = f"{p.rate:g}/s" if p.rate is not None else f"{p.users} users" if p.users else "trace"
        rows.append(
            [
                load,
                f"{s.requests_per_s:.2f}",
                f"{s.output_tokens_per_s:,.0f}",
                f"{s.ttft.p50 * 1e3:,.0f}",
                f"{s.ttft.p95 * 1e3:,.0f}",
                f"{s.ttft.p99 * 1e3:,.0f}",
                f"{s.tpot.p50 * 1e3:,.1f}",
                f"{s.tpot.p95 * 1e3:,.1f}",
                f"{s.itl.p95 * 1e3:,.1f}",
                f"{s.e2e.p95:,.1f}s",
                f"{s.goodput_share:.0%}",
                str(s.preemptions),
            ]
        )
    return rows


def simulate_report_html(res: SimulateResult) -> str:
    d = sim_to_dict(res)
    head = (
        f"<h1>gpusizer simulate — {escape(d['model'])}</h1><p>{d['gpus']}× {escape(d['gpu'])} · {escape(d['quant'])}"
        f" · {escape(d['engine'])} · KV pool {d['kv_cache_tokens']:,} tokens · efficiency {escape(d['efficiency'])}</p>"
    )
    table = table_html(POINT_COLUMNS, point_rows(res))
    charts = "".join(f'<figure class="chart" id="{escape(n)}">{svg}</figure>' for n, svg in sim_charts(res))
    return document(
        f"gpusizer simulate — {d['model']}",
        head
        + "<h2>Latency percentiles (ms; E2E in s) and throughput</h2>"
        + table
        + "<h2>Charts</h2>"
        + f'<div class="charts">{charts}</div>',
    )
