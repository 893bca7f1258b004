"""llama.cpp llama-bench measurements (pp = prompt tokens/s, tg = generated tokens/s at
batch 1) run through gpusizer's step-time model. Shared by the golden perf test and
benchmarks/validate_perf.py. Rows are copied verbatim from shared/calibration/perf_cases.jsonl
(perf_cases_llamacpp.jsonl), each with its source_url and evidence."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpusizer.api import fit
from gpusizer.catalog.load import efficiency_factors, gpu_catalogue, interconnects
from gpusizer.catalog.resolve import resolve_gpu
from gpusizer.errors import GpusizerError
from gpusizer.estimate.perf import efficiency_for, link_for
from gpusizer.estimate.roofline import Batch, Efficiency, step_time
from gpusizer.units import GIB

HERE = Path(__file__).parent
QUANT = {"Q4_0": "q4_0", "F16": "f16-gguf", "Q8_0": "q8_0"}
MODELS = {"meta-llama/Llama-2-7b-hf": "meta-llama/Llama-2-7b-hf"}


@dataclass
class PerfCheck:
    case_id: str
    metric: str  # tg | pp
    vendor: str
    backend: str
    measured: float  # tokens/s
    predicted: float

    @property
    def error(self) -> float:
        return (self.predicted - self.measured) / self.measured


def _backend(row: dict[str, Any]) -> str:
    text = str(row.get("engine_backend") or "").lower()
    for name in ("vulkan", "metal", "rocm", "cuda"):
        if name in text:
            return name
    return text or "?"


def load_rows() -> list[dict[str, Any]]:
    return [json.loads(x) for x in (HERE / "perf_cases_llamacpp.jsonl").read_text().splitlines() if x.strip()]


def run(
    eff_override: dict[str, Efficiency] | None = None,
) -> tuple[list[PerfCheck], list[tuple[str, str]]]:
    """Predict every mapped row. ``eff_override`` maps a vendor to fixed factors (for
    fitting); otherwise data/efficiency.yaml's factors for llama.cpp × vendor × class apply."""
    checks: list[PerfCheck] = []
    skipped: list[tuple[str, str]] = []
    for r in load_rows():
        cid = r["case_id"]
        model = MODELS.get(r["model_id"])
        quant = QUANT.get(r["weight_precision"])
        if model is None or quant is None:
            skipped.append((cid, f"model {r['model_id']} / {r['weight_precision']} not mapped"))
            continue
        try:
            gpu = resolve_gpu(r["gpu_key"], gpu_catalogue()).gpu
        except GpusizerError:
            skipped.append((cid, f"GPU {r['gpu_key']} not in the catalogue"))
            continue
        res = fit(model, gpu.key, engine="llamacpp", quant=quant, max_model_len=4096)
        dep = res.deployment
        if r.get("model_file_size_gib"):  # llama-bench printed the exact file size
            from dataclasses import replace

            modelled = res.estimate.total_weight_bytes
            dep = replace(dep, weights_scale=r["model_file_size_gib"] * GIB / modelled)
        eff = (eff_override or {}).get(gpu.vendor)
        if eff is None:
            eff, _ = efficiency_for(
                efficiency_factors(),
                "llamacpp",
                gpu.vendor,
                link_for(dep, interconnects()),
                gpu_class=gpu.gpu_class,
            )
        depth = int(r.get("context_depth_tokens") or 0)
        if r.get("gen_tps") and r.get("output_tokens"):
            n = int(r["output_tokens"])
            st = step_time(dep, Batch(decode=(depth + n // 2,)), eff)
            checks.append(PerfCheck(cid, "tg", gpu.vendor, _backend(r), r["gen_tps"], 1 / st.total_s))
        if r.get("prompt_tps") and r.get("input_tokens"):
            n = int(r["input_tokens"])
            t = 0.0
            done = 0
            while done < n:  # llama-bench processes the prompt in n_batch-sized chunks
                k = min(2048, n - done)
                t += step_time(dep, Batch(prefill=((k, depth + done),)), eff).total_s
                done += k
            checks.append(PerfCheck(cid, "pp", gpu.vendor, _backend(r), r["prompt_tps"], n / t))
    return checks, skipped


def summary(checks: list[PerfCheck]) -> dict[tuple[str, str, str], tuple[int, float, float]]:
    """(backend, vendor, metric) → (n, median |APE|, p90 |APE|)."""
    out: dict[tuple[str, str, str], tuple[int, float, float]] = {}
    keys = sorted({(c.backend, c.vendor, c.metric) for c in checks})
    for key in keys:
        errs = sorted(abs(c.error) for c in checks if (c.backend, c.vendor, c.metric) == key)
        p90 = errs[min(len(errs) - 1, round(0.9 * (len(errs) - 1)))]
        out[key] = (len(errs), statistics.median(errs), p90)
    return out
