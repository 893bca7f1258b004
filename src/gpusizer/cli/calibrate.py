"""``gpusizer calibrate``: fit the efficiency factors from the user's own ``bench`` runs.

For every stored run that has gpusizer's prediction beside it (``bench --predict-model`` or
``compare``), the ratio predicted/measured of the median TPOT rescales the bandwidth
fraction (decode is memory-bound) and that of the median TTFT the compute fraction (prefill
is compute-bound); the median ratio per engine × GPU vendor × class gives the new factor,
clamped to (0, 1]; the row's other terms (per-layer and per-sequence costs, the MoE and KV
fractions) are kept as the predictions used them. A group needs at least ``MIN_RUNS`` runs
and ``MIN_REQUESTS`` completed requests, or it is refused: one short run is noise. The residuals — each run's error after
the fit — are printed. The result is a YAML file in the shape of data/efficiency.yaml,
saved as a named profile (``--profile NAME``, used by ``perf``/``simulate``/``plan
--profile NAME``) or written to ``--out FILE``.
"""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from gpusizer.cli.bench import DEFAULT_DB
from gpusizer.cli.common import console, guarded
from gpusizer.cli.options import whole
from gpusizer.errors import BadInputError
from gpusizer.report.layout import fold_columns
from gpusizer.store.paths import profile_path
from gpusizer.store.runs import RunStore

__all__ = ["MIN_REQUESTS", "MIN_RUNS", "calibrate_command", "fit_factors"]

MIN_RUNS = 2
MIN_REQUESTS = 20


def _groups(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run in runs:
        summary = json.loads(run["summary"] or "{}")
        pred = summary.get("predicted")
        if not pred or not summary.get("completed"):
            continue
        e = pred["efficiency"]
        groups.setdefault((e["engine"], e["vendor"], e["gpu_class"]), []).append(
            {**summary, "run_id": run["id"]}
        )
    return groups


def fit_factors(
    runs: list[dict[str, Any]], source: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Efficiency rows fitted from runs whose summary carries a prediction; the per-run
    residuals after the fit; and why any group was refused."""
    rows: list[dict[str, Any]] = []
    residuals: list[dict[str, Any]] = []
    refused: list[str] = []
    for (engine, vendor, cls), items in sorted(_groups(runs).items()):
        name = f"{engine}/{vendor}/{cls}"
        n_req = sum(int(s["completed"]) for s in items)
        if len(items) < MIN_RUNS or n_req < MIN_REQUESTS:
            refused.append(
                f"{name}: {len(items)} run(s), {n_req} completed requests; a fit needs ≥ {MIN_RUNS} runs and "
                f"≥ {MIN_REQUESTS} requests"
            )
            continue
        base = items[0]["predicted"]["efficiency"]
        tpot = [s["predicted"]["tpot_ms"]["p50"] / s["tpot_ms"]["p50"] for s in items if s["tpot_ms"]["p50"]]
        ttft = [s["predicted"]["ttft_ms"]["p50"] / s["ttft_ms"]["p50"] for s in items if s["ttft_ms"]["p50"]]
        if not tpot or not ttft:
            refused.append(f"{name}: no run has both a measured TTFT and TPOT")
            continue
        k_tpot, k_ttft = statistics.median(tpot), statistics.median(ttft)
        bw = min(1.0, max(0.01, base["bandwidth_fraction"] * k_tpot))
        cf = min(1.0, max(0.01, base["compute_fraction"] * k_ttft))
        # after the fit a run's prediction scales by old/new fraction; its residual is what is left
        eff_tpot = base["bandwidth_fraction"] / bw
        eff_ttft = base["compute_fraction"] / cf
        for s in items:
            residuals.append(
                {
                    "run_id": s["run_id"],
                    "group": name,
                    "tpot_error_pct": _err(s["predicted"]["tpot_ms"]["p50"] * eff_tpot, s["tpot_ms"]["p50"]),
                    "ttft_error_pct": _err(s["predicted"]["ttft_ms"]["p50"] * eff_ttft, s["ttft_ms"]["p50"]),
                }
            )
        spread = statistics.median(abs(r / k_tpot - 1) for r in tpot)
        rows.append(
            {
                "engine": engine,
                "vendor": vendor,
                "gpu_class": cls,
                "bandwidth_fraction": {
                    "value": round(bw, 4),
                    "unit": "fraction",
                    "source": f"{source}: {len(tpot)} runs, {n_req} requests, median TPOT ratio {k_tpot:.3f}",
                },
                "compute_fraction": {
                    "value": round(cf, 4),
                    "unit": "fraction",
                    "source": f"{source}: {len(ttft)} runs, {n_req} requests, median TTFT ratio {k_ttft:.3f}",
                },
                "step_overhead_s": {
                    "value": base["step_overhead_s"],
                    "unit": "s",
                    "source": "unchanged from the catalogue",
                },
                **{
                    name: {
                        "value": value,
                        "unit": "fraction" if name.endswith("fraction") else "s",
                        "source": f"unchanged from the catalogue row {base.get('row', '')}".rstrip(),
                    }
                    for name, value in base.get("held", {}).items()
                },
                "uncertainty": round(spread, 4),
            }
        )
    return rows, residuals, refused


def _err(predicted: float, measured: float | None) -> float | None:
    return round(100 * (predicted - measured) / measured, 2) if measured else None


@guarded
def calibrate_command(
    runs: Annotated[
        list[int] | None,
        typer.Argument(
            help="Run ids to fit on (default: every run with a prediction)", parser=whole("RUN", 1, 2**63 - 1)
        ),
    ] = None,
    db: Annotated[str | None, typer.Option(help=f"SQLite file of bench runs (default {DEFAULT_DB})")] = None,
    model: Annotated[str | None, typer.Option(help="Only runs of this model")] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Save as this named profile (use it with perf/simulate/plan --profile NAME)"),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Write the fitted factors to this file")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fit bandwidth/compute fractions from stored bench runs that carry predictions; report residuals."""
    if profile and out:
        raise BadInputError("--profile/--out", "choose one: a named profile or a file")
    path = Path(db) if db else DEFAULT_DB
    if not path.exists():
        raise BadInputError(
            "--db", f"{path} does not exist (run `gpusizer bench … --predict-model … --gpu …` first)"
        )
    store = RunStore(path)
    try:
        stored = store.runs()
    finally:
        store.close()
    if runs:
        missing = sorted(set(runs) - {r["id"] for r in stored})
        if missing:
            raise BadInputError("RUN", f"no run {', '.join(map(str, missing))} in {path}")
    chosen = [r for r in stored if (not runs or r["id"] in runs) and (model is None or r["model"] == model)]
    stamp = datetime.now(UTC).date().isoformat()
    rows, residuals, refused = fit_factors(chosen, f"gpusizer calibrate on {path.name} ({stamp})")
    if not rows:
        if refused:
            raise BadInputError("RUN", "too little data to fit: " + "; ".join(refused))
        raise BadInputError(
            "--db",
            "no stored run has a prediction beside it",
            "bench with --predict-model and --gpu, or `gpusizer compare RUN --predict-model … --gpu …`",
        )
    target = profile_path(profile) if profile else Path(out or "efficiency.yaml")
    text = "# Efficiency factors fitted by `gpusizer calibrate` from measured runs.\n" + yaml.safe_dump(
        {"factors": rows}, sort_keys=False
    )
    _write_keeping_old(target, text, "--profile" if profile else "--out")
    if as_json:
        typer.echo(
            json.dumps(
                {"file": str(target), "factors": rows, "residuals": residuals, "refused": refused}, indent=2
            )
        )
        return
    for r in rows:
        console.print(
            f"{r['engine']}/{r['vendor']}/{r['gpu_class']}: bandwidth fraction "
            f"{r['bandwidth_fraction']['value']:.3f}, compute fraction {r['compute_fraction']['value']:.3f} "
            f"(± {100 * r['uncertainty']:.0f} %)"
        )
    t = Table(title="Residuals after the fit (predicted − measured, median latencies)", title_justify="left")
    for col in ("run", "group", "TPOT error", "TTFT error"):
        t.add_column(col, justify="right")
    for res in residuals:
        t.add_row(
            str(res["run_id"]),
            res["group"],
            "—" if res["tpot_error_pct"] is None else f"{res['tpot_error_pct']:+.1f} %",
            "—" if res["ttft_error_pct"] is None else f"{res['ttft_error_pct']:+.1f} %",
        )
    console.print(fold_columns(t, console.width))
    for why in refused:
        console.print(f"[yellow]not fitted: {why}[/]", highlight=False)
    use = f"--profile {profile}" if profile else f"--efficiency {target}"
    console.print(f"wrote {target} — use it with `gpusizer perf|simulate … {use}`")


def _write_keeping_old(target: Path, text: str, field: str) -> None:
    """Write ``target``; an existing file is kept beside it with a timestamp, never lost."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            target.rename(target.with_name(f"{target.name}.{stamp}.bak"))
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadInputError(field, f"cannot write {target} ({exc.strerror})") from exc
