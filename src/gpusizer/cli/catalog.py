"""``gpusizer models | gpus | quants``: what the built-in catalogue holds."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.catalog.load import gpu_catalogue, model_catalogue, model_config, quant_catalogue
from gpusizer.cli.common import console, guarded
from gpusizer.domain.params import count_params
from gpusizer.engines import all_engines
from gpusizer.report.layout import fold_columns
from gpusizer.units import GIB

__all__ = ["engines_command", "gpus_command", "models_command", "quants_command"]


@guarded
def models_command(
    search: Annotated[str | None, typer.Argument(help="Substring filter")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List catalogue models with their derived parameter counts."""
    rows = []
    for e in model_catalogue():
        if search and search.lower() not in (e.id + " " + " ".join(e.aliases)).lower():
            continue
        a = arch_from_hf_config(model_config(e), e.id)
        c = count_params(a)
        rows.append(
            {
                "id": e.id,
                "short": e.id.split("/")[-1].lower(),
                "attention": a.attention_kind,
                "moe": a.moe is not None,
                "params_b": round(c.total / 1e9, 3),
                "active_b": round(c.active / 1e9, 3),
                "layers": a.num_layers,
                "context": e.context_length or a.max_position_embeddings,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table(title=f"{len(rows)} models")
    for col in ("id", "attention", "MoE", "params (B)", "active (B)", "layers", "context"):
        t.add_column(col, justify="right" if col not in ("id", "attention") else "left")
    for r in rows:
        t.add_row(
            str(r["id"]),
            str(r["attention"]),
            "yes" if r["moe"] else "",
            f"{r['params_b']:.2f}",
            f"{r['active_b']:.2f}",
            str(r["layers"]),
            f"{r['context']:,}",
        )
    console.print(fold_columns(t, console.width, ("layers", "attention")))


@guarded
def gpus_command(
    search: Annotated[str | None, typer.Argument(help="Substring filter")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List catalogue GPUs: memory, bandwidth, BF16/FP8 tensor FLOP/s, link, price."""
    gpus = [
        g
        for g in gpu_catalogue()
        if not search or search.lower() in (g.key + " " + g.name + " " + " ".join(g.aliases)).lower()
    ]
    if as_json:
        typer.echo(json.dumps([g.model_dump() for g in gpus], indent=2))
        return
    t = Table(title=f"{len(gpus)} GPUs")
    cols = ("key", "class", "GiB", "visible", "TB/s", "BF16 TF", "FP8 TF", "link", "list $")
    for col in cols:
        t.add_column(col, justify="left" if col in ("key", "class", "link") else "right")
    for g in gpus:
        t.add_row(
            g.key,
            g.gpu_class,
            f"{g.memory_bytes / GIB:.0f}",
            f"{g.memory_visible_bytes / GIB:.2f}" if g.memory_visible_bytes else "—",
            f"{g.memory_bandwidth_bps / 1e12:.2f}",
            f"{(g.flops.bf16 or g.flops.fp16 or 0) / 1e12:.0f}",
            f"{g.flops.fp8 / 1e12:.0f}" if g.flops.fp8 else "—",
            g.scale_up_link or "—",
            f"{g.list_price_usd:,.0f}" if g.list_price_usd else "—",
        )
    console.print(fold_columns(t, console.width, ("visible", "link", "FP8 TF", "class")))


@guarded
def quants_command(
    search: Annotated[
        str | None, typer.Argument(help="Substring filter (key, alias or description: q4, gguf, fp8)")
    ] = None,
) -> None:
    """List weight formats and their real storage cost in bits per weight."""
    t = Table(title="weight formats")
    for col in ("key", "bits/weight", "kept 16-bit", "engines", "what"):
        t.add_column(col)
    groups = {"embedding", "lm_head", "norm", "router", "bias"}
    for f in quant_catalogue():
        if search and search.lower() not in " ".join((f.key, *f.aliases, f.description)).lower():
            continue
        kept = ", ".join(sorted(groups - set(f.quantized_groups))) if f.quantized_groups else "—"
        t.add_row(f.key, f"{f.linear_bits_per_weight:.3f}", kept, ", ".join(f.engines), f.description)
    console.print(fold_columns(t, console.width))


@guarded
def engines_command(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the inference engines gpusizer models: memory-fraction setting, paging, KV dtypes, vendors."""
    rows: list[dict[str, Any]] = []
    for s in all_engines():
        frac = s.memory_fraction
        rows.append(
            {
                "engine": s.name,
                "label": s.label,
                "serving": s.serving,
                "memory_setting": frac.setting if frac else None,
                "memory_flag": frac.flag if frac else None,
                "memory_meaning": frac.meaning
                if frac
                else "none: the engine allocates what the requests need",
                "block_size_default": s.default_block_size(s.numbers()),
                "kv_dtypes": list(s.kv_dtypes(mla=True)),
                "prefix_cache_default": s.prefix_cache_default,
                "admission": s.admission,
                "vendors": sorted(s.vendors),
                "command": " ".join(s.command) or None,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table(title=f"{len(rows)} engines")
    for col in ("engine", "memory setting", "block", "KV dtypes", "prefix cache", "admission", "vendors"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            f"{r['engine']} ({r['label']})",
            str(r["memory_flag"] or "—"),
            str(r["block_size_default"]),
            ", ".join(r["kv_dtypes"]),
            "on" if r["prefix_cache_default"] else "off",
            str(r["admission"]),
            ", ".join(r["vendors"]),
        )
    console.print(t)
