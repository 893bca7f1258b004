"""Where the aiconfigurator measurements come from: the installed wheel's
``silicon_sample.csv`` or, without aiconfigurator, the copy of its headline rows in
tests/golden/aic_silicon_sample.csv."""

from __future__ import annotations

from pathlib import Path

from gpusizer.calibrate.aic import HEADLINE_SETS, find_silicon_sample, read_rows

ROOT = Path(__file__).resolve().parents[1]
VENDORED = ROOT / "tests" / "golden" / "aic_silicon_sample.csv"


def load_rows(vendored: bool = False) -> list[dict[str, str]] | None:
    path = VENDORED if vendored else find_silicon_sample()
    return read_rows(path.read_text(encoding="utf-8")) if path else None


def headline_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [
        r
        for r in rows
        if (r["backend"], r["model_path"], r["system"]) in HEADLINE_SETS and r["mode"] == "agg"
    ]
