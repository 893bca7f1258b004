"""Presenting a ``FitResult``: a JSON-ready dict (stable keys, GiB at the edge) and a
rich table per GPU with the verdict, capacity and the guide's rule of thumb beside it."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gpusizer.api import FitResult
from gpusizer.engines import engine_spec
from gpusizer.estimate.memory import RULE_OF_THUMB_OVERHEAD, RankMemory
from gpusizer.report.layout import fold_columns
from gpusizer.units import GIB

__all__ = ["SCHEMA_VERSION", "fit_to_dict", "render_fit"]

SCHEMA_VERSION = 1


def _g(x: float) -> float:
    return round(x / GIB, 3)


def _rank_dict(r: RankMemory) -> dict[str, Any]:
    return {
        "stage": r.stage,
        "layers": [r.layers.start, r.layers.stop - 1] if len(r.layers) else [],
        "capacity_gib": _g(r.capacity_bytes),
        "weights_gib": _g(r.weights_bytes),
        "weights_by_group_gib": {k: _g(v) for k, v in sorted(r.weights_by_group.items())},
        "kv_cache_gib": _g(r.kv_pool_bytes),
        "kv_needed_gib": _g(r.kv_needed_bytes),
        "activation_gib": _g(r.activation_bytes),
        "non_torch_gib": _g(r.non_torch_bytes),
        "cuda_graph_gib": _g(r.cuda_graph_bytes),
        "cuda_context_gib": _g(r.cuda_context_bytes),
        "engine_reserve_gib": _g(r.engine_reserve_bytes),
        "free_gib": _g(r.free_bytes),
    }


def fit_to_dict(res: FitResult) -> dict[str, Any]:
    """Everything ``fit --json`` prints. Per-GPU figures are for the limiting GPU."""
    est = res.estimate
    dep = res.deployment
    lim = est.limiting
    st = est.settings
    return {
        "schema_version": SCHEMA_VERSION,
        "fits": est.fits,
        "problems": list(est.problems),
        "model": res.model.name,
        "model_source": res.model.source,
        "gpu": dep.gpu.key,
        "gpu_name": dep.gpu.name,
        "gpus": dep.layout.gpus,
        "tp": dep.layout.tp,
        "pp": dep.layout.pp,
        "engine": dep.engine,
        "engine_version": ".".join(map(str, st.version)) if engine_spec(st.engine).versioned else None,
        "accounting_band": st.band,
        "quant": dep.quant.label,
        "kv_dtype": dep.kv_dtype,
        "max_model_len": dep.max_model_len,
        "users": dep.users,
        "memory_fraction": st.memory_fraction,
        "max_num_batched_tokens": st.max_num_batched_tokens,
        "max_num_seqs": st.max_num_seqs,
        "block_size": st.block_size,
        "defaults_used": list(st.defaults_used),
        "params_total": dep.param_counts.total,
        "params_active": dep.param_counts.active,
        "total_weights_gib": _g(est.total_weight_bytes),
        "weights_gib": _g(lim.weights_bytes),
        "kv_bytes_per_token": round(est.kv_bytes_per_token, 3),
        "kv_layout": est.kv.what,
        "kv_cache_gib": _g(lim.kv_pool_bytes),
        "kv_needed_gib": _g(lim.kv_needed_bytes),
        "kv_cache_tokens": est.kv_cache_tokens,
        "max_concurrency": round(est.max_concurrency, 2),
        "max_context_at_users": est.max_context_at_users,
        "activation_gib": _g(lim.activation_bytes),
        "non_torch_gib": _g(lim.non_torch_bytes),
        "cuda_graph_gib": _g(lim.cuda_graph_bytes),
        "cuda_context_gib": _g(lim.cuda_context_bytes),
        "free_gib": _g(lim.free_bytes),
        "rule_of_thumb_gib": _g(est.rule_of_thumb_bytes),
        "per_gpu": [_rank_dict(r) for r in est.ranks],
        "notes": [n for n in (res.gpu_note, *res.notes, *est.notes) if n],
        "suggestions": list(res.suggestions),
    }


def _row(table: Table, label: str, value: float, cap: float, style: str = "", note: str = "") -> None:
    share = f"{100 * value / cap:5.1f} %" if cap else ""
    table.add_row(Text(label, style=style), f"{value / GIB:9.2f}", share, note)


def _print_header(res: FitResult, console: Console) -> None:
    """The model, weights, KV dtype, GPUs and engine; the load; the notes, shortened."""
    dep = res.deployment
    engine = engine_spec(dep.engine).label
    head = (
        f"[bold]{res.model.name}[/] · {dep.quant.label} weights · KV {dep.kv_dtype} · "
        f"{dep.layout.gpus}× {dep.gpu.name}"
        + (f" (TP {dep.layout.tp} × PP {dep.layout.pp})" if dep.layout.gpus > 1 else "")
        + f" · {engine}"
    )
    console.print(head)
    console.print(
        f"[dim]{dep.users} user(s) × {dep.max_model_len:,} tokens · "
        f"params {dep.param_counts.total / 1e9:.2f} B total, "
        f"{dep.param_counts.active / 1e9:.2f} B active per token[/]"
    )
    for note in (res.gpu_note, *res.notes):
        if note:  # full text in --json; the terminal gets the first 160 characters
            short = note if len(note) <= 160 else note[:157].rsplit(" ", 1)[0] + " …"
            console.print(f"[yellow]note:[/] {short}", highlight=False)


def _kv_note(res: FitResult, r: RankMemory) -> str:
    est = res.estimate
    dep = res.deployment
    if r.kv_pool_bytes != r.kv_needed_bytes:
        return (
            f"holds {est.kv_cache_tokens:,} tokens; {dep.users}×{dep.max_model_len:,} need "
            f"{r.kv_needed_bytes / GIB:.2f} GiB"
        )
    return f"{dep.users} × {dep.max_model_len:,} tokens"


def _rank_table(res: FitResult, r: RankMemory) -> Table:
    """One GPU's memory, line by line, with its share of the capacity and what it is."""
    est = res.estimate
    dep = res.deployment
    st = est.settings
    t = Table(
        title=(f"Per GPU (pipeline stage {r.stage})" if len(est.ranks) > 1 else "Per GPU"),
        title_justify="left",
    )
    t.add_column("memory")
    t.add_column("GiB", justify="right")
    t.add_column("share", justify="right")
    t.add_column("what")
    cap = r.capacity_bytes
    groups = ", ".join(
        f"{k} {v / GIB:.2f}"
        for k, v in sorted(r.weights_by_group.items(), key=lambda kv: -kv[1])
        if v / GIB >= 0.01
    )
    _row(t, "weights", r.weights_bytes, cap, "cyan", groups)
    _row(t, "KV cache", r.kv_pool_bytes, cap, "green", _kv_note(res, r))
    _row(
        t,
        "activations",
        r.activation_bytes,
        cap,
        "magenta",
        f"profile peak at {st.max_num_batched_tokens:,} tokens / {st.max_num_seqs} seqs",
    )
    if r.non_torch_bytes:
        _row(t, "non-torch", r.non_torch_bytes, cap, "", "NCCL, cuBLAS workspaces")
    if r.cuda_graph_bytes:
        _row(t, "CUDA graphs", r.cuda_graph_bytes, cap, "", "captured decode graphs")
    apple = dep.gpu.vendor == "apple"
    _row(
        t,
        "runtime context" if apple else "CUDA context",
        r.cuda_context_bytes,
        cap,
        "",
        "driver and runtime",
    )
    if r.free_bytes >= 0:
        why = (
            f"outside the engine's memory fraction {st.memory_fraction:g}"
            if r.engine_reserve_bytes > 0
            else ""
        )
        _row(t, "free", r.free_bytes, cap, "bold", why)
    else:
        _row(t, "OVER capacity", -r.free_bytes, cap, "bold red", "does not fit")
    t.add_section()
    _row(
        t,
        "capacity",
        cap,
        cap,
        "bold",
        "Metal working-set limit of unified memory" if apple else "as the driver reports it",
    )
    return t


def _print_summary(res: FitResult, console: Console) -> None:
    """KV per token, capacity, the guide's rule of thumb beside the engine-accurate need,
    the defaults and notes, then the verdict with what to try."""
    est = res.estimate
    dep = res.deployment
    st = est.settings
    console.print(f"KV per token per GPU: [bold]{est.kv_bytes_per_token:,.0f} B[/] — {est.kv.what}")
    console.print(
        f"Max concurrency at {dep.max_model_len:,} tokens: [bold]{est.max_concurrency:.2f}[/] · "
        f"max context for {dep.users} user(s): [bold]{est.max_context_at_users:,}[/] tokens"
    )
    lim = est.limiting
    engine_total = (
        lim.weights_bytes
        + lim.kv_needed_bytes
        + lim.activation_bytes
        + lim.non_torch_bytes
        + lim.cuda_graph_bytes
        + lim.cuda_context_bytes
    )
    console.print(
        f"Guide's rule of thumb (weights + KV/token × L × N + {RULE_OF_THUMB_OVERHEAD:.0%}): "
        f"[bold]{est.rule_of_thumb_bytes / GIB:.2f} GiB[/] per GPU vs engine-accurate need "
        f"[bold]{engine_total / GIB:.2f} GiB[/]"
    )
    for d in st.defaults_used:
        console.print(f"[dim]default: {d}[/]")
    for n in est.notes:
        console.print(f"[dim]{n}[/]")
    if est.fits:
        console.print(f"[bold green]FITS[/] — {dep.users} user(s) at {dep.max_model_len:,} tokens")
    else:
        console.print("[bold red]DOES NOT FIT[/]")
        for p in est.problems:
            console.print(f"  [red]•[/] {p}")
        for hint in res.suggestions:
            console.print(f"  [cyan]try:[/] {hint}")


def render_fit(res: FitResult, console: Console) -> None:
    _print_header(res, console)
    for r in res.estimate.ranks:
        console.print(fold_columns(_rank_table(res, r), console.width))
    _print_summary(res, console)
