"""llama.cpp llama-bench measurements (pp = prompt tokens/s, tg = generated tokens/s at
batch 1) run through gpusizer's step-time model. Shared by the golden perf tests,
benchmarks/fit_perf.py and benchmarks/validate_perf.py.

Rows live in perf_cases_llamacpp.jsonl, each with its source_url and verbatim evidence
(copied from shared/calibration/perf_cases.jsonl, plus the XiongjieDai/GPU-Benchmarks-on-
LLM-Inference notebooks and the Q8_0 columns of llama.cpp discussion #4167).

    row ─▶ catalogue model × GPU × GGUF type ─▶ Deployment ─▶ step_time(prefill chunks | decode)
                                                     ▲
                  efficiency.yaml llamacpp rows (or the caller's factors / one fixed Efficiency)

A row's *source* is its publication (a discussion, a repository file, an issue): the unit the
leave-one-source-out validation drops. A row's *family* groups GGUF types whose kernels cost
alike (see ``FAMILIES``)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from gpusizer.api import fit
from gpusizer.catalog.load import efficiency_factors, gpu_catalogue, interconnects
from gpusizer.catalog.resolve import resolve_gpu
from gpusizer.catalog.specs import EfficiencyFactor
from gpusizer.errors import GpusizerError
from gpusizer.estimate.perf import efficiency_for, link_for
from gpusizer.estimate.roofline import Batch, Efficiency, step_time
from gpusizer.units import GIB

HERE = Path(__file__).parent
# llama-bench's type names → quant keys of data/quant.yaml
QUANT = {
    "Q4_0": "q4_0",
    "Q4_1": "q4_1",
    "F16": "f16-gguf",
    "Q8_0": "q8_0",
    "Q4_K_M": "q4_k_m",
    "Q4_K_S": "q4_k_s",
    "Q5_K_M": "q5_k_m",
    "Q5_K_S": "q5_k_s",
    "Q6_K": "q6_k",
    "Q3_K_S": "q3_k_s",
    "Q3_K_M": "q3_k_m",
    "Q3_K_L": "q3_k_l",
    "Q2_K": "q2_k",
}
# row model id → catalogue id (Meta-Llama-3-70B is not catalogued; Llama-3.1-70B has the
# same architecture: 80 layers, hidden 8192, FFN 28672, 64 heads / 8 KV heads, vocab 128256)
MODELS = {
    "meta-llama/Llama-2-7b-hf": "meta-llama/Llama-2-7b-hf",
    "meta-llama/Meta-Llama-3-8B": "meta-llama/Meta-Llama-3-8B",
    "meta-llama/Meta-Llama-3-70B": "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-3.2-3B-Instruct": "meta-llama/Llama-3.2-3B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct": "meta-llama/Llama-3.3-70B-Instruct",
}
# GGUF types whose prefill/decode kernels cost alike. "q4_0" is the general family: the
# efficiency.yaml row without weight_formats; the others get rows naming their types.
FAMILIES: dict[str, tuple[str, ...]] = {
    "kquant": (
        "q2_k",
        "q2_k_s",
        "q3_k_s",
        "q3_k_m",
        "q3_k_l",
        "q4_k_s",
        "q4_k_m",
        "q5_k_s",
        "q5_k_m",
        "q6_k",
    ),
    "q8_0": ("q8_0",),
    "f16": ("f16-gguf",),
}


def family_of(quant: str) -> str:
    """The weight-type family of a quant key ("q4_0" for anything without its own rows)."""
    return next((name for name, keys in FAMILIES.items() if quant in keys), "q4_0")


@dataclass
class PerfCheck:
    case_id: str
    metric: str  # tg | pp
    vendor: str
    backend: str
    measured: float  # tokens/s
    predicted: float
    source: str = ""  # the publication (see ``source_of``)
    family: str = "q4_0"  # weight-type family (see ``FAMILIES``)
    group: str = ""  # vendor/class as efficiency.yaml keys it ("nvidia/consumer", "apple/any")
    tokens: int = 0  # prompt tokens (pp) or generated tokens (tg)
    gpu: str = ""  # catalogue GPU key
    dtype: str = ""  # the format's compute dtype (quant.yaml), whose tensor peak pp is measured against

    @property
    def error(self) -> float:
        return (self.predicted - self.measured) / self.measured


def _backend(row: dict[str, Any]) -> str:
    text = str(row.get("engine_backend") or "").lower()
    for name in ("vulkan", "metal", "rocm", "cuda"):
        if name in text:
            return name
    return text or "?"


def source_of(row: dict[str, Any]) -> str:
    """The publication a row comes from: a discussion / issue (URL without its fragment) or a
    repository (owner/name for files read from one repository at one commit)."""
    url = str(row["source_url"]).split("#")[0]
    if "/blob/" in url:
        return url.split("/blob/")[0].removeprefix("https://github.com/")
    return url.removeprefix("https://github.com/")


def load_rows() -> list[dict[str, Any]]:
    return [json.loads(x) for x in (HERE / "perf_cases_llamacpp.jsonl").read_text().splitlines() if x.strip()]


@cache
def _deployment(model: str, gpu_key: str, quant: str, file_gib: float | None) -> Any:
    res = fit(model, gpu_key, engine="llamacpp", quant=quant, max_model_len=4096)
    dep = res.deployment
    if file_gib:  # llama-bench printed the exact file size
        dep = replace(dep, weights_scale=file_gib * GIB / res.estimate.total_weight_bytes)
    return dep


def run(
    eff_override: dict[str, Efficiency] | None = None,
    *,
    factors: Sequence[EfficiencyFactor] | None = None,
    keep: Callable[[dict[str, Any]], bool] | None = None,
    include_excluded: bool = False,
) -> tuple[list[PerfCheck], list[tuple[str, str]]]:
    """Predict every mapped row. ``eff_override`` maps a vendor to fixed factors (for
    fitting); else ``factors`` (default: data/efficiency.yaml) chooses llama.cpp × vendor ×
    class × weight format as the CLI does. ``keep`` filters rows; a metric a row lists under
    ``excluded_metrics`` (a run its own publication shows to be broken) is skipped unless
    ``include_excluded``."""
    table = tuple(factors) if factors is not None else efficiency_factors()
    checks: list[PerfCheck] = []
    skipped: list[tuple[str, str]] = []
    for r in load_rows():
        if keep is not None and not keep(r):
            continue
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
        dep = _deployment(model, gpu.key, quant, r.get("model_file_size_gib"))
        eff = (eff_override or {}).get(gpu.vendor)
        if eff is None:
            eff, _ = efficiency_for(
                table,
                "llamacpp",
                gpu.vendor,
                link_for(dep, interconnects()),
                gpu_class=gpu.gpu_class,
                weight_format=quant,
            )
        group = f"{gpu.vendor}/{gpu.gpu_class if gpu.vendor == 'nvidia' else 'any'}"
        common = {
            "source": source_of(r),
            "family": family_of(quant),
            "group": group,
            "gpu": gpu.key,
            "dtype": dep.quant.fmt.compute_dtype,
        }
        excluded = () if include_excluded else tuple(r.get("excluded_metrics") or ())
        depth = int(r.get("context_depth_tokens") or 0)
        if r.get("gen_tps") and r.get("output_tokens") and "tg" not in excluded:
            n = int(r["output_tokens"])
            st = step_time(dep, Batch(decode=(depth + n // 2,)), eff)
            checks.append(
                PerfCheck(
                    cid, "tg", gpu.vendor, _backend(r), r["gen_tps"], 1 / st.total_s, **common, tokens=n
                )
            )
        if r.get("prompt_tps") and r.get("input_tokens") and "pp" not in excluded:
            n = int(r["input_tokens"])
            t = 0.0
            done = 0
            while done < n:  # llama-bench processes the prompt in n_batch-sized chunks
                k = min(2048, n - done)
                t += step_time(dep, Batch(prefill=((k, depth + done),)), eff).total_s
                done += k
            checks.append(
                PerfCheck(cid, "pp", gpu.vendor, _backend(r), r["prompt_tps"], n / t, **common, tokens=n)
            )
    return checks, skipped


def p90(values: Sequence[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]


def summary(checks: list[PerfCheck]) -> dict[tuple[str, str, str], tuple[int, float, float]]:
    """(backend, vendor, metric) → (n, median |APE|, p90 |APE|)."""
    out: dict[tuple[str, str, str], tuple[int, float, float]] = {}
    keys = sorted({(c.backend, c.vendor, c.metric) for c in checks})
    for key in keys:
        errs = [abs(c.error) for c in checks if (c.backend, c.vendor, c.metric) == key]
        out[key] = (len(errs), statistics.median(errs), p90(errs))
    return out
