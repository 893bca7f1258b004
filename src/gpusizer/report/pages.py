"""One self-contained HTML report per command (``--report PATH.html``): the same tables and
charts the CLI and the web page show, built from the same result dicts. Pure."""

from __future__ import annotations

from html import escape
from typing import Any

from gpusizer.api import FitResult, PerfResult, SimulateResult
from gpusizer.report.bench import SERVER_CLOCK_COLUMNS, compare_cells, point_table, server_clock_cells
from gpusizer.report.charts import line_chart
from gpusizer.report.fit import fit_to_dict
from gpusizer.report.html import document, plan_sections, table_html, vram_bar
from gpusizer.report.perf import perf_to_dict
from gpusizer.report.roofline_svg import roofline_svg
from gpusizer.report.simulate import simulate_report_html

__all__ = ["bench_report", "fit_report", "perf_report", "plan_report", "simulate_report"]


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


def _load_axis(points: list[dict[str, Any]]) -> tuple[list[float], str]:
    """The sweep's own x axis: concurrency or offered rate when every point has one kind,
    else the points' order."""
    kinds = {str(p["load"]).split("=")[0] for p in points}
    if len(kinds) == 1 and kinds <= {"concurrency", "rate"}:
        try:
            xs = [float(str(p["load"]).split("=")[1]) for p in points]
        except (IndexError, ValueError):
            xs = []
        if xs:
            return xs, "concurrent requests" if kinds == {"concurrency"} else "offered rate (requests/s)"
    return [float(i) for i in range(1, len(points) + 1)], "load point (" + ", ".join(
        p["load"] for p in points
    ) + ")"


def bench_report(points: list[dict[str, Any]], *, url: str, model: str, db: str) -> str:
    """Measured load points (and gpusizer's prediction beside them, when asked for)."""

    cols, rows = point_table(points)
    body = (
        f"<h1>gpusizer bench — {escape(model)}</h1><p>{escape(url)} · runs stored in {escape(db)}</p>"
        + table_html(cols, rows, left=2 if "status" in cols else 1)
        + "<p>Milliseconds. TTFT and E2E are timed from the moment each request was on the wire; "
        "<i>send</i> is the client's own time before that (building the request, pool waits, new "
        "connections), kept out of the server's latencies.</p>"
    )
    fails = [
        f"{p['load']}: " + ", ".join(f"{n} × {c}" for c, n in p["failures"].items())
        for p in points
        if p.get("failures")
    ]
    if fails:
        body += "<h2>Failed requests</h2><ul>" + "".join(f"<li>{escape(f)}</li>" for f in fails) + "</ul>"
    clock_rows = server_clock_cells(points)
    if clock_rows:
        body += (
            "<h2>What the server's own clock said</h2>"
            + table_html(SERVER_CLOCK_COLUMNS, clock_rows, left=2)
            + "<p>Milliseconds: the server's own figures (llama.cpp's per-response timings, or the TTFT "
            "and inter-token-latency histograms of vLLM's and SGLang's /metrics) beside the client's.</p>"
        )
    servers = [(p["load"], p.get("server") or {}) for p in points]
    if any(s.get("samples") for _, s in servers):
        body += "<h2>What the server's /metrics said</h2>" + table_html(
            ["load", "samples", "max running", "max waiting", "max KV use", "preemptions"],
            [
                [
                    ld,
                    s.get("samples"),
                    s.get("max_running"),
                    s.get("max_waiting"),
                    None if s.get("max_kv_usage") is None else f"{s['max_kv_usage']:.0%}",
                    s.get("preemptions"),
                ]
                for ld, s in servers
            ],
        )
    if len(points) > 1:
        xs, xlabel = _load_axis(points)

        def col(key: str, pct: str) -> list[float]:
            return [float((p[key] or {}).get(pct) or "nan") for p in points]

        latency = line_chart(
            "Latency across the sweep",
            xlabel,
            "milliseconds",
            [
                ("TTFT p50", xs, col("ttft_ms", "p50")),
                ("TTFT p95", xs, col("ttft_ms", "p95")),
                ("TPOT p50", xs, col("tpot_ms", "p50")),
                ("TPOT p95", xs, col("tpot_ms", "p95")),
            ],
            markers=True,
        )
        throughput = line_chart(
            "Output throughput across the sweep",
            xlabel,
            "output tokens/s",
            [("measured", xs, [float(p["output_tokens_per_s"]) for p in points])],
            markers=True,
        )
        body += (
            f'<h2>Latency and throughput across the sweep</h2><figure class="chart">{latency}</figure>'
            f'<figure class="chart">{throughput}</figure>'
        )
    cmp_rows = compare_cells(points)
    if cmp_rows:
        body += "<h2>Measured vs predicted</h2>" + table_html(
            ["load", "metric", "measured", "predicted", "error"], cmp_rows, left=2
        )
    return document(f"gpusizer bench — {model}", body)
