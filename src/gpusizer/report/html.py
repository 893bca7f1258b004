"""Self-contained HTML: the planner page's body and every ``--report`` file. Inline CSS and
inline SVG only — no script or style from elsewhere — so a report opens from disk offline
and a browser shows the same charts the web page does. Pure: dicts in, strings out."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from gpusizer.report.charts import line_chart, scatter_chart

__all__ = ["COPY_SCRIPT", "GENERATOR", "document", "plan_charts", "plan_sections", "table_html", "vram_bar"]

CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td.l,th.l{text-align:left} .error{color:#b00} .muted{color:#666;font-size:90%}
pre{background:#f4f4f4;padding:8px;white-space:pre-wrap} label{margin-right:1em}
.charts{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0} figcaption{font-size:90%;color:#555}"""


# The copy buttons: the only script a report carries, inline.
COPY_SCRIPT = """<script>
document.addEventListener('click', function (e) {
  var b = e.target.closest('button.copy'); if (!b) return;
  var text = document.getElementById(b.dataset.target).innerText;
  var done = function () { b.textContent = 'Copied'; setTimeout(function () { b.textContent = 'Copy'; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done); }
  else { var t = document.createElement('textarea'); t.value = text; document.body.appendChild(t); t.select();
         document.execCommand('copy'); t.remove(); done(); }
});
</script>"""


# Marks a file as written by gpusizer, so ``--report`` may replace it (and nothing else).
GENERATOR = '<meta name="generator" content="gpusizer">'


def document(title: str, body: str, *, head_extra: str = "") -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{GENERATOR}<title>{escape(title)}</title>'
        f"<style>{CSS}</style>{head_extra}</head><body>{body}{COPY_SCRIPT}</body></html>"
    )


def table_html(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    left: int = 1,
    text_cols: Sequence[int] = (),
    cls: str = "",
) -> str:
    """A plain table; the first ``left`` columns and ``text_cols`` are left-aligned (text),
    the rest are numbers."""

    def cell(tag: str, i: int, v: Any) -> str:
        lft = i < left or i in text_cols
        return f"<{tag}{' class=l' if lft else ''}>{escape('—' if v is None else str(v))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table{f' class={cls}' if cls else ''}><tr>{head}</tr>{body}</table>"


def vram_bar(pick: dict[str, Any]) -> str:
    """A stacked bar of one GPU's memory: weights, KV for the users, spare KV pool,
    activations, free."""
    g = pick["per_gpu_gib"]
    parts = [
        ("weights", g["weights"], "#1f77b4"),
        ("KV (users)", g["kv_needed"], "#2ca02c"),
        ("KV pool spare", max(g["kv_pool"] - g["kv_needed"], 0), "#98df8a"),
        ("activations", g["activation"], "#9467bd"),
        ("free", max(g["free"], 0), "#bbbbbb"),
    ]
    total = max(g["capacity"], 1e-9)
    x = 0.0
    rects, legend = [], []
    for i, (name, gib, colour) in enumerate(parts):
        w = 700 * gib / total
        rects.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="28" fill="{colour}">'
            f"<title>{name}: {gib:.1f} GiB</title></rect>"
        )
        legend.append(
            f'<text x="{i * 150}" y="48" font-size="12" fill="{colour}">■ {name} {gib:.1f} GiB</text>'
        )
        x += w
    return (
        f'<svg class="vram" width="760" height="56" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="sans-serif">{"".join(rects)}{"".join(legend)}</svg>'
    )


def _pick_rows(result: dict[str, Any]) -> list[list[Any]]:
    rows = []
    pct = f"p{result['percentile']}"
    for name, p in result["picks"].items():
        if not p:
            continue
        hw = (
            f"{p['replicas']} × " if p["replicas"] > 1 else ""
        ) + f"{p['gpus_per_replica']}× {p['gpu_name']}"
        if p["engine"] != "vllm":
            hw += f" ({p['engine']})"
        sim = p.get("simulated") or {}
        rows.append(
            [
                name.replace("_", " "),
                hw,
                p["quant"],
                f"{p['usd_per_hour']:.2f}",
                "—" if p["cloud_usd_per_hour"] is None else f"{p['cloud_usd_per_hour']:.2f}",
                f"{p['usd_per_million_output_tokens']:.2f}",
                f"{p['ttft_ms']:,.0f}",
                f"{p['tpot_ms']:.1f}",
                f"{sim['ttft_ms'][pct]:,.0f}" if sim else "—",
                f"{sim['tpot_ms'][pct]:.1f}" if sim else "—",
                f"{p['max_concurrency']:.1f}",
            ]
        )
    return rows


def _curve_svgs(result: dict[str, Any]) -> tuple[str, str] | None:
    curve = result.get("curve") or []
    if not curve:
        return None
    users = [c["users"] for c in curve]
    slo = result["slo"]
    planned = [("planned users", float(result["users"]))]
    ttft = line_chart(
        "TTFT vs concurrent users (cheapest plan)",
        "concurrent users",
        "TTFT, ms",
        [("TTFT", users, [c["ttft_ms"] for c in curve])],
        hlines=[(f"SLO {slo['ttft_ms']:,.0f} ms", slo["ttft_ms"])] if slo.get("ttft_ms") else [],
        vlines=planned,
        width=560,
        height=320,
        markers=True,
    )
    tpot = line_chart(
        "TPOT vs concurrent users (cheapest plan)",
        "concurrent users",
        "TPOT, ms",
        [("TPOT", users, [c["tpot_ms"] for c in curve])],
        hlines=[(f"SLO {slo['tpot_ms']:,.1f} ms", slo["tpot_ms"])] if slo.get("tpot_ms") else [],
        vlines=planned,
        width=560,
        height=320,
        markers=True,
    )
    return ttft, tpot


def _curve_charts(result: dict[str, Any]) -> str:
    svgs = _curve_svgs(result)
    if svgs is None:
        return ""
    ttft, tpot = svgs
    return (
        '<div class="charts">'
        f'<figure class="chart" id="ttft-curve">{ttft}</figure>'
        f'<figure class="chart" id="tpot-curve">{tpot}</figure></div>'
        '<p class="muted">Analytic step times at each concurrency (no queueing), up to the users the KV '
        "pool holds at full context; the dashed red line is the target.</p>"
    )


def _pareto_svg(result: dict[str, Any]) -> str:
    cands = result.get("candidates") or []
    if not cands:
        return ""
    cheapest = result["picks"].get("cheapest") or {}

    def tip(c: dict[str, Any]) -> str:
        return f"{c['label']}: ${c['usd_per_hour']:.2f}/h, TPOT {c['tpot_ms']:.1f} ms, TTFT {c['ttft_ms']:,.0f} ms"

    others = [(c["tpot_ms"], c["usd_per_hour"], tip(c)) for c in cands if not c["pareto"]]
    front = [(c["tpot_ms"], c["usd_per_hour"], tip(c)) for c in cands if c["pareto"]]
    groups: list[tuple[str, str, list[tuple[float, float, str]]]] = [
        ("candidates that meet the targets", "#9ecae1", others),
        ("Pareto front (cost, TPOT, precision)", "#ff7f0e", front),
    ]
    if cheapest:
        groups.append(
            ("cheapest pick", "#d62728", [(cheapest["tpot_ms"], cheapest["usd_per_hour"], "cheapest pick")])
        )
    return scatter_chart(
        "Cost vs time per output token",
        "TPOT at the planned load, ms",
        "$/hour (log scale)",
        groups,
        log_y=True,
        width=760,
        height=420,
    )


def _pareto_chart(result: dict[str, Any]) -> str:
    svg = _pareto_svg(result)
    return f'<figure class="chart" id="pareto">{svg}</figure>' if svg else ""


def plan_charts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, SVG) of the plan's charts, for ``--plot DIR``: VRAM bar, latency curves, Pareto."""
    out: list[tuple[str, str]] = []
    cheapest = result["picks"].get("cheapest")
    if cheapest:
        out.append(("vram_cheapest", vram_bar(cheapest)))
    curves = _curve_svgs(result)
    if curves:
        out += [("ttft_vs_users", curves[0]), ("tpot_vs_users", curves[1])]
    pareto = _pareto_svg(result)
    if pareto:
        out.append(("cost_vs_tpot", pareto))
    return out


def plan_sections(result: dict[str, Any]) -> str:
    """Picks, VRAM bar, latency curves, Pareto scatter, rejections, rules, launch commands."""
    slo = result["slo"]
    targets = []
    if slo.get("ttft_ms"):
        targets.append(f"TTFT ≤ {slo['ttft_ms']:,.0f} ms")
    if slo.get("tpot_ms"):
        targets.append(f"TPOT ≤ {slo['tpot_ms']:,.1f} ms")
    head = (
        f"<p><b>{escape(result['model'])}</b> for {result['users']} concurrent users at "
        f"{result['context']:,} tokens (prompt {result['input_len']:,}, output {result['output_len']:,})"
        + (" · " + " · ".join(targets) if targets else "")
        + f'</p><p class="muted">searched {result["searched"]} candidates · {result["feasible"]} meet memory '
        f"and targets · {escape(result['method'])}</p>"
    )
    pct = f"p{result['percentile']}"
    out = [head]
    if not result["picks"].get("cheapest"):
        out.append('<p class="error">No feasible plan — see why everything lost below.</p>')
    else:
        out.append("<h2>Top picks</h2>")
        out.append(
            table_html(
                [
                    "pick",
                    "hardware",
                    "weights",
                    "$/hour",
                    "cloud $/h",
                    "$/M out tok",
                    "TTFT ms",
                    "TPOT ms",
                    f"{pct} TTFT sim",
                    f"{pct} TPOT sim",
                    "users fit",
                ],
                _pick_rows(result),
                left=3,
                cls="picks",
            )
        )
        cheapest = result["picks"]["cheapest"]
        out.append("<h2>Cheapest plan: memory per GPU</h2>" + vram_bar(cheapest))
        out.append("<h2>Latency as users grow</h2>" + _curve_charts(result))
        out.append("<h2>Cost against latency</h2>" + _pareto_chart(result))
    if result["rejections"]:
        out.append("<h2>Why the others lost</h2>")
        out.append(
            table_html(
                ["reason", "count", "example"],
                [[r["reason"], r["count"], r["example"]] for r in result["rejections"]],
                left=1,
                text_cols=(2,),
            )
        )
    out.append(
        "<h2>The guide's rules</h2><ul class=findings>"
        + "".join(
            f"<li>{'✓' if f['holds'] else '!'} <b>{escape(f['rule'])}</b>: {escape(f['evidence'])}"
            + (f" <i>{escape(f['advice'])}</i>" if f.get("advice") else "")
            + "</li>"
            for f in result["findings"]
        )
        + "</ul>"
    )
    launch = result.get("launch") or {}
    if launch:
        out.append("<h2>Launch</h2>")
        for i, (name, cmd) in enumerate(launch.items()):
            out.append(
                f'<h3>{escape(name)}</h3><pre id="launch-{i}" class="launch">{escape(cmd)}</pre>'
                f'<button type="button" class="copy" data-target="launch-{i}">Copy</button>'
            )
    return "".join(out)
