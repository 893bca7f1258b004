"""The measured load points as one table, for the terminal (``bench``, ``runs``) and the HTML
report alike: the same columns, the same formatting. Pure string building."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "SERVER_CLOCK_COLUMNS",
    "compare_cells",
    "compare_rows",
    "ms_cell",
    "point_table",
    "server_clock_cells",
]


def ms_cell(d: dict[str, Any] | None, key: str, fmt: str) -> str:
    """One percentile of a stored distribution; "—" where nothing was measured."""
    v = (d or {}).get(key)
    return "—" if v is None or v != v else format(v, fmt)  # v != v: NaN


def point_table(points: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Column names and rows. Columns that only some runs have appear when one does: the
    status (an interrupted or abandoned point), the requests cut off by an interrupt
    (neither ok nor failed), the time to the first answer token (a reasoning model), the
    client's send delay (runs that traced it)."""
    status = any(p.get("status", "complete") != "complete" for p in points)
    cut = any(p.get("cancelled") for p in points)
    reasoning = any("time_to_first_answer_token_ms" in p for p in points)
    sending = any("client_send_ms" in p for p in points)
    cols = ["load"] + ["status"] * status + ["ok", "failed"] + ["cancelled"] * cut
    cols += ["req/s", "out tok/s", "TTFT p50", "TTFT p95"]
    cols += ["answer p50"] * reasoning + ["TPOT p50", "TPOT p95", "ITL p95", "E2E p95", "goodput"]
    cols += ["send p50"] * sending
    rows = []
    for p in points:
        row = [str(p["load"])] + [str(p.get("status", "complete"))] * status
        row += [str(p["completed"]), str(p["failed"])] + [str(p.get("cancelled") or 0)] * cut
        row += [
            f"{p['requests_per_s']:.2f}",
            f"{p['output_tokens_per_s']:,.1f}",
            ms_cell(p["ttft_ms"], "p50", ",.1f"),
            ms_cell(p["ttft_ms"], "p95", ",.1f"),
        ]
        row += [ms_cell(p.get("time_to_first_answer_token_ms"), "p50", ",.1f")] * reasoning
        row += [
            ms_cell(p["tpot_ms"], "p50", ",.2f"),
            ms_cell(p["tpot_ms"], "p95", ",.2f"),
            ms_cell(p["itl_ms"], "p95", ",.2f"),
            ms_cell(p["e2e_ms"], "p95", ",.0f"),
            f"{p['goodput']:.0%}",
        ]
        row += [ms_cell(p.get("client_send_ms"), "p50", ",.1f")] * sending
        rows.append(row)
    return cols, rows


def compare_rows(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Measured beside predicted for one point, with the signed error of the prediction."""
    pred = p["predicted"]
    rows = []
    for metric, meas, est in (
        ("TTFT p50 ms", p["ttft_ms"]["p50"], pred["ttft_ms"]["p50"]),
        ("TPOT p50 ms", p["tpot_ms"]["p50"], pred["tpot_ms"]["p50"]),
        ("output tok/s", p["output_tokens_per_s"], pred["output_tokens_per_s"]),
    ):
        err = 100 * (est - meas) / meas if meas else None
        rows.append(
            {"load": p["load"], "metric": metric, "measured": meas, "predicted": est, "error_pct": err}
        )
    return rows


def compare_cells(points: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Rows of load, metric, measured, predicted, error for the points that have a prediction."""
    return [
        [
            r["load"],
            r["metric"],
            f"{r['measured']:,.2f}",
            f"{r['predicted']:,.2f}",
            "—" if r["error_pct"] is None else f"{r['error_pct']:+.0f} %",
        ]
        for p in points
        if "predicted" in p
        for r in compare_rows(p)
    ]


SERVER_CLOCK_COLUMNS = [
    "load",
    "server's figure",
    "server TTFT",
    "of it queued",
    "client TTFT",
    "server TPOT",
    "client TPOT",
]


def server_clock_cells(points: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The server's own figures beside the client's, where it reports them: llama.cpp's
    per-response timings (medians; its TTFT figure is prompt processing alone, without any
    queueing), and vLLM's or SGLang's TTFT, queue-time and inter-token-latency histograms from
    /metrics (means over the run, warm-up requests included)."""
    rows = []
    for p in points:
        load = str(p["load"])
        timed = p.get("server_reported")
        if timed:
            rows.append(
                [
                    load,
                    "per-response timings, p50 (TTFT: prefill only)",
                    ms_cell(timed.get("prefill_ms"), "p50", ",.1f"),
                    "—",
                    ms_cell(p["ttft_ms"], "p50", ",.1f"),
                    ms_cell(timed.get("tpot_ms"), "p50", ",.2f"),
                    ms_cell(p["tpot_ms"], "p50", ",.2f"),
                ]
            )
        hist = p.get("server") or {}
        if hist.get("ttft_mean_ms") is not None or hist.get("itl_mean_ms") is not None:
            rows.append(
                [
                    load,
                    "/metrics histograms, mean",
                    ms_cell(hist, "ttft_mean_ms", ",.1f"),
                    ms_cell(hist, "queue_mean_ms", ",.1f"),
                    ms_cell(p["ttft_ms"], "mean", ",.1f"),
                    ms_cell(hist, "itl_mean_ms", ",.2f"),
                    ms_cell(p["tpot_ms"], "mean", ",.2f"),
                ]
            )
    return rows
