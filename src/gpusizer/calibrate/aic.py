"""NVIDIA aiconfigurator's measured serving runs (``silicon_sample.csv``) as gpusizer inputs.

aiconfigurator (Apache-2.0, https://github.com/ai-dynamo/aiconfigurator) ships in its wheel a
table of end-to-end runs it measured on real servers — model, GPU, engine and version,
parallel layout, fixed input/output lengths, a concurrency (``batch_size``, the benchmark
client's cap) and the measured TTFT and TPOT. It uses them to score its own estimator; we
use them the same way, as data gpusizer's factors were never fitted on.

``aic_case`` maps one row to a :class:`~gpusizer.calibrate.cases.ServingCase` (aggregated
serving on one node only; disaggregated prefill/decode is not a gpusizer deployment), or a
:class:`~gpusizer.calibrate.cases.Skipped` with the reason. ``HEADLINE_SETS`` are the four
sets issue 16 compares on: DeepSeek-V3 on 8×H200 with SGLang and TensorRT-LLM, Llama-3.1-8B
on H100 with TensorRT-LLM and Llama-3.1-70B FP8 on H200 with vLLM.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from gpusizer.calibrate.cases import INFERENCEX, Measured, ServingCase, Skipped

__all__ = [
    "HEADLINE_SETS",
    "REQUESTS_PER_USER",
    "TTFT_GROWTH_LIMIT",
    "TTFT_NOT_FITTED",
    "WARMUP_PER_USER",
    "aic_case",
    "concurrency_of",
    "find_silicon_sample",
    "read_rows",
    "set_of",
    "ttft_growths",
    "ttft_output_growth",
]

# aiconfigurator system name → catalogue GPU
SYSTEMS = {
    "h100_sxm": "H100 SXM",
    "h200_sxm": "H200",
    "b200_sxm": "B200",
    "a100_sxm": "A100 SXM 80GB",
}

# checkpoint ids in the table → the catalogue's entry for the same architecture
MODELS = {
    "meta-llama/Llama-3.1-70B": "meta-llama/Llama-3.1-70B-Instruct",
    "nvidia/Llama-3.1-8B-Instruct-FP8": "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen3-32B-FP8": "Qwen/Qwen3-32B",
}

# GPUs per node of each system (aiconfigurator's systems/<name>.yaml: node.num_gpus_per_node,
# v0.12.0); an aggregated row is one node
GPUS_PER_NODE = {"h100_sxm": 8, "h200_sxm": 8, "b200_sxm": 8, "a100_sxm": 8}

BACKENDS = {"trtllm": "tensorrt-llm", "sglang": "sglang", "vllm": "vllm"}

# model family, named as serving_cases.jsonl names it (the leave-one-family-out groups)
FAMILIES = {"deepseek": "deepseek-v3", "llama-3": "llama", "qwen3": "qwen3", "gpt-oss": "gpt-oss"}


def _family(model: str) -> str:
    name = model.split("/")[-1].lower()
    if "qwen3" in name and "-a" in name:
        return "qwen3-moe"
    return next((f for k, f in FAMILIES.items() if k in name), name)


# (backend, model, system): the sets issue 16 names
HEADLINE_SETS = {
    ("sglang", "deepseek-ai/DeepSeek-V3", "h200_sxm"): "DeepSeek-V3 · 8×H200 · SGLang",
    ("trtllm", "deepseek-ai/DeepSeek-V3", "h200_sxm"): "DeepSeek-V3 · 8×H200 · TensorRT-LLM",
    ("trtllm", "meta-llama/Llama-3.1-8B-Instruct", "h100_sxm"): "Llama-3.1-8B · H100 · TensorRT-LLM",
    ("vllm", "meta-llama/Llama-3.1-70B", "h200_sxm"): "Llama-3.1-70B FP8 · H200 · vLLM",
}

# The table does not say how each run was driven. aiconfigurator's own benchmark recipe
# (generator/config/backend_templates/benchmark/bench_run.sh.j2, v0.12.0) runs aiperf at a
# fixed concurrency with fixed lengths (isl/osl stddev 0, ignore_eos), 20 × concurrency
# measured requests after 2 × concurrency warm-up requests. We simulate the same warm-up and
# 8 measured rounds, not 20, to bound the simulation time (each round of an 8k-token output
# is 8k steps).
REQUESTS_PER_USER = 8
WARMUP_PER_USER = 2


def concurrency_of(row: dict[str, str]) -> int:
    """The benchmark client's concurrency: ``silicon_concurrency`` in the row's source note
    where it is given, else ``batch_size``; 0 where neither is."""
    m = re.search(r"silicon_concurrency=(\d+)", row.get("silicon_data_source", ""))
    return int(m.group(1)) if m else _int(row, "batch_size", 0)


# Sets whose measured TTFT is scored but not fitted on. In NVIDIA's Llama-3.1-8B runs on
# TensorRT-LLM 1.0.0rc3 the TTFT grows with the *output* length at a fixed prompt, layout and
# concurrency (median 2.2x from 128 to 512 output tokens at 8 users), and at 8-32 users it is
# E2E / c plus a prefill's 40-90 ms: each new request waits for the next one to finish, a wait
# outside the engine's steps. Fitted on, that wait was read as prompt cost (prefill_overhead_s
# 19 ms on every TensorRT-LLM prompt chunk), which in turn slowed every mixed decode step of
# those very runs (TPOT up to 1.7x slow at 128 users). The other three headline sets' TTFT does
# not grow with the output (median 0.98-1.02x). benchmarks/aic_ttft_shape.py prints the evidence, and
# tests/golden/test_aic_rows.py holds this set to the rows (TTFT_GROWTH_LIMIT).
TTFT_NOT_FITTED = {
    "Llama-3.1-8B · H100 · TensorRT-LLM": "TTFT grows with the output length: it waits for completions",
}
TTFT_GROWTH_LIMIT = 1.3  # median TTFT(longest output) / TTFT(shortest) above which a set's TTFT waits


def ttft_growths(rows: Iterable[dict[str, str]]) -> dict[tuple[str, str, str, int], float]:
    """Per (set, prompt length, TP, concurrency) with more than one output length: the measured
    TTFT at the longest output over the TTFT at the shortest."""
    groups: dict[tuple[str, str, str, int], list[tuple[int, float]]] = {}
    for r in rows:
        try:
            osl, ttft = int(r["osl"]), float(r["silicon_ttft_ms"])
        except (KeyError, ValueError):
            continue
        if r.get("mode") != "agg" or ttft <= 0:
            continue
        key = (set_of(r), r.get("isl", ""), r.get("tp_size", ""), concurrency_of(r))
        groups.setdefault(key, []).append((osl, ttft))
    return {k: max(v)[1] / min(v)[1] for k, v in groups.items() if len({o for o, _ in v}) > 1}


def ttft_output_growth(rows: Iterable[dict[str, str]]) -> dict[str, float]:
    """Per set, the median of :func:`ttft_growths`. An engine starts a new prompt at its next
    step whatever the output length, so this is near 1; well above 1, TTFT holds a wait that
    scales with whole requests."""
    ratios: dict[str, list[float]] = {}
    for (name, *_), g in ttft_growths(rows).items():
        ratios.setdefault(name, []).append(g)
    return {name: statistics.median(v) for name, v in ratios.items()}


def set_of(row: dict[str, str]) -> str:
    """The comparison set a row belongs to: a headline set's name, or backend · model · GPU."""
    key = (row["backend"], row["model_path"], row["system"])
    return (
        HEADLINE_SETS.get(key) or f"{row['model_path'].split('/')[-1]} · {row['system']} · {row['backend']}"
    )


def find_silicon_sample() -> Path | None:
    """``silicon_sample.csv`` of the installed aiconfigurator wheel, or None."""
    for package in ("aiconfigurator_core", "aiconfigurator"):
        try:
            ref = resources.files(package).joinpath("systems", "silicon_sample.csv")
        except (ModuleNotFoundError, TypeError):
            continue
        if ref.is_file():
            return Path(str(ref))
    return None


def read_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _quant(row: dict[str, str], model: str) -> tuple[str | None, str | None]:
    """(gpusizer weight format, reason to skip)."""
    gemm, moe = row.get("gemm_quant_mode", ""), row.get("moe_quant_mode", "")
    precision = row.get("precision", "")
    if "deepseek" in model.lower() and precision == "fp8":
        return "fp8-block", None  # DeepSeek-V3/R1 ship 128×128 block-scaled FP8
    if precision in ("", "bf16", "fp16") and gemm in ("", "float16", "bfloat16"):
        return "bf16", None
    if precision == "fp8" or gemm == "fp8":
        return ("fp8-block" if "block" in (gemm + moe) else "fp8"), None
    if precision == "fp4" and "gpt-oss" in model:
        return None, None  # the checkpoint's own MXFP4 experts
    return None, f"precision {precision!r} (gemm {gemm!r}, moe {moe!r}) not mapped"


def _int(row: dict[str, str], key: str, default: int = 1) -> int:
    v = row.get(key) or ""
    return int(float(v)) if v.strip() else default


def _campaign(row: dict[str, str]) -> str:
    """The cross-validation group of a row: one set is one campaign, except the runs that
    InferenceX measured (their source names an InferenceX workflow run: cases.INFERENCEX)."""
    if "workflow_run_id=" in (row.get("silicon_data_source") or ""):
        return INFERENCEX
    return f"aiconfigurator silicon_sample.csv: {set_of(row)}"


def aic_case(row: dict[str, str], known_models: Iterable[str]) -> ServingCase | Skipped:
    """One ``silicon_sample.csv`` row as a closed-loop serving case."""
    cid = row["id"]
    if row.get("mode") != "agg":
        return Skipped(case_id=cid, reason=f"mode {row.get('mode')!r}: disaggregated serving is not modelled")
    engine = BACKENDS.get(row["backend"])
    if engine is None:
        return Skipped(case_id=cid, reason=f"backend {row['backend']!r}")
    model = MODELS.get(row["model_path"], row["model_path"])
    if model not in set(known_models):
        return Skipped(case_id=cid, reason=f"{row['model_path']} not in the model catalogue")
    gpu = SYSTEMS.get(row["system"])
    if gpu is None:
        return Skipped(case_id=cid, reason=f"system {row['system']!r} not mapped")
    quant, why = _quant(row, model)
    if why:
        return Skipped(case_id=cid, reason=why)
    tp, pp, dp = _int(row, "tp_size"), _int(row, "pp_size"), _int(row, "attention_dp_size")
    ep = _int(row, "moe_ep_size")
    users = concurrency_of(row)
    if users < 1:
        return Skipped(case_id=cid, reason="no concurrency")
    gpus = tp * pp if dp <= 1 else max(tp, dp) * pp
    node = GPUS_PER_NODE.get(row["system"], 8)
    if gpus > node:
        # DeepSeek-V3 TensorRT-LLM configs 181 and 183 record tp 64 (or attention-DP 64) with
        # MoE TP 8 × EP 8 — 64 GPUs — in a set of one 8-GPU node, and every TPOT they record
        # equals config 83's 8-GPU TP 8 run at the same lengths and concurrency to within
        # 3 %: the layout column is not what ran. Such a row is not simulated on a guess.
        # (InferenceX's own records of config 181's runs, 2025-12-15, say TP 8 × EP 8 on one
        # 8×H200 node: tests/golden/serving_cases_more.jsonl, inferencex-dsr1-fp8-h200-trt-tp8-ep8-*.)
        return Skipped(
            case_id=cid, reason=f"layout of {gpus} GPUs recorded for a {node}-GPU {row['system']} node"
        )
    kwargs: dict[str, Any] = {
        "model": model,
        "gpu": gpu,
        "gpus": gpus,
        "tp": max(tp, dp) if dp > 1 else tp,
        "pp": pp,
        "engine": engine,
        "ep": ep > 1,
        "dp_attention": dp > 1,
        "gpus_per_node": node,
        "suggest": False,
    }
    if quant:
        kwargs["quant"] = quant
    if quant == "fp8" and engine in ("vllm", "tensorrt-llm"):
        # NVIDIA's FP8 checkpoints (ModelOpt: nvidia/Llama-3.1-70B-Instruct-FP8 and its kin)
        # carry kv_cache_quant_algo FP8, and vLLM and TensorRT-LLM then run an FP8 KV cache
        # (aiconfigurator's bundled hf_quant_config.json for that checkpoint says so)
        kwargs["kv_dtype"] = "fp8"
    ttft, tpot = row.get("silicon_ttft_ms") or "", row.get("silicon_tpot_ms") or ""
    isl, osl = _int(row, "isl", 0), _int(row, "osl", 0)
    if not ttft or not tpot or isl < 1 or osl < 1:
        return Skipped(case_id=cid, reason="no TTFT/TPOT or lengths")
    return ServingCase(
        case_id=cid,
        source=_campaign(row),
        publisher="aiconfigurator",
        family=_family(model),
        engine=engine,
        vendor="nvidia",
        deepseek="deepseek" in model.lower(),
        fit_kwargs=kwargs,
        users=users,
        requests=(REQUESTS_PER_USER + WARMUP_PER_USER) * users,
        warmup=WARMUP_PER_USER * users,
        input_len=isl,
        output_len=osl,
        dataset="fixed",
        measured=Measured(tpot_ms=float(tpot), ttft_ms=float(ttft), output_tps=None),
        ttft_fitted=set_of(row) not in TTFT_NOT_FITTED,
        source_url="https://github.com/ai-dynamo/aiconfigurator (aiconfigurator_core/systems/silicon_sample.csv)",
    )
