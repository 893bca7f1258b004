"""One self-contained HTML report per command (``--report PATH.html``): the same tables and
charts the CLI and the web page show, built from the same result dicts. Pure."""

from __future__ import annotations

from html import escape
from typing import Any

from gpusizer.api import FitResult, PerfResult, SimulateResult
from gpusizer.report.charts import line_chart
from gpusizer.report.fit import fit_to_dict
from gpusizer.report.html import document, plan_sections, table_html, vram_bar
from gpusizer.report.perf import perf_to_dict
from gpusizer.report.roofline_svg import roofline_svg
from gpusizer.report.simulate import simulate_report_html

__all__ = ["fit_report", "perf_report", "plan_report", "simulate_report"]


def plan_report(result: dict[str, Any]) -> str:
    return document(
        f"gpusizer plan — {result['model']}",
        f"<h1>gpusizer plan — {escape(result['model'])}</h1>" + plan_sections(result),
    )


def fit_report(res: FitResult) -> str:
    d = fit_to_dict(res)
    head = (
        f"<h1>gpusizer fit — {escape(d['model'])}</h1><p>{d['gpus']}× {escape(d['gpu_name'])} · "
        f"{escape(d['quant'])} · KV {escape(d['kv_dtype'])} · {escape(d['engine'])} · "
        f"{d['users']} users × {d['max_model_len']:,} tokens — "
        + ("<b>fits</b>" if d["fits"] else '<b class="error">does not fit</b>')
        + "</p>"
    )
    bars = []
    for g in d["per_gpu"]:
        pick = {
            "per_gpu_gib": {
                "capacity": g["capacity_gib"],
                "weights": g["weights_gib"],
                "kv_needed": min(g["kv_needed_gib"], g["kv_cache_gib"]),
                "kv_pool": g["kv_cache_gib"],
                "activation": g["activation_gib"]
                + g["non_torch_gib"]
                + g["cuda_graph_gib"]
                + g["cuda_context_gib"],
                "free": g["free_gib"],
            }
        }
        bars.append(
            f"<h3>stage {g['stage']} (layers {g['layers'][0]}–{g['layers'][-1]})</h3>" + vram_bar(pick)
        )
    rows = [
        ["weights (all GPUs)", f"{d['total_weights_gib']:.2f}"],
        ["KV cache pool per GPU", f"{d['kv_cache_gib']:.2f}"],
        ["KV needed per GPU for the users", f"{d['kv_needed_gib']:.2f}"],
        [
            "activations + runtime per GPU (CUDA graphs, context, non-torch)",
            f"{d['activation_gib'] + d['non_torch_gib'] + d['cuda_graph_gib'] + d['cuda_context_gib']:.2f}",
        ],
        ["free per GPU", f"{d['free_gib']:.2f}"],
        ["KV bytes per token", f"{d['kv_bytes_per_token']:,}"],
        ["users that fit at full context", f"{d['max_concurrency']:.2f}"],
        ["the guide's rule of thumb (GiB)", f"{d['rule_of_thumb_gib']:.2f}"],
    ]
    notes = "".join(f"<li>{escape(str(n))}</li>" for n in [*d["problems"], *d["notes"], *d["defaults_used"]])
    return document(
        f"gpusizer fit — {d['model']}",
        head
        + "<h2>Memory per GPU</h2>"
        + "".join(bars)
        + table_html(["", "GiB"], rows)
        + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""),
    )


def perf_report(res: PerfResult) -> str:
    d = perf_to_dict(res)
    rows = [
        [
            r["batch"],
            f"{r['ttft_ms']:,.1f}",
            f"{r['tpot_ms']:.2f}",
            f"{r['decode_tokens_per_s']:.1f}",
            f"{r['output_tokens_per_s']:,.0f}",
            r["bound"],
        ]
        for r in d["rows"]
    ]
    batches = [r["batch"] for r in d["rows"]]
    latency = line_chart(
        "Time per output token and total throughput by batch",
        "batch (concurrent sequences)",
        "TPOT ms / output tokens per s ÷ 100",
        [
            ("TPOT ms", batches, [r["tpot_ms"] for r in d["rows"]]),
            ("output tok/s ÷ 100", batches, [r["output_tokens_per_s"] / 100 for r in d["rows"]]),
        ],
        markers=True,
    )
    head = (
        f"<h1>gpusizer perf — {escape(d['model'])}</h1><p>{d['gpus']}× {escape(d['gpu'])} · TP {d['tp']} · "
        f"PP {d['pp']} · {escape(d['quant'])} · {escape(d['engine'])} · {d['input_len']:,} in / "
        f"{d['output_len']:,} out · efficiency {escape(d['efficiency'])}</p>"
    )
    return document(
        f"gpusizer perf — {d['model']}",
        head
        + table_html(
            ["batch", "TTFT ms", "TPOT ms", "tok/s per user", "output tok/s", "bound"], rows, text_cols=(5,)
        )
        + f'<div class="charts"><figure class="chart">{latency}</figure>'
        f'<figure class="chart">{roofline_svg(res)}</figure></div>',
    )


def simulate_report(res: SimulateResult) -> str:
    return simulate_report_html(res)
