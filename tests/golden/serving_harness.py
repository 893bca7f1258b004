"""TensorRT-LLM max-throughput tables (tests/golden/perf_cases_trtllm.jsonl, copied from
shared/calibration/perf_cases.jsonl with their sources) through gpusizer's steady-state
throughput model. Shared by the golden test and benchmarks/validate_perf.py."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gpusizer.api import fit
from gpusizer.catalog.load import efficiency_factors, gpu_catalogue, interconnects
from gpusizer.catalog.resolve import resolve_gpu
from gpusizer.errors import GpusizerError
from gpusizer.estimate.perf import efficiency_for, link_for
from gpusizer.estimate.roofline import Efficiency
from gpusizer.estimate.serving import steady_state_throughput

HERE = Path(__file__).parent
MODELS = {
    "meta-llama/Llama-3.1-8B": "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B": "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-3.1-405B": "meta-llama/Llama-3.1-405B",
    "mistralai/Mixtral-8x7B-v0.1": "mistralai/Mixtral-8x7B-v0.1",
    "mistralai/Mixtral-8x22B-v0.1": "mistralai/Mixtral-8x22B-v0.1",
}
# DeepSeek-R1 rows run TensorRT-LLM with attention data parallelism and expert parallelism at
# the batch they state. The NVFP4 checkpoints mix NVFP4 experts with FP8 attention, which the
# format catalogue does not describe yet.
DEEPSEEK = {"deepseek-ai/DeepSeek-R1": ("deepseek-ai/DeepSeek-R1", "fp8-block")}
NOT_MODELLED = {
    "nvidia/DeepSeek-R1-FP4": "NVFP4 experts + FP8 attention mix not in the format catalogue yet",
    "nvidia/DeepSeek-R1-0528-FP4": "NVFP4 experts + FP8 attention mix not in the format catalogue yet",
}
QUANT = {
    "fp8": ("fp8", "fp8"),
    "fp16": ("fp16", "auto"),
}
FREE_FRACTION = 0.95  # the tables' note: "--kv_cache_free_gpu_mem_fraction 0.95"
MAX_BATCH = 2048  # TensorRT-LLM BuildConfig max_batch_size default (engines.yaml)


@dataclass
class ServingCheck:
    case_id: str
    gpu_class: str
    measured: float
    predicted: float
    batch: int

    @property
    def error(self) -> float:
        return (self.predicted - self.measured) / self.measured


def load_rows() -> list[dict[str, Any]]:
    text = (HERE / "perf_cases_trtllm.jsonl").read_text()
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def prepared() -> tuple[list[tuple[dict[str, Any], Any, int]], list[tuple[str, str]]]:
    """(row, deployment, kv tokens) for every row gpusizer can read; skipped rows with why."""
    out: list[tuple[dict[str, Any], Any, int]] = []
    skipped: list[tuple[str, str]] = []
    for r in load_rows():
        cid = r["case_id"]
        if r["model_id"] in NOT_MODELLED:
            skipped.append((cid, NOT_MODELLED[r["model_id"]]))
            continue
        model = MODELS.get(r["model_id"])
        quant = QUANT.get(str(r.get("weight_precision")))
        dp_attention = r["model_id"] in DEEPSEEK
        if dp_attention:
            model, q = DEEPSEEK[r["model_id"]]
            quant = (q, "auto")
        if model is None or quant is None or not r.get("output_tps") or not r.get("input_tokens"):
            skipped.append((cid, f"{r['model_id']} / {r.get('weight_precision')}: not mapped"))
            continue
        try:
            gpu = resolve_gpu(r["gpu_key"], gpu_catalogue()).gpu
        except GpusizerError:
            skipped.append((cid, f"GPU {r['gpu_key']} not in the catalogue"))
            continue
        isl, osl = int(r["input_tokens"]), int(r["output_tokens"])
        try:
            res = fit(
                model,
                gpu.key,
                engine="tensorrt-llm",
                quant=quant[0],
                kv_dtype=quant[1],
                ep=bool(r.get("expert_parallel")),
                dp_attention=dp_attention,
                tp=int(r.get("tensor_parallel") or 1),
                pp=int(r.get("pipeline_parallel") or 1),
                max_model_len=isl + osl,
                gpu_memory_utilization=FREE_FRACTION,
            )
        except GpusizerError as exc:
            skipped.append((cid, exc.message))
            continue
        if res.estimate.kv_cache_tokens < isl + osl:
            skipped.append((cid, "does not fit in gpusizer's memory model"))
            continue
        out.append((r, res.deployment, res.estimate.kv_cache_tokens))
    return out, skipped


def run(eff_override: Efficiency | None = None) -> tuple[list[ServingCheck], list[tuple[str, str]]]:
    cases, skipped = prepared()
    checks: list[ServingCheck] = []
    for r, dep, kv_tokens in cases:
        eff = eff_override
        if eff is None:
            eff, _ = efficiency_for(
                efficiency_factors(),
                "tensorrt-llm",
                dep.gpu.vendor,
                link_for(dep, interconnects()),
                gpu_class=dep.gpu.gpu_class,
            )
            # trtllm-bench drives the engine in-process: no OpenAI server detokenising and
            # streaming each token, the work sequence_overhead_s (fitted on served runs) is
            eff = replace(eff, sequence_overhead_s=0.0)
        elif dep.layout.gpus > 1:
            eff = replace(eff, link=link_for(dep, interconnects()))
        ss = steady_state_throughput(
            dep,
            eff,
            input_len=int(r["input_tokens"]),
            output_len=int(r["output_tokens"]),
            kv_tokens=kv_tokens,
            max_batch=int(r.get("batch_size") or MAX_BATCH),  # rows that state their batch ran at it
        )
        checks.append(
            ServingCheck(
                r["case_id"], dep.gpu.gpu_class, float(r["output_tps"]), ss.output_tokens_per_s, ss.batch
            )
        )
    return checks, skipped


def mdape(checks: list[ServingCheck]) -> float:
    return statistics.median(abs(c.error) for c in checks)
