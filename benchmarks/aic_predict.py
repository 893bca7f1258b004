"""aiconfigurator's own predictions for the rows of its ``silicon_sample.csv``.

Runs in an environment where aiconfigurator is installed (``pip install aiconfigurator``;
it is not a gpusizer dependency) and writes one JSON object per row — id, TTFT and TPOT
predicted by ``aiconfigurator.cli.api.cli_estimate`` in aggregated mode with the row's
parallel layout, batch size, lengths and quantization modes — for ``aic_compare.py`` to
score next to gpusizer's.

    python benchmarks/aic_predict.py OUT.jsonl [--sets headline|all]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aic_rows import headline_rows, load_rows


def _model_path(model: str) -> str:
    """aiconfigurator bundles configs for some checkpoints under other names
    (``meta-llama--Meta-Llama-3.1-8B_config.json``); use the bundled one where it exists,
    since its HF download is not reachable offline."""
    configs = resources.files("aiconfigurator_core").joinpath("model_configs")
    org, name = model.split("/", 1)
    for cand in (
        name,
        f"Meta-{name}",
        f"Meta-{name}".replace("-Instruct", ""),
        name.replace("-Instruct", ""),
    ):
        if configs.joinpath(f"{org}--{cand}_config.json").is_file():
            return f"{org}/{cand}"
    return model


def predict(row: dict[str, str]) -> dict[str, object]:
    from aiconfigurator.cli.api import cli_estimate

    def num(key: str, default: int | None = None) -> int | None:
        return int(float(row[key])) if row.get(key) else default

    last_error = ""
    for version in (
        row.get("backend_version") or None,
        None,
    ):  # the run's version, else aiconfigurator's current
        try:
            est = cli_estimate(
                _model_path(row["model_path"]),
                row["system"],
                mode="agg",
                backend_name=row["backend"],
                backend_version=version,
                isl=num("isl"),
                osl=num("osl"),
                batch_size=num("batch_size"),
                tp_size=num("tp_size", 1),
                pp_size=num("pp_size", 1),
                attention_dp_size=num("attention_dp_size", 1),
                moe_tp_size=num("moe_tp_size"),
                moe_ep_size=num("moe_ep_size"),
                gemm_quant_mode=row.get("gemm_quant_mode") or None,
                moe_quant_mode=row.get("moe_quant_mode") or None,
            )
        except Exception as exc:  # a row aiconfigurator cannot estimate is reported, not fatal
            last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            continue
        return {
            "id": row["id"],
            "ttft_ms": float(est.ttft),
            "tpot_ms": float(est.tpot),
            "backend_version": est.backend_version,
        }
    return {"id": row["id"], "error": last_error}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--sets", choices=("headline", "all"), default="headline")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    rows = load_rows()
    if rows is None:
        print("aiconfigurator is not installed: nothing to predict")
        return 0
    if args.sets == "headline":
        rows = headline_rows(rows)
    with args.out.open("w", encoding="utf-8") as fh:
        for i, row in enumerate(rows):
            fh.write(json.dumps(predict(row)) + "\n")
            fh.flush()
            print(f"{i + 1}/{len(rows)} {row['id']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
