"""Presenting a plan: the top picks, why everything else lost, the guide's findings and the
launch commands — as JSON (schema-versioned) or rich tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gpusizer.api import PlanResult
from gpusizer.engines import DEFAULT_ENGINE
from gpusizer.plan.evaluate import Accepted
from gpusizer.plan.pipeline import label_of
from gpusizer.plan.rank import group_rejections
from gpusizer.plan.space import KV_NOTES
from gpusizer.report.layout import fold_columns
from gpusizer.units import GIB

__all__ = ["PLAN_SCHEMA_VERSION", "plan_to_dict", "plan_to_markdown", "render_plan"]

PLAN_SCHEMA_VERSION = 1

METHOD = (
    "memory: engine-accurate fit with {headroom} KV headroom; speed: analytic step times at the planned "
    "concurrency as a filter, then every pick verified by a continuous-batching simulation of the "
    "users (p{pct} within the targets less {headroom}); cost: owned = N boxes of one system kind "
    "(host + GPUs + network at list price over the years + power), cloud = N instances at dated "
    "on-demand prices; $/M tokens from the simulated throughput"
)


def hardware_of(a: Accepted) -> str:
    """What to buy (or rent): '1× Desktop tower, 2 GPUs (x8/x8) with 2× NVIDIA RTX PRO 6000'."""
    if a.placement is not None:
        return a.placement.describe(a.dep.gpu.name)
    if a.cloud is not None:
        return a.cloud.label
    return (f"{a.replicas} × " if a.replicas > 1 else "") + f"{a.dep.layout.gpus}× {a.dep.gpu.name}"


def _plan_dict(a: Accepted, res: PlanResult | None = None) -> dict[str, Any]:
    del res
    lim = a.memory.limiting
    sim = a.sim
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
        "capex_usd": None if a.capex_usd is None else round(a.capex_usd),
        "hardware": hardware_of(a),
        "system": _system_dict(a),
        "cloud": None
        if a.cloud is None
        else {
            "instance": a.cloud.instance.name,
            "provider": a.cloud.instance.provider,
            "count": a.cloud.count,
            "gpus_per_instance": a.cloud.gpus_per_instance,
            "usd_per_hour": round(a.cloud.usd_per_hour, 4),
            "date": a.cloud.instance.date,
            "source": a.cloud.instance.source,
        },
        "kv_dtype": a.dep.kv_dtype,
        "kv_note": KV_NOTES.get(a.dep.kv_dtype),
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


def _system_dict(a: Accepted) -> dict[str, Any] | None:
    p = a.placement
    if p is None:
        return None
    s = p.system
    return {
        "key": s.key,
        "name": s.name,
        "kind": s.kind,
        "examples": s.examples,
        "boxes": p.boxes,
        "gpus_per_box": p.gpus_per_box,
        "box_usd": s.price_usd,
        "price_basis": s.price_basis,
        "date": s.date,
        "link": p.link_name,
        "network": p.network_name,
        "power_w": round(p.power_w),
        "unverified": list(s.unverified),
        "note": s.note,
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
        "headroom": res.headroom,
        "simulations": res.simulations,
        "method": METHOD.format(pct=res.percentile, headroom=f"{res.headroom:.0%}"),
    }


def _weights(a: Accepted) -> str:
    return a.dep.quant.label + (f" · KV {a.dep.kv_dtype}" if a.dep.kv_dtype != "auto" else "")


# Top-picks columns left out first when the terminal is too narrow for the rest (--json and
# --markdown keep every one).
_NARROW_DROPS = ("users fit", "$/hour", "VRAM/GPU", "cloud $/h")


def _print_intro(res: PlanResult, console: Console) -> None:
    """What was asked (model, users, context, targets) and how the search went."""
    slo = []
    if res.slo.ttft_s:
        slo.append(f"TTFT ≤ {res.slo.ttft_s * 1e3:,.0f} ms")
    if res.slo.tpot_s:
        slo.append(f"TPOT ≤ {res.slo.tpot_s * 1e3:,.1f} ms ({1 / res.slo.tpot_s:,.0f} tok/s per user)")
    console.print(
        f"[bold]{res.model.name}[/] for {res.users} concurrent users at {res.context:,} tokens "
        f"(prompt {res.input_len:,}, output {res.output_len:,})" + (f" · {' · '.join(slo)}" if slo else "")
    )
    room = f"{res.headroom:.0%} headroom"
    console.print(
        f"[dim]searched {res.searched} candidates · {len(res.accepted)} meet memory"
        + (" and SLOs" if slo else "")
        + f" analytically ({room}) · {res.simulations} simulated · every pick below was simulated "
        f"with {res.users} users (p{res.percentile} within the targets less {room}) · "
        f"ranked by {res.rank_by} cost[/]"
    )


def _picks_table(res: PlanResult) -> Table:
    """Cheapest, fastest and best $/token, a row each ("(same)" when a pick repeats)."""
    p = res.picks
    pct = f"p{res.percentile}"
    t = Table(title="Top picks (simulated)", title_justify="left")
    for col in (
        "pick",
        "hardware",
        "weights",
        "capex $",
        "$/hour",
        "cloud $/h",
        "$/M out tok",
        f"{pct} TTFT ms",
        f"{pct} TPOT ms",
        "users fit",
        "VRAM/GPU",
    ):
        t.add_column(col, justify="left" if col in ("pick", "hardware", "weights") else "right")
    seen: list[Accepted] = []
    for name, a in (("cheapest", p.cheapest), ("fastest", p.fastest), ("best $/token", p.best_per_token)):
        if a is None:
            continue
        lim = a.memory.limiting
        used = lim.capacity_bytes - lim.free_bytes
        same = " (same)" if a in seen else ""
        seen.append(a)
        sim = a.sim
        t.add_row(
            name + same,
            hardware_of(a)
            + (f" · {a.replicas} engines" if a.replicas > 1 else "")
            + ("" if a.dep.engine == DEFAULT_ENGINE else f" ({a.dep.engine})"),
            _weights(a),
            f"{a.capex_usd:,.0f}" if a.capex_usd is not None else "—",
            f"{a.usd_per_hour:,.2f}",
            f"{a.cloud_usd_per_hour:,.2f}" if a.cloud_usd_per_hour is not None else "—",
            f"{a.usd_per_million_output_tokens:,.2f}",
            f"{getattr(sim.ttft, pct) * 1e3:,.0f}" if sim else "—",
            f"{getattr(sim.tpot, pct) * 1e3:,.1f}" if sim else "—",
            f"{a.memory.max_concurrency * a.replicas:,.1f}",
            f"{used / GIB:,.1f}/{lim.capacity_bytes / GIB:,.0f} GiB",
        )
    return t


def _print_cheapest(res: PlanResult, c: Accepted, console: Console) -> None:
    """The cheapest pick in detail: its memory per GPU, its cost, the box, the cloud
    alternative and what its KV dtype costs in quality."""
    lim = c.memory.limiting
    console.print(
        f"cheapest, per GPU: weights {lim.weights_bytes / GIB:.2f} GiB · KV for "
        f"{c.dep.users}×{res.context:,} {lim.kv_needed_bytes / GIB:.2f} GiB (pool {lim.kv_pool_bytes / GIB:.2f}) · "
        f"activations {lim.activation_bytes / GIB:.2f} · free {lim.free_bytes / GIB:.2f} GiB",
        highlight=False,
    )
    console.print(f"cost: {c.cost_basis}", highlight=False)
    if c.placement is not None:
        s = c.placement.system
        console.print(
            f"box: {s.name} — e.g. {s.examples}; host ${s.price_usd:,.0f} ({s.price_basis}, {s.date}"
            + (", unverified" if "price_usd" in s.unverified else "")
            + f"); TP link {c.placement.link_name}"
            + (f"; network {c.placement.network_name}" if c.placement.network_name else "")
            + (f". {s.note}" if s.note else ""),
            highlight=False,
        )
    if c.cloud is not None:
        i = c.cloud.instance
        console.print(
            f"rent instead: {c.cloud.label} at ${c.cloud.usd_per_hour:,.2f}/h — list price as of "
            f"{i.date}, source {i.source}" + (" (unverified)" if i.unverified else ""),
            highlight=False,
        )
    note = KV_NOTES.get(c.dep.kv_dtype)
    if note:
        console.print(f"KV cache: {note}", highlight=False)


def _print_rejections(res: PlanResult, console: Console) -> None:
    """The commonest reasons candidates lost (eight at most), with a count and an example."""
    rej = group_rejections(res.rejected)
    if rej:
        t = Table(title="Why the others lost", title_justify="left")
        t.add_column("reason")
        t.add_column("n", justify="right")
        t.add_column("example")
        for reason, n, ex in rej[:8]:
            t.add_row(reason, str(n), ex)
        console.print(fold_columns(t, console.width))


def render_plan(res: PlanResult, console: Console) -> None:
    _print_intro(res, console)
    p = res.picks
    if p.cheapest is None:
        console.print("[bold red]No feasible plan.[/] Why everything lost:")
        if res.verify_exhausted:
            console.print(
                f"[yellow]{res.simulations} simulations ran without a candidate meeting the targets; "
                "relax the targets or the headroom, or narrow the search (--gpu, --system).[/]"
            )
    else:
        console.print(fold_columns(_picks_table(res), console.width, _NARROW_DROPS))
        _print_cheapest(res, p.cheapest, console)
    _print_rejections(res, console)
    for f in res.findings:
        mark = "[green]✓[/]" if f.holds else "[yellow]![/]"
        console.print(f"{mark} [bold]{f.rule}[/]: {f.evidence}. {f.advice}.", highlight=False)
    for name, cmd in res.launch.items():
        console.print(Text.assemble((f"{name}:", "bold"), " ", cmd), highlight=False, soft_wrap=True)


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
    pct = f"p{d['percentile']}"
    lines += [
        "## Top picks",
        "",
        "| pick | hardware | weights | capex $ | $/hour | cloud $/h | $/M out tok | TTFT ms | TPOT ms | "
        f"sim TTFT {pct} | sim TPOT {pct} |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, p in d["picks"].items():
        if not p:
            continue
        sim = p["simulated"] or {}
        hw = p["hardware"] + (f" · {p['replicas']} engines" if p["replicas"] > 1 else "")
        cloud = f"{p['cloud_usd_per_hour']:,.2f}" if p["cloud_usd_per_hour"] is not None else "—"
        capex = f"{p['capex_usd']:,.0f}" if p["capex_usd"] is not None else "—"
        s_ttft = f"{sim['ttft_ms'][pct]:,.0f}" if sim else "—"
        s_tpot = f"{sim['tpot_ms'][pct]:,.1f}" if sim else "—"
        lines.append(
            f"| {name} | {hw} | {p['quant']}{' · KV ' + p['kv_dtype'] if p['kv_dtype'] != 'auto' else ''} | {capex} | {p['usd_per_hour']:,.2f} | {cloud} | "
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
