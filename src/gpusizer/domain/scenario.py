"""User inputs of a memory/speed question, as one frozen value: which model, stored how,
on which GPUs, under which engine and settings, for how many users at what context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from gpusizer.catalog.arch import ModelArch
from gpusizer.catalog.specs import GpuSpec
from gpusizer.domain.kv import Engine
from gpusizer.domain.params import ParamCounts, count_params
from gpusizer.domain.quant import AppliedQuant
from gpusizer.domain.topology import Layout
from gpusizer.errors import BadInputError

__all__ = [
    "MAX_SPEC_TOKENS",
    "SPEC_ACCEPT_RATE",
    "SPEC_TPOT_UNCERTAINTY",
    "VISIBLE_FRACTION_DEFAULT",
    "Deployment",
    "Usage",
    "default_accept_length",
    "tp_problem",
    "valid_tp",
]

Usage = Literal["serve", "offline"]

MAX_CONTEXT = 16 * 1024 * 1024  # 16M tokens: beyond any model today; guards absurd input
MAX_USERS = 1_000_000
MAX_SPEC_TOKENS = 16  # drafted tokens per step (SGLang's num-draft-tokens tops out in this range)
# The chance each further drafted token is kept, given the one before it was: the default
# accept length of a k-token chain is 1 + a + a^2 + ... + a^k. 0.7 reproduces the accept
# lengths SGLang's cookbook printed for DeepSeek-V3/V3.1/V3.2 MTP with 3 drafted tokens on
# ShareGPT (2.46, 2.52, 2.58, 2.61 against 2.53 here); DeepSeek-V3's technical report
# (arXiv 2412.19437) gives 85-90 % for the first drafted token alone.
SPEC_ACCEPT_RATE = 0.7
# Median |TPOT error| on the published runs with speculative decoding, predicted with their
# printed accept lengths by factors never fitted on them (benchmarks/cv_serving.py, LOSO:
# four SGLang cookbook DeepSeek MTP runs at one user, predicted 60 % fast at the median: the
# draft passes cost more than one layer each). perf and simulate show it as their ± band.
SPEC_TPOT_UNCERTAINTY = 0.60


def default_accept_length(spec_tokens: int) -> float:
    """Mean tokens kept per step with ``spec_tokens`` drafted (SPEC_ACCEPT_RATE per token)."""
    return sum(SPEC_ACCEPT_RATE**i for i in range(spec_tokens + 1))


# When no driver reading of a GPU's total memory is catalogued, take this share of the
# nominal capacity: published readings give 79.22/80 (H100), 23.58/24 (RTX 3090),
# 39.49/40 (A100-40GB), 14.74/15 (T4) → 0.983–0.990 (calibration/vllm_memory_cases.jsonl).
VISIBLE_FRACTION_DEFAULT = 0.985
# Apple silicon: Metal lets the GPU wire only part of unified memory
# (MTLDevice.recommendedMaxWorkingSetSize). Published readings: 21,845.34 MB on a 32 GB M1 Max
# = 2/3 (llama.cpp PR #2011 log); ~47–49 GB usable on 64 GB M1/M2 Max ≈ 3/4 (llama.cpp issue
# #1870). Raise it with `sysctl iogpu.wired_limit_mb`, then pass --gpu-memory-gib.
APPLE_SMALL_FRACTION = 2 / 3
APPLE_LARGE_FRACTION = 3 / 4
APPLE_LARGE_FROM_BYTES = 36 * 2**30


def tp_problem(a: ModelArch, tp: int) -> str | None:
    """Why ``a`` cannot be split ``tp`` ways by tensor parallelism, or None.

    vLLM (``QKVParallelLinear``; the same rule in SGLang and TensorRT-LLM) shards the query
    heads evenly (``num_attention_heads % tp == 0``) and either splits the KV heads evenly
    (``num_kv_heads % tp == 0``) or, with more ranks than KV heads, replicates each KV head
    over ``tp / num_kv_heads`` ranks (``tp % num_kv_heads == 0``). MLA caches one latent per
    rank, so only the query-head rule applies there."""
    heads, kv = a.num_attention_heads, a.num_kv_heads
    if heads % tp:
        return f"{tp} does not divide the {heads} attention heads"
    if a.mla is None and kv % tp and tp % kv:
        return (
            f"{tp} neither divides the {kv} KV heads nor is a multiple of them "
            "(engines split KV heads evenly, or replicate them when TP > KV heads)"
        )
    return None


def valid_tp(a: ModelArch, limit: int = 72) -> tuple[int, ...]:
    """The tensor-parallel sizes ``a`` accepts, up to ``limit``."""
    return tuple(t for t in range(1, min(limit, a.num_attention_heads) + 1) if tp_problem(a, t) is None)


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """One model replica on ``layout.gpus`` GPUs of type ``gpu`` under ``engine``.

    Optional engine settings left as None take the engine's own defaults (which depend on
    its version and the GPU); ``engine_numbers`` are the named constants of
    ``data/engines.yaml`` for that engine.
    """

    model: ModelArch
    quant: AppliedQuant
    gpu: GpuSpec
    layout: Layout = field(default_factory=Layout)
    engine: Engine = "vllm"
    engine_version: str | None = None
    engine_mode: Literal["V0", "V1"] | None = None  # vLLM engine core; default by version (V1 from 0.8)
    kv_dtype: str = "auto"
    max_model_len: int
    users: int = 1
    gpu_memory_utilization: float | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    block_size: int | None = None
    enforce_eager: bool = False
    # decode batch sizes the engine runs as CUDA graphs; other decode steps run eagerly (their
    # kernel launches cost Efficiency.eager_layer_overhead_s per layer). None: every batch (the
    # settings gpusizer's launch commands print).
    cuda_graph_batches: tuple[int, ...] | None = None
    speculative_mtp: bool = False
    # speculative decoding (MTP / EAGLE chain): tokens a one-layer draft proposes per step,
    # verified with the sequence's own token in one pass of the model; 0: off
    spec_tokens: int = 0
    # mean tokens each decoding sequence keeps per step (1 … spec_tokens + 1; SGLang logs it as
    # "accept len"); default_accept_length(spec_tokens) where not measured
    spec_accept: float = 1.0
    usage: Usage = "serve"
    engine_numbers: Mapping[str, float] = field(default_factory=dict, compare=False)
    counts: ParamCounts | None = field(default=None, compare=False)
    weights_scale: float = 1.0  # exact stored bytes / modelled bytes, when a file told us

    def __post_init__(self) -> None:
        if not 1 <= self.max_model_len <= MAX_CONTEXT:
            raise BadInputError("max_model_len", f"must be 1..{MAX_CONTEXT}, got {self.max_model_len}")
        if not 1 <= self.users <= MAX_USERS:
            raise BadInputError("users", f"must be 1..{MAX_USERS}, got {self.users}")
        u = self.gpu_memory_utilization
        if u is not None and not 0.05 <= u <= 1.0:
            raise BadInputError("gpu_memory_utilization", f"must be in (0.05, 1], got {u}")
        if not 0 <= self.spec_tokens <= MAX_SPEC_TOKENS:
            raise BadInputError("spec_tokens", f"must be 0..{MAX_SPEC_TOKENS}, got {self.spec_tokens}")
        if not 1.0 <= self.spec_accept <= self.spec_tokens + 1:
            raise BadInputError(
                "spec_accept",
                f"must be 1..{self.spec_tokens + 1} (tokens kept per step with {self.spec_tokens} drafted),"
                f" got {self.spec_accept}",
            )
        for name, value in (
            ("max_num_seqs", self.max_num_seqs),
            ("max_num_batched_tokens", self.max_num_batched_tokens),
            ("block_size", self.block_size),
        ):
            if value is not None and not 1 <= value <= MAX_CONTEXT:
                raise BadInputError(name, f"must be 1..{MAX_CONTEXT}, got {value}")
        a = self.model
        tp = self.layout.tp
        if tp > 1:
            problem = tp_problem(a, tp)
            if problem:
                raise BadInputError("tp", problem, ", ".join(str(t) for t in valid_tp(a)))
        if self.layout.pp > a.num_layers:
            raise BadInputError("pp", f"{self.layout.pp} stages for {a.num_layers} layers")

    @property
    def param_counts(self) -> ParamCounts:
        return self.counts if self.counts is not None else count_params(self.model)

    @property
    def visible_memory_bytes(self) -> int:
        g = self.gpu
        if g.memory_visible_bytes:
            return g.memory_visible_bytes
        if g.vendor == "apple":
            share = APPLE_LARGE_FRACTION if g.memory_bytes > APPLE_LARGE_FROM_BYTES else APPLE_SMALL_FRACTION
            return int(g.memory_bytes * share)
        return int(g.memory_bytes * VISIBLE_FRACTION_DEFAULT)
