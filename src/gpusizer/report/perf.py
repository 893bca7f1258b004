"""Presenting perf rows: JSON-ready dicts and a rich table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from gpusizer.api import PerfResult
from gpusizer.domain.scenario import SPEC_TPOT_UNCERTAINTY, Deployment
from gpusizer.report.layout import fold_columns

__all__ = ["perf_to_dict", "render_perf"]


def perf_to_dict(res: PerfResult) -> dict[str, Any]:
    dep = res.fit.deployment
    return {
        "schema_version": 1,
        "model": res.fit.model.name,
        "gpu": dep.gpu.key,
        "gpus": dep.layout.gpus,
        "tp": dep.layout.tp,
        "pp": dep.layout.pp,
        "engine": dep.engine,
        "spec_tokens": dep.spec_tokens,
        "spec_accept": dep.spec_accept if dep.spec_tokens else None,
        "quant": dep.quant.label,
        "input_len": res.input_len,
        "output_len": res.output_len,
        "efficiency": res.efficiency_row,
        "uncertainty_pct": None if res.uncertainty is None else round(100 * res.uncertainty, 1),
        "link": res.link_name,
        "max_concurrency": round(res.fit.estimate.max_concurrency, 2),
        "rows": [
            {
                "batch": r.batch,
                "ttft_ms": round(r.ttft_s * 1e3, 3),
                "tpot_ms": round(r.tpot_s * 1e3, 3),
                "ttft_loaded_ms": round(r.ttft_loaded_s * 1e3, 3),
                "tpot_loaded_ms": round(r.tpot_loaded_s * 1e3, 3),
                "prefill_tokens_per_s": round(r.prefill_tokens_per_s, 1),
                "decode_tokens_per_s": round(r.decode_tokens_per_s, 2),
                "output_tokens_per_s": round(r.output_tokens_per_s, 1),
                "bound": r.bound,
                "reason": r.reason,
                "arithmetic_intensity": round(r.decode_step.arithmetic_intensity, 2),
            }
            for r in res.rows
        ],
    }


def spec_line(dep: Deployment) -> str:
    """What the speculative-decoding settings mean for the step times shown."""
    return (
        f"speculative decoding: {dep.spec_tokens} drafted token(s) per step, {dep.spec_accept:.2f} kept on"
        " average (--spec-accept); each step runs the draft layer once per drafted token and verifies"
        f" {dep.spec_tokens + 1} tokens per sequence in one pass; TPOT = step time / tokens kept; the ± band"
        f" is the median TPOT error on published MTP runs never fitted on ({SPEC_TPOT_UNCERTAINTY:.0%})"
    )


def render_perf(res: PerfResult, console: Console) -> None:
    dep = res.fit.deployment
    console.print(
        f"[bold]{res.fit.model.name}[/] · {dep.quant.label} · {dep.layout.gpus}× {dep.gpu.name} · {dep.engine}"
        f" · {res.input_len:,} in / {res.output_len:,} out"
    )
    if res.uncertainty is not None:
        band = f"± {100 * res.uncertainty:.0f} % (median out-of-sample TPOT error of these factors, data/efficiency.yaml)"
    else:
        band = "uncertainty unknown: default factors, not yet fitted for this engine"
    link = f" · link {res.link_name}" if res.link_name else ""
    console.print(f"[dim]efficiency factors: {res.efficiency_row} (data/efficiency.yaml) · {band}{link}[/]")
    if dep.spec_tokens:
        console.print(f"[dim]{spec_line(dep)}[/]")
    if res.request_overhead_s:
        console.print(
            f"[dim]each TTFT includes {res.request_overhead_s * 1e3:.0f} ms outside the engine's steps"
            " (API server: HTTP, chat template, tokenisation; request_overhead_s, fitted)[/]"
        )
    t = Table(
        title="Latency (ms) and throughput by batch size B, analytic. idle: one request alone; "
        "loaded: B closed-loop users, their prefills queued and interleaved with the decodes",
        title_justify="left",
    )
    cols = (
        "batch",
        "TTFT idle",
        "TTFT loaded",
        "TPOT idle",
        "TPOT loaded",
        "tok/s per user",
        "output tok/s",
    )
    for col in (*cols, "bound"):
        t.add_column(col, justify="right" if col != "bound" else "left")
    pm = f" ±{100 * res.uncertainty:.0f}%" if res.uncertainty is not None else ""
    for r in res.rows:
        t.add_row(
            str(r.batch),
            f"{r.ttft_s * 1e3:,.1f}",
            f"{r.ttft_loaded_s * 1e3:,.1f}{pm}",
            f"{r.tpot_s * 1e3:,.2f}",
            f"{r.tpot_loaded_s * 1e3:,.2f}{pm}",
            f"{1 / r.tpot_loaded_s:,.1f}",
            f"{r.batch / r.tpot_loaded_s:,.0f}",
            r.bound,
        )
    console.print(fold_columns(t, console.width))
    if res.rows:
        console.print(f"batch {res.rows[0].batch}: {res.rows[0].reason}")
        if len(res.rows) > 1:
            console.print(f"batch {res.rows[-1].batch}: {res.rows[-1].reason}")
    if res.fit.estimate.max_concurrency < (res.rows[-1].batch if res.rows else 1):
        console.print(
            "[yellow]note:[/] batches larger than the KV cache holds at this length are shown for reference"
        )
