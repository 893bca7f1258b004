"""Presenting a plan: the top picks, why everything else lost, the guide's findings and the
launch commands — as JSON (schema-versioned) or rich tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from gpusizer.plan.evaluate import Accepted
from gpusizer.plan.rank import group_rejections
from gpusizer.planning import PlanResult, label_of
from gpusizer.units import GIB

__all__ = ["PLAN_SCHEMA_VERSION", "plan_to_dict", "plan_to_markdown", "render_plan"]

PLAN_SCHEMA_VERSION = 1


def _plan_dict(a: Accepted, res: PlanResult | None = None) -> dict[str, Any]:
    lim = a.memory.limiting
    sim = res.simulated.get(label_of(a, with_engine=True)) if res is not None else None
    simulated = None
    if sim is not None:
        simulated = {
            "ttft_ms": sim.ttft.as_ms(),
            "tpot_ms": sim.tpot.as_ms(),
            "output_tokens_per_s": round(sim.output_tokens_per_s, 1),
            "preemptions": sim.preemptions,
        }
    return {
        "simulated": simulated,
        "gpu": a.dep.gpu.key,
        "gpu_name": a.dep.gpu.name,
        "gpus": a.gpus,
        "replicas": a.replicas,
        "gpus_per_replica": a.dep.layout.gpus,
        "tp": a.dep.layout.tp,
        "pp": a.dep.layout.pp,
        "engine": a.dep.engine,
        "quant": a.dep.quant.label,
        "capex_usd": None if a.dep.gpu.list_price_usd is None else round(a.dep.gpu.list_price_usd * a.gpus),
        "usd_per_hour": round(a.usd_per_hour, 4),
        "owned_usd_per_hour": None if a.owned_usd_per_hour is None else round(a.owned_usd_per_hour, 4),
        "cloud_usd_per_hour": None if a.cloud_usd_per_hour is None else round(a.cloud_usd_per_hour, 4),
        "cost_basis": a.cost_basis,
        "usd_per_million_output_tokens": round(a.usd_per_million_output_tokens, 4),
        "ttft_ms": round(a.perf.ttft_s * 1e3, 1),
        "tpot_ms": round(a.perf.tpot_s * 1e3, 2),
        "tokens_per_s_per_user": round(a.perf.decode_tokens_per_s, 1),
        "output_tokens_per_s": round(a.perf.output_tokens_per_s, 1),
        "bound": a.perf.bound,
        "max_concurrency": round(a.memory.max_concurrency, 2),
        "per_gpu_gib": {
            "capacity": round(lim.capacity_bytes / GIB, 2),
            "weights": round(lim.weights_bytes / GIB, 2),
            "kv_needed": round(lim.kv_needed_bytes / GIB, 2),
            "kv_pool": round(lim.kv_pool_bytes / GIB, 2),
            "activation": round(lim.activation_bytes / GIB, 2),
            "free": round(lim.free_bytes / GIB, 2),
        },
    }


def plan_to_dict(res: PlanResult) -> dict[str, Any]:
    p = res.picks
    return {
        "schema_version": PLAN_SCHEMA_VERSION,
        "model": res.model.name,
        "context": res.context,
        "users": res.users,
        "input_len": res.input_len,
        "output_len": res.output_len,
        "slo": {
            "ttft_ms": res.slo.ttft_s and res.slo.ttft_s * 1e3,
            "tpot_ms": res.slo.tpot_s and res.slo.tpot_s * 1e3,
        },
        "searched": res.searched,
        "feasible": len(res.accepted),
        "picks": {
            "cheapest": _plan_dict(p.cheapest, res) if p.cheapest else None,
            "fastest": _plan_dict(p.fastest, res) if p.fastest else None,
            "best_per_token": _plan_dict(p.best_per_token, res) if p.best_per_token else None,
        },
        "pareto": [_plan_dict(a) for a in res.pareto],
        "rejections": [
            {"reason": r, "count": n, "example": ex} for r, n, ex in group_rejections(res.rejected)
        ],
        "findings": [
            {"rule": f.rule, "holds": f.holds, "evidence": f.evidence, "advice": f.advice}
            for f in res.findings
        ],
        "launch": res.launch,
        "percentile": res.percentile,
        "curve": [
            {"users": u, "ttft_ms": round(t * 1e3, 1), "tpot_ms": round(p * 1e3, 2)} for u, t, p in res.curve
        ],
        "candidates": [
            {
                "label": label_of(a, with_engine=True),
                "usd_per_hour": round(a.usd_per_hour, 4),
                "ttft_ms": round(a.perf.ttft_s * 1e3, 1),
                "tpot_ms": round(a.perf.tpot_s * 1e3, 2),
                "quant": a.dep.quant.fmt.key,
                "pareto": a in res.pareto,
            }
            for a in res.accepted
        ],
        "method": "memory: engine-accurate fit; speed: analytic step-time model at the planned concurrency, "
        "then the cheapest survivors verified by a continuous-batching simulation of the users "
        "(percentile SLOs); cost: owned hardware (list price over the years + power)",
    }


def render_plan(res: PlanResult, console: Console) -> None:
    slo = []
    if res.slo.ttft_s:
        slo.append(f"TTFT ≤ {res.slo.ttft_s * 1e3:,.0f} ms")
    if res.slo.tpot_s:
        slo.append(f"TPOT ≤ {res.slo.tpot_s * 1e3:,.1f} ms ({1 / res.slo.tpot_s:,.0f} tok/s per user)")
    console.print(
        f"[bold]{res.model.name}[/] for {res.users} concurrent users at {res.context:,} tokens "
        f"(prompt {res.input_len:,}, output {res.output_len:,})" + (f" · {' · '.join(slo)}" if slo else "")
    )
    how = (
        f"analytic step times, the cheapest then verified by simulating {res.users} users (p{res.percentile})"
        if res.simulated
        else "analytic step times at the planned concurrency"
    )
    console.print(
        f"[dim]searched {res.searched} candidates · {len(res.accepted)} meet memory"
        + (" and SLOs" if slo else "")
        + f" · speed: {how}[/]"
    )
    p = res.picks
    if p.cheapest is None:
        console.print("[bold red]No feasible plan.[/] Why everything lost:")
    else:
        t = Table(title="Top picks", title_justify="left")
        for col in (
            "pick",
            "hardware",
            "weights",
            "$/hour",
            "cloud $/h",
            "$/M out tok",
            "TTFT ms",
            "TPOT ms",
            f"p{res.percentile} TTFT sim",
            f"p{res.percentile} TPOT sim",
            "users fit",
            "VRAM/GPU",
        ):
            t.add_column(col, justify="left" if col in ("pick", "hardware", "weights") else "right")
        seen = []
        for name, a in (("cheapest", p.cheapest), ("fastest", p.fastest), ("best $/token", p.best_per_token)):
            if a is None:
                continue
            lim = a.memory.limiting
            used = lim.capacity_bytes - lim.free_bytes
            same = " (same)" if a in seen else ""
            seen.append(a)
            sim = res.simulated.get(label_of(a, with_engine=True))
            pct = f"p{res.percentile}"
            sim_ttft = f"{getattr(sim.ttft, pct) * 1e3:,.0f}" if sim else "—"
            sim_tpot = f"{getattr(sim.tpot, pct) * 1e3:,.1f}" if sim else "—"
            t.add_row(
                name + same,
                (f"{a.replicas} × " if a.replicas > 1 else "")
                + f"{a.dep.layout.gpus}× {a.dep.gpu.name}"
                + ("" if a.dep.engine == "vllm" else f" ({a.dep.engine})"),
                a.dep.quant.label,
                f"{a.usd_per_hour:,.2f}",
                f"{a.cloud_usd_per_hour:,.2f}" if a.cloud_usd_per_hour is not None else "—",
                f"{a.usd_per_million_output_tokens:,.2f}",
                f"{a.perf.ttft_s * 1e3:,.0f}",
                f"{a.perf.tpot_s * 1e3:,.1f}",
                sim_ttft,
                sim_tpot,
                f"{a.memory.max_concurrency:,.1f}",
                f"{used / GIB:,.1f}/{lim.capacity_bytes / GIB:,.0f} GiB",
            )
        console.print(t)
        c = p.cheapest
        lim = c.memory.limiting
        console.print(
            f"cheapest, per GPU: weights {lim.weights_bytes / GIB:.2f} GiB · KV for "
            f"{res.users}×{res.context:,} {lim.kv_needed_bytes / GIB:.2f} GiB (pool {lim.kv_pool_bytes / GIB:.2f}) · "
            f"activations {lim.activation_bytes / GIB:.2f} · free {lim.free_bytes / GIB:.2f} GiB · "
            f"{c.cost_basis}"
        )
    rej = group_rejections(res.rejected)
    if rej:
        t = Table(title="Why the others lost", title_justify="left")
        t.add_column("reason")
        t.add_column("n", justify="right")
        t.add_column("example")
        for reason, n, ex in rej[:8]:
            t.add_row(reason, str(n), ex)
        console.print(t)
    for f in res.findings:
        mark = "[green]✓[/]" if f.holds else "[yellow]![/]"
        console.print(f"{mark} [bold]{f.rule}[/]: {f.evidence}. {f.advice}.", highlight=False)
    for name, cmd in res.launch.items():
        console.print(f"[bold]{name}:[/] {cmd}", highlight=False, soft_wrap=True)


def plan_to_markdown(res: PlanResult) -> str:
    """The plan as Markdown: for a ticket, a design doc or a pull request."""
    d = plan_to_dict(res)
    lines = [f"# Plan: {d['model']} — {d['users']} users at {d['context']:,} tokens", ""]
    slo = d["slo"]
    targets = []
    if slo["ttft_ms"]:
        targets.append(f"TTFT ≤ {slo['ttft_ms']:,.0f} ms")
    if slo["tpot_ms"]:
        targets.append(f"TPOT ≤ {slo['tpot_ms']:,.1f} ms")
    lines += [
        f"Prompt {d['input_len']:,} / output {d['output_len']:,} tokens"
        + (f"; targets {', '.join(targets)} (p{d['percentile']})" if targets else "")
        + ".",
        f"Searched {d['searched']} candidates; {d['feasible']} feasible. {d['method']}.",
        "",
    ]
    lines += [
        "## Top picks",
        "",
        "| pick | hardware | weights | $/hour | cloud $/h | $/M out tok | TTFT ms | TPOT ms | sim TTFT p95 | sim TPOT p95 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, p in d["picks"].items():
        if not p:
            continue
        sim = p["simulated"] or {}
        hw = (
            f"{p['replicas']} × " if p["replicas"] > 1 else ""
        ) + f"{p['gpus_per_replica']}× {p['gpu_name']}"
        cloud = f"{p['cloud_usd_per_hour']:,.2f}" if p["cloud_usd_per_hour"] is not None else "—"
        s_ttft = f"{sim['ttft_ms']['p95']:,.0f}" if sim else "—"
        s_tpot = f"{sim['tpot_ms']['p95']:,.1f}" if sim else "—"
        lines.append(
            f"| {name} | {hw} | {p['quant']} | {p['usd_per_hour']:,.2f} | {cloud} | "
            f"{p['usd_per_million_output_tokens']:,.2f} | {p['ttft_ms']:,.0f} | {p['tpot_ms']:,.1f} | "
            f"{s_ttft} | {s_tpot} |"
        )
    lines += ["", "## Why the others lost", "", "| reason | n | example |", "|---|---:|---|"]
    lines += [f"| {r['reason']} | {r['count']} | {r['example']} |" for r in d["rejections"]]
    lines += ["", "## The guide's rules", ""]
    lines += [
        f"- {'✓' if f['holds'] else '!'} **{f['rule']}**: {f['evidence']}. {f['advice']}."
        for f in d["findings"]
    ]
    if d["launch"]:
        lines += ["", "## Launch", ""]
        for name, cmd in d["launch"].items():
            lang = "yaml" if name in ("compose", "kubernetes") and not cmd.startswith("#") else "bash"
            lines += [f"**{name}**", "", f"```{lang}", cmd, "```", ""]
    return "\n".join(lines)
