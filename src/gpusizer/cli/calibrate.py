"""``gpusizer calibrate``: fit the efficiency factors from the user's own ``bench`` runs.

For every stored run that has gpusizer's prediction beside it, the ratio predicted/measured
of the median TPOT rescales the bandwidth fraction (decode is memory-bound) and that of the
median TTFT the compute fraction (prefill is compute-bound); the median ratio per engine ×
GPU vendor × class gives the new factor, clamped to (0, 1]. The result is a YAML file in the
shape of data/efficiency.yaml that ``perf`` and ``simulate`` take with ``--efficiency``.
"""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from gpusizer.cli.bench import DEFAULT_DB
from gpusizer.cli.common import console, guarded
from gpusizer.errors import BadInputError
from gpusizer.store.runs import RunStore

__all__ = ["calibrate_command", "fit_factors"]


def fit_factors(runs: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """Efficiency rows fitted from runs whose summary carries a prediction."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run in runs:
        summary = json.loads(run["summary"] or "{}")
        pred = summary.get("predicted")
        if not pred or not summary.get("completed"):
            continue
        e = pred["efficiency"]
        groups.setdefault((e["engine"], e["vendor"], e["gpu_class"]), []).append(summary)
    rows = []
    for (engine, vendor, cls), items in sorted(groups.items()):
        base = items[0]["predicted"]["efficiency"]
        tpot = [s["predicted"]["tpot_ms"]["p50"] / s["tpot_ms"]["p50"] for s in items if s["tpot_ms"]["p50"]]
        ttft = [s["predicted"]["ttft_ms"]["p50"] / s["ttft_ms"]["p50"] for s in items if s["ttft_ms"]["p50"]]
        if not tpot or not ttft:
            continue
        bw = min(1.0, max(0.01, base["bandwidth_fraction"] * statistics.median(tpot)))
        cf = min(1.0, max(0.01, base["compute_fraction"] * statistics.median(ttft)))
        spread = statistics.median(abs(r / statistics.median(tpot) - 1) for r in tpot)
        rows.append(
            {
                "engine": engine,
                "vendor": vendor,
                "gpu_class": cls,
                "bandwidth_fraction": {
                    "value": round(bw, 4),
                    "unit": "fraction",
                    "source": f"{source}: {len(tpot)} runs, median TPOT ratio {statistics.median(tpot):.3f}",
                },
                "compute_fraction": {
                    "value": round(cf, 4),
                    "unit": "fraction",
                    "source": f"{source}: {len(ttft)} runs, median TTFT ratio {statistics.median(ttft):.3f}",
                },
                "step_overhead_s": {
                    "value": base["step_overhead_s"],
                    "unit": "s",
                    "source": "unchanged from the catalogue",
                },
                "uncertainty": round(spread, 4),
            }
        )
    return rows


@guarded
def calibrate_command(
    db: Annotated[str | None, typer.Option(help=f"SQLite file of bench runs (default {DEFAULT_DB})")] = None,
    model: Annotated[str | None, typer.Option(help="Only runs of this model")] = None,
    out: Annotated[
        str, typer.Option("--out", "-o", help="Write the fitted factors here")
    ] = "efficiency.yaml",
) -> None:
    """Fit bandwidth/compute fractions from stored bench runs that carry predictions."""
    path = Path(db) if db else DEFAULT_DB
    if not path.exists():
        raise BadInputError(
            "--db", f"{path} does not exist (run `gpusizer bench … --predict-model … --gpu …` first)"
        )
    store = RunStore(path)
    try:
        runs = [r for r in store.runs() if model is None or r["model"] == model]
    finally:
        store.close()
    stamp = datetime.now(UTC).date().isoformat()
    rows = fit_factors(runs, f"gpusizer calibrate on {path.name} ({stamp})")
    if not rows:
        raise BadInputError(
            "--db", "no stored run has a prediction beside it", "bench with --predict-model and --gpu"
        )
    target = Path(out)
    try:
        target.write_text(
            "# Efficiency factors fitted by `gpusizer calibrate` from measured runs.\n"
            + yaml.safe_dump({"factors": rows}, sort_keys=False),
            encoding="utf-8",
        )
    except OSError as exc:
        raise BadInputError("--out", f"cannot write {out!r} ({exc.strerror})") from exc
    for r in rows:
        console.print(
            f"{r['engine']}/{r['vendor']}/{r['gpu_class']}: bandwidth fraction "
            f"{r['bandwidth_fraction']['value']:.3f}, compute fraction {r['compute_fraction']['value']:.3f} "
            f"(± {100 * r['uncertainty']:.0f} %)"
        )
    console.print(f"wrote {target} — use it with `gpusizer perf|simulate … --efficiency {target}`")
