"""The engine settings a deployment actually runs with: the user's values, else the
engine's defaults for its version and GPU (vLLM picks ``max_num_batched_tokens`` and
``max_num_seqs`` by GPU memory; SGLang derives ``mem_fraction_static`` from its reserve
formula). Each default says where it came from, so the report can show it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from gpusizer.domain.scenario import Deployment
from gpusizer.errors import BadInputError
from gpusizer.units import GIB, MIB

__all__ = ["Band", "EngineSettings", "engine_settings", "parse_version"]

Band = Literal["legacy", "per-instance", "graph-estimate", "n/a"]
LATEST_VLLM = (0, 30)


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """'0.8.5.post1' → (0, 8, 5); 'v0.11' → (0, 11, 0); None stays None."""
    if text is None:
        return None
    m = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        raise BadInputError("--engine-version", f"cannot read version {text!r}", "e.g. 0.11.0, 0.8.5")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    engine: str
    version: tuple[int, ...]
    band: Band
    memory_fraction: float  # vLLM gpu_memory_utilization | SGLang mem_fraction_static | TRT free fraction
    max_num_batched_tokens: int
    max_num_seqs: int
    block_size: int
    sampler_rows: int = 0  # rows of [rows, vocab] logits in the profiled sampler run (0: min(T, seqs))
    defaults_used: tuple[str, ...]  # "gpu_memory_utilization=0.92 (vLLM ≥0.25 default)", …


def _vf(version: tuple[int, ...], number: float) -> bool:
    """version >= number; catalogue versions encode 0.21 → (0, 21, 0), 0.0902 → (0, 9, 2)."""
    major = int(number)
    frac = round((number - major) * 10000)
    minor, patch = (frac // 100, frac % 100) if frac >= 100 else (frac, 0)
    return tuple(version[:3]) >= (major, minor, patch)


def engine_settings(dep: Deployment) -> EngineSettings:
    n = dep.engine_numbers
    used: list[str] = []
    vis = dep.visible_memory_bytes
    if dep.engine == "vllm":
        version: tuple[int, ...] = parse_version(dep.engine_version) or LATEST_VLLM
        if len(version) < 3:
            version = (*version, 0)
        band: Band
        if not _vf(version, n["context_outside_from_version"]):
            band = "legacy"
        elif _vf(version, n["graph_estimate_from_version"]) and not dep.enforce_eager:
            band = "graph-estimate"
        else:
            band = "per-instance"
        util = dep.gpu_memory_utilization
        if util is None:
            new = _vf(version, n["new_utilization_from_version"])
            util = n["gpu_memory_utilization_default_new" if new else "gpu_memory_utilization_default_old"]
            used.append(f"gpu_memory_utilization={util:g} (vLLM {'≥0.25' if new else '<0.25'} default)")
        v1 = dep.engine_mode == "V1" if dep.engine_mode else version >= (0, 8, 0)
        large = vis >= n["large_gpu_threshold_gib"] * GIB and "a100" not in dep.gpu.key
        mnbt, mns = dep.max_num_batched_tokens, dep.max_num_seqs
        if v1:
            size = "large" if large else "small"
            kind = "serve" if dep.usage == "serve" else "offline"
            if mnbt is None:
                mnbt = int(n[f"mnbt_{kind}_{size}"])
                used.append(
                    f"max_num_batched_tokens={mnbt} (vLLM V1 {kind} default, "
                    f"{'≥' if large else '<'}70 GiB GPU)"
                )
            if mns is None:
                mns = int(n[f"mns_{kind}_{size}"])
                used.append(f"max_num_seqs={mns} (vLLM V1 default)")
        else:
            if mnbt is None:
                mnbt = max(dep.max_model_len, int(n["v0_min_batched_tokens"]))
                used.append(f"max_num_batched_tokens={mnbt} (vLLM V0: max(max_model_len, 2048))")
            if mns is None:
                mns = int(n["v0_max_num_seqs"])
                used.append(f"max_num_seqs={mns} (vLLM V0 default)")
        block = dep.block_size
        if block is None:
            cc = float(dep.gpu.compute_capability or 0)
            if dep.model.mla is not None and v1 and cc >= 9.0:
                block = int(n["mla_block_size"])
                used.append(f"block_size={block} (FlashMLA on compute capability ≥ 9.0)")
            else:
                block = int(n["block_size"])
        rows = min(mnbt, mns)
        if v1 and not _vf(version, n["sampler_all_rows_before_version"]):
            rows = mnbt  # early V1 sampled every profiled token's logits
        return EngineSettings(
            engine="vllm",
            version=version,
            band=band,
            memory_fraction=util,
            max_num_batched_tokens=mnbt,
            max_num_seqs=mns,
            block_size=block,
            sampler_rows=rows,
            defaults_used=tuple(used),
        )
    if dep.engine == "sglang":
        vis_mib = vis / MIB
        # engine-memory.md §2.2 (_handle_gpu_memory_settings): GPU-memory tiers → chunked
        # prefill size and CUDA-graph max batch (the TP<4 column)
        tiers = [
            (20 * 1024, 2048, 8),
            (35 * 1024, 2048, 24),
            (60 * 1024, 4096, 32),
            (90 * 1024, 8192, 256),
            (160 * 1024, 8192, 256),
            (float("inf"), 16384, 512),
        ]
        chunk, graph_bs = next((c, b) for limit, c, b in tiers if vis_mib < limit)
        mnbt = dep.max_num_batched_tokens or chunk
        mfs = dep.gpu_memory_utilization
        if mfs is None:
            reserved = (
                n["reserved_base_mib"]
                + max(mnbt, 2048) * n["reserved_per_chunk_token_mib"]
                + graph_bs * n["reserved_per_graph_bs_mib"]
                + dep.layout.tp * dep.layout.pp / 8 * n["reserved_per_tp8_mib"]
            )
            if vis_mib > 60 * 1024:
                reserved = max(reserved, n["reserved_floor_large_gpu_mib"])
            mfs = round((vis_mib - reserved) / vis_mib, 3)
            used.append(f"mem_fraction_static={mfs:g} (SGLang reserve formula: {reserved:.0f} MiB)")
        block = dep.block_size or (64 if dep.model.mla is not None else 1)
        return EngineSettings(
            engine="sglang",
            version=(0,),
            band="n/a",
            memory_fraction=mfs,
            max_num_batched_tokens=mnbt,
            max_num_seqs=dep.max_num_seqs or 4096,
            block_size=block,
            defaults_used=tuple(used),
        )
    if dep.engine == "tensorrt-llm":
        frac = dep.gpu_memory_utilization or n["free_gpu_memory_fraction"]
        if dep.gpu_memory_utilization is None:
            used.append(f"free_gpu_memory_fraction={frac:g} (TensorRT-LLM default)")
        return EngineSettings(
            engine="tensorrt-llm",
            version=(1,),
            band="n/a",
            memory_fraction=frac,
            max_num_batched_tokens=dep.max_num_batched_tokens or int(n["max_num_tokens"]),
            max_num_seqs=dep.max_num_seqs or int(n["max_batch_size"]),
            block_size=dep.block_size or int(n["tokens_per_block"]),
            defaults_used=tuple(used),
        )
    ubatch = int(n.get("n_ubatch", 512))
    return EngineSettings(
        engine=dep.engine,
        version=(0,),
        band="n/a",
        memory_fraction=1.0,
        max_num_batched_tokens=dep.max_num_batched_tokens
        or (ubatch if dep.engine == "llamacpp" else dep.max_model_len),
        max_num_seqs=dep.max_num_seqs or dep.users,
        block_size=1,
        defaults_used=tuple(used),
    )
