"""Tables for measured load points, shared by ``bench``, ``runs`` and ``compare``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

__all__ = ["compare_rows", "compare_table", "points_table"]


def _ms(d: dict[str, Any] | None, key: str, fmt: str) -> str:
    v = (d or {}).get(key)
    return "—" if v is None or v != v else format(v, fmt)  # v != v: NaN, nothing measured


def points_table(points: Sequence[dict[str, Any]], *, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    cols = ["load", "ok", "failed", "req/s", "out tok/s", "TTFT p50", "TTFT p95", "TPOT p50", "TPOT p95"]
    cols += ["ITL p95", "E2E p95", "goodput"]
    reasoning = any("time_to_first_answer_token_ms" in p for p in points)
    if reasoning:
        cols.insert(7, "answer p50")
    sending = any("client_send_ms" in p for p in points)
    if sending:
        cols.append("send p50")  # the client's own time before the request was on the wire
    for col in cols:
        t.add_column(col, justify="right")
    for p in points:
        row = [
            p["load"],
            str(p["completed"]),
            str(p["failed"]),
            f"{p['requests_per_s']:.2f}",
            f"{p['output_tokens_per_s']:,.1f}",
            _ms(p["ttft_ms"], "p50", ",.1f"),
            _ms(p["ttft_ms"], "p95", ",.1f"),
            _ms(p["tpot_ms"], "p50", ",.2f"),
            _ms(p["tpot_ms"], "p95", ",.2f"),
            _ms(p["itl_ms"], "p95", ",.2f"),
            _ms(p["e2e_ms"], "p95", ",.0f"),
            f"{p['goodput']:.0%}",
        ]
        if reasoning:
            row.insert(7, _ms(p.get("time_to_first_answer_token_ms"), "p50", ",.1f"))
        if sending:
            row.append(_ms(p.get("client_send_ms"), "p50", ",.1f"))
        t.add_row(*row)
    return t


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


def compare_table(points: Sequence[dict[str, Any]]) -> Table:
    c = Table(title="Measured vs predicted (gpusizer simulate at the same load)", title_justify="left")
    for col in ("load", "metric", "measured", "predicted", "error"):
        c.add_column(col, justify="right")
    for p in points:
        for r in compare_rows(p):
            err = "—" if r["error_pct"] is None else f"{r['error_pct']:+.0f} %"
            c.add_row(r["load"], r["metric"], f"{r['measured']:,.2f}", f"{r['predicted']:,.2f}", err)
    return c
