"""The search space of ``plan``: which engines, GPU counts, replicas, weight formats and KV
dtypes to try on a GPU, the TP/PP layout of a GPU count, and candidate names. Pure values in,
lists out; the orchestration that fits and evaluates them is ``gpusizer.planning``."""

from __future__ import annotations

from collections.abc import Sequence

from gpusizer.catalog.specs import GpuSpec
from gpusizer.engines import PLAN_ENGINES, all_engines, engine_spec, engines_for_vendor
from gpusizer.plan.systems import Placement

__all__ = [
    "CLASSES",
    "ENGINES",
    "GPU_COUNTS",
    "KV_NOTES",
    "REPLICAS",
    "candidate_name",
    "distinct_placements",
    "engines_for",
    "kv_dtypes_for",
    "layouts_for",
    "quants_for",
]

GPU_COUNTS = (1, 2, 4, 8, 16)  # GPUs per engine; 16 = two 8-GPU boxes (TP 8 × PP 2)
REPLICAS = (1, 2, 4, 8)  # independent engines behind a load balancer (data parallel)
CLASSES = ("consumer", "workstation", "datacenter", "apple")
ENGINES = PLAN_ENGINES  # engines with a serving command (gpusizer.engines)

# What a lower-precision KV cache costs in quality (shown next to a plan that uses one).
KV_NOTES = {
    "fp8": "FP8 KV cache (e4m3, per-tensor scales): half the KV memory; vLLM's quantized-KV docs "
    "report little accuracy loss, but check long-context quality on your own prompts",
    "q8_0": "llama.cpp q8_0 KV cache (needs flash attention): half the KV memory, near-lossless",
}


def quants_for(
    native: str | None, gpu: GpuSpec, precision: str, requested: Sequence[str] | None, engine: str = "vllm"
) -> list[str]:
    """Weight formats to try: the user's, else 4-bit AWQ (the guide's default) plus the
    checkpoint's own format or FP8 where the card has FP8 tensor cores; GGUF on llama.cpp;
    16-bit (or native) and FP8 for ``precision="high"``."""
    if requested:
        return list(requested)
    gguf = engine_spec(engine).gguf_quants
    if gguf is not None:  # GGUF: Q4_K_M is llama.cpp's usual 4-bit, Q8_0 its near-lossless one
        usual, high = gguf
        return [high] if precision == "high" else [usual]
    has_fp8 = bool(gpu.flops.fp8)
    if precision == "high":
        out = ["bf16"] if native is None else [native]
        return out + (["fp8"] if has_fp8 and native is None else [])
    out = ["awq"]
    if native:
        out.append(native)
    elif has_fp8:
        out.append("fp8")
    return out


def kv_dtypes_for(gpu: GpuSpec, engine: str, requested: str | None) -> list[str]:
    """The KV dtypes to try: the engine's default, and the 8-bit cache where the card and
    engine run it (FP8 on FP8-capable GPUs under vLLM/SGLang/TensorRT-LLM; q8_0 on llama.cpp)."""
    if requested is not None:
        return [requested]
    spec = engine_spec(engine)
    if spec.compact_kv is None or (spec.compact_kv_needs_fp8 and not gpu.flops.fp8):
        return ["auto"]
    return ["auto", spec.compact_kv]


def layouts_for(heads: int, kv_heads: int, mla: bool, count: int, per_node: int = 8) -> list[tuple[int, int]]:
    """The widest valid TP inside one node, PP for the rest (across nodes)."""
    tp = min(count, per_node)
    while tp >= 1:
        if count % tp == 0 and heads % tp == 0 and (mla or tp <= kv_heads or tp % kv_heads == 0):
            return [(tp, count // tp)]
        tp //= 2
    return []


def candidate_name(
    replicas: int,
    count: int,
    gpu_key: str,
    quant: str,
    dp_attention: bool = False,
    engine: str | None = None,
    kv_dtype: str = "auto",
) -> str:
    """'2 replicas × 1× rtx-4090 awq kv fp8 on vllm': a candidate's configuration."""
    lead = f"{replicas} replicas × " if replicas > 1 else ""
    return (
        f"{lead}{count}× {gpu_key} {quant}"
        + (f" kv {kv_dtype}" if kv_dtype != "auto" else "")
        + (" dp-attention" if dp_attention else "")
        + (f" on {engine}" if engine else "")
    )


def engines_for(gpu: GpuSpec, wanted: Sequence[str]) -> list[str]:
    """Engines to try on ``gpu`` (``EngineSpec.vendors``, ``auto_classes``): a vendor that one
    engine serves gets that engine (Apple: llama.cpp); ``auto`` tries vLLM and SGLang on
    data-centre and workstation cards, vLLM and llama.cpp on consumer cards; named engines
    are kept where they run on the vendor (TensorRT-LLM: NVIDIA only)."""
    runs_here: list[str] = [e for e in engines_for_vendor(gpu.vendor) if e in PLAN_ENGINES]
    if len(runs_here) == 1:
        return runs_here
    if "auto" in wanted:
        return [s.name for s in all_engines() if s.name in runs_here and gpu.gpu_class in s.auto_classes]
    return [e for e in wanted if e in runs_here]


def distinct_placements(ps: Sequence[Placement]) -> list[Placement]:
    """The cheapest placement for each link (a dearer box with the same link is no better)."""
    best: dict[tuple[str, str | None], Placement] = {}
    for p in sorted(ps, key=lambda p: p.capex_usd + p.power_w):
        best.setdefault((p.link_name, p.network_name), p)
    return list(best.values())
