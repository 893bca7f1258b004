"""A resolved model on a GPU under an engine → one frozen ``Deployment`` and its memory
estimate: the step ``fit`` answers and every ``plan`` candidate takes.

    ResolvedModel + GpuSpec + settings
      → engine (the user's; llama.cpp for GGUF and Apple; else vLLM)
      → TP × PP layout (TP inside a node, PP across; a layer split on llama.cpp)
      → weight format (the user's, the GGUF file's, the checkpoint's) and where it runs
      → context (the user's, checked against the trained length) → Deployment → memory

Pure: names were resolved before (``gpusizer.resolve``); catalogue tables are package data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gpusizer.catalog.arch import ModelArch
from gpusizer.catalog.load import efficiency_factors, interconnects, quant_catalogue
from gpusizer.catalog.resolve import resolve_quant
from gpusizer.catalog.specs import EfficiencyFactor, GpuSpec, ModelEntry
from gpusizer.domain.kv import resolve_kv_dtype
from gpusizer.domain.options import DeploymentOptions
from gpusizer.domain.params import ParamCounts
from gpusizer.domain.quant import AppliedQuant, apply_quant
from gpusizer.domain.scenario import Deployment, default_accept_length
from gpusizer.domain.topology import Layout
from gpusizer.domain.weights import total_weight_bytes
from gpusizer.engines import ENGINE_NAMES, Engine, engine_spec, is_engine
from gpusizer.errors import BadInputError, NotInCatalogueError
from gpusizer.estimate.memory import MemoryEstimate, estimate_memory
from gpusizer.estimate.perf import efficiency_for, link_for, node_link_for
from gpusizer.estimate.roofline import Efficiency
from gpusizer.plan.suggest import suggest_changes

__all__ = [
    "MAX_SCALE_UP_GPUS",
    "FitResult",
    "ResolvedModel",
    "deploy",
    "efficiency_of",
    "engine_numbers",
]

# GPUs one tensor-parallel group can span: TP runs inside one scale-up (NVLink/PCIe) domain,
# and the largest catalogued one is a GB200 NVL72 rack (data/gpus, data/interconnects.yaml).
MAX_SCALE_UP_GPUS = 72


@dataclass(frozen=True, kw_only=True)
class ResolvedModel:
    name: str
    arch: ModelArch
    counts: ParamCounts
    source: str
    entry: ModelEntry | None = None
    native_quant: str | None = None
    exact_weight_bytes: int | None = None
    exact_includes_mtp: bool = False
    gguf_type: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FitResult:
    model: ResolvedModel
    deployment: Deployment
    estimate: MemoryEstimate
    gpu_note: str | None = None
    notes: tuple[str, ...] = field(default=())
    suggestions: tuple[str, ...] = field(default=())


def engine_numbers(engine: str) -> dict[str, float]:
    """The named constants of ``engine`` (data/engines.yaml); engines that run a
    vLLM-like profile forward inherit vLLM's activation constants."""
    return engine_spec(engine).numbers()


def efficiency_of(
    dep: Deployment, link: str | None = None, user_factors: tuple[EfficiencyFactor, ...] = ()
) -> tuple[Efficiency, str, str | None]:
    """The efficiency factors for ``dep`` (engine × vendor × class; ``user_factors`` first),
    with the GPU link its collectives cross and the inter-node network; also the factor
    row's name and the link's name."""
    links = interconnects()
    lk = link_for(dep, links, link)
    eff, row = efficiency_for(
        (*user_factors, *efficiency_factors()),
        dep.engine,
        dep.gpu.vendor,
        lk,
        gpu_class=dep.gpu.gpu_class,
        weight_format=dep.quant.fmt.key,
    )
    name = next((k for k, v in links.items() if v is lk), None) if lk else None
    if dep.model.moe is not None and eff.moe_uncertainty is not None:
        # a MoE model's ± band is the row's error on MoE runs (DeepSeek's is wider than a dense 8B's)
        eff = replace(eff, uncertainty=eff.moe_uncertainty)
    return replace(eff, node_link=node_link_for(dep, links)), row, name


def _quant(
    model: ResolvedModel, quant: str | None, engine: str = "vllm"
) -> tuple[AppliedQuant, tuple[str, ...]]:
    """The weight format: the user's, else the GGUF file's, else (llama.cpp) Q4_K_M, else the
    checkpoint's own. On a GGUF engine (llama.cpp) a 16-bit choice means GGUF F16."""
    spec = engine_spec(engine)
    gguf = spec.checkpoints == "gguf"
    formats = quant_catalogue()
    notes: list[str] = []
    key = quant
    if key is None and model.gguf_type:
        key = model.gguf_type.lower()
        try:
            resolve_quant(key, formats)
        except NotInCatalogueError:
            key = "q4_k_m"
            notes.append(f"GGUF type {model.gguf_type} not catalogued; exact file bytes used")
    if key is None and gguf and spec.gguf_quants:
        key = spec.gguf_quants[0]
        notes.append(f"{spec.label}: weights taken as a {key.upper()} GGUF (pass --quant for another type)")
    if key is None:
        key = model.native_quant or "bf16"
        if model.native_quant:
            notes.append(f"weights as the checkpoint ships them: {model.native_quant}")
    fmt = resolve_quant(key, formats)
    if gguf and fmt.kind == "float" and fmt.key in ("bf16", "fp16"):
        fmt = resolve_quant("f16-gguf", formats)
    elif not gguf and fmt.key == "f16-gguf":  # llama.cpp's type name F16 on a GPU engine
        fmt = resolve_quant("fp16", formats)
    native = fmt.key == model.native_quant
    cfg = model.arch.quantization_config
    return apply_quant(fmt, quantization_config=cfg, native=native), tuple(notes)


def _llamacpp_only(quant: str) -> bool:
    """Whether ``quant`` names a format only GGUF engines run (a type such as Q4_K_M)."""
    try:
        runs_on = resolve_quant(quant, quant_catalogue()).engines
    except NotInCatalogueError:
        return False
    return bool(runs_on) and all(is_engine(e) and engine_spec(e).checkpoints == "gguf" for e in runs_on)


def _check_quant_on_gpu(q: AppliedQuant, gpu: GpuSpec, engine: Engine) -> tuple[str, ...]:
    """Refuse formats a GPU cannot run on ``engine``; note the ones it runs weight-only.

    FP8 needs FP8 tensor cores (Ada/Hopper/Blackwell, compute capability ≥ 8.9) for W8A8;
    vLLM (and SGLang) still serve FP8 checkpoints on Ampere as weight-only W8A16 (Marlin), at
    16-bit math speed; TensorRT-LLM's FP8 needs SM 8.9+. NVFP4 math needs Blackwell FP4 tensor cores.
    """
    if gpu.vendor != "nvidia" or q.fmt.compute_dtype not in ("fp8", "fp4"):
        return ()
    has = gpu.flops.fp8 if q.fmt.compute_dtype == "fp8" else gpu.flops.fp4
    if has:
        return ()
    alternatives = "int8, awq, gptq, bf16" if q.fmt.compute_dtype == "fp8" else "fp8, awq, bf16"
    if engine in ("vllm", "sglang") and q.fmt.compute_dtype == "fp8":
        return (
            f"{gpu.name} has no FP8 tensor cores: {engine} runs {q.fmt.key} weight-only (W8A16 Marlin), "
            "FP8 storage with 16-bit math",
        )
    raise BadInputError(
        "quant",
        f"{q.fmt.key} needs {q.fmt.compute_dtype.upper()} tensor cores, which {gpu.name} "
        f"({gpu.architecture}) lacks on {engine}",
        alternatives,
    )


# Where the serving engines run DeepSeek Sparse Attention (DeepSeek-V3.2's lightning indexer
# and top-k MLA). FlashMLA's sparse kernels (deepseek-ai/FlashMLA PR 98) and DeepGEMM's indexer
# logits are built for SM90 and SM100 only: vLLM's FLASHMLA_SPARSE backend, the one backend
# with sparse MLA, declares capability 9.x/10.x (vllm issues 30644, 31936: SM120 RTX PRO 6000
# fails; 35021: SM80 A100/A800 fails on the DeepGEMM indexer), SGLang's sparse kernels raise
# "only supported on SM90a and SM100f", and TensorRT-LLM's DSA path is its DeepSeek-V3 path on
# Hopper/Blackwell (PR 9141). On AMD, SGLang ships ROCm images that serve V3.2 on MI300 and
# MI350 (docs.sglang.io, DeepSeek V3.2 usage); vLLM's AMD support was announced as planned.
_SPARSE_ATTENTION_CAPABILITIES = ("9.", "10.")
_SPARSE_ATTENTION_AMD = {"sglang": ("cdna3", "cdna4")}


def _check_sparse_attention(resolved: ResolvedModel, gpu: GpuSpec, engine: Engine) -> None:
    """Refuse a serving engine on a GPU its DeepSeek Sparse Attention kernels do not run on."""
    a = resolved.arch
    if not (a.index_n_heads and a.index_topk and engine_spec(engine).serving):
        return
    cap = gpu.compute_capability or ""
    if gpu.vendor == "nvidia" and cap.startswith(_SPARSE_ATTENTION_CAPABILITIES):
        return
    if gpu.vendor == "amd" and gpu.architecture in _SPARSE_ATTENTION_AMD.get(engine, ()):
        return
    # one message for every GPU it refuses, so that plan's rejections group into one line
    raise BadInputError(
        "gpu",
        f"{resolved.name}'s sparse attention (lightning indexer + top-{a.index_topk} MLA) has "
        f"{engine_spec(engine).label} kernels only for Hopper and data-centre Blackwell GPUs "
        "(compute capability 9.x/10.x: FlashMLA's sparse kernels, DeepGEMM's indexer)",
        "H100, H200, H20, H800, GH200, B200, GB200; or SGLang on MI300X, MI325X, MI355X",
    )


def _engine(resolved: ResolvedModel, gpu: GpuSpec, engine: str | None, quant: str | None) -> Engine:
    """The user's engine, else llama.cpp for a GGUF file, a GGUF type name or an Apple GPU,
    else vLLM."""
    gguf_only = quant is not None and _llamacpp_only(quant)  # --quant Q4_K_M names a GGUF type
    eng = engine or ("llamacpp" if resolved.gguf_type or gguf_only or gpu.vendor == "apple" else "vllm")
    if not is_engine(eng):
        raise BadInputError("engine", f"unknown engine {eng!r}", ", ".join(ENGINE_NAMES))
    return eng


def _layout(
    engine: Engine, gpus: int | None, tp: int | None, pp: int | None, gpus_per_node: int
) -> tuple[int, int]:
    """(TP, PP): as given, else TP inside a node and PP across nodes; engines that split
    layers (llama.cpp -ngl, HF transformers device_map="auto") put every GPU in the PP split."""
    n_gpus = gpus or (tp or 1) * (pp or 1)
    if tp is None and pp is None:
        if engine_spec(engine).layer_split:
            tp_, pp_ = 1, n_gpus
        else:
            tp_ = min(n_gpus, gpus_per_node)
            pp_ = max(1, n_gpus // tp_)
    else:
        tp_ = tp or max(1, n_gpus // (pp or 1))
        pp_ = pp or max(1, n_gpus // tp_)
    if tp_ * pp_ != n_gpus:
        raise BadInputError("gpus", f"{n_gpus} GPUs do not equal tp {tp_} × pp {pp_}")
    if tp_ > MAX_SCALE_UP_GPUS:
        raise BadInputError(
            "tp",
            f"{tp_} GPUs in one tensor-parallel group; the largest scale-up domain is "
            f"{MAX_SCALE_UP_GPUS} GPUs (GB200 NVL72)",
            f"TP ≤ {MAX_SCALE_UP_GPUS}; use --pp across nodes",
        )
    return tp_, pp_


def _context(
    resolved: ResolvedModel, max_model_len: int | None, allow_long_context: bool
) -> tuple[int, tuple[str, ...]]:
    """The context per request (the user's, else the model's), and the note a context past
    the trained length needs; refused there unless ``allow_long_context``."""
    context = max_model_len or resolved.arch.max_position_embeddings or 4096
    trained = resolved.arch.max_position_embeddings
    long_note: tuple[str, ...] = ()
    if max_model_len is not None and trained and max_model_len > trained:
        if not allow_long_context:
            raise BadInputError(
                "max_model_len",
                f"{max_model_len:,} tokens is beyond {resolved.name}'s maximum of {trained:,} "
                "(max_position_embeddings)",
                f"a context ≤ {trained:,}, or --allow-long-context if you extend it with RoPE scaling",
            )
        long_note = (
            f"context {max_model_len:,} exceeds the model's {trained:,} (max_position_embeddings): "
            "the engine needs RoPE scaling configured (e.g. YaRN rope_scaling; vLLM also "
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1), and quality beyond the trained length is not guaranteed",
        )
    if resolved.entry is not None and resolved.entry.context_length and max_model_len is None:
        context = min(context, resolved.entry.context_length)
    return context, long_note


def _weights_scale(resolved: ResolvedModel, applied: AppliedQuant) -> float:
    """Exact file bytes (a GGUF, safetensors headers) over the modelled weight bytes; 1 when
    the file's size is unknown."""
    if not resolved.exact_weight_bytes:
        return 1.0
    modelled = total_weight_bytes(resolved.counts, applied)
    if resolved.exact_includes_mtp:
        modelled += (
            sum(lp.total for lp in resolved.counts.mtp_layers) * applied.fmt.linear_bits_per_weight / 8
        )
    return resolved.exact_weight_bytes / modelled if modelled else 1.0


def deploy(
    resolved: ResolvedModel,
    gpu: GpuSpec,
    opts: DeploymentOptions,
    *,
    gpu_note: str | None = None,
    suggest: bool = True,
) -> FitResult:
    """``resolved`` on ``gpu`` with the settings ``opts``: the deployment, its memory estimate
    and (when it does not fit and ``suggest``) the single changes that would make it fit."""
    o = opts
    engine_name = _engine(resolved, gpu, o.engine, o.quant)
    tp_, pp_ = _layout(engine_name, o.gpus, o.tp, o.pp, o.gpus_per_node)
    applied, qnotes = _quant(resolved, o.quant, engine_name)
    if engine_name not in applied.fmt.engines:
        raise BadInputError(
            "quant",
            f"{applied.fmt.key} does not run on {engine_name}",
            "engines: " + ", ".join(applied.fmt.engines),
        )
    qnotes = (*qnotes, *_check_quant_on_gpu(applied, gpu, engine_name))
    _check_sparse_attention(resolved, gpu, engine_name)
    if o.dp_attention and (tp_ < 2 or not engine_spec(engine_name).serving):
        raise BadInputError("dp_attention", "needs TP ≥ 2 on vLLM, SGLang or TensorRT-LLM")
    if o.spec_tokens and not engine_spec(engine_name).serving:
        raise BadInputError(
            "spec_tokens", "speculative decoding is modelled on vLLM, SGLang and TensorRT-LLM"
        )
    context, long_note = _context(resolved, o.max_model_len, o.allow_long_context)
    dep = Deployment(
        model=resolved.arch,
        quant=applied,
        gpu=gpu,
        # a TP group is one scale-up domain (16× RTX 3090 in one box is TP 16 on one node)
        layout=Layout(
            tp=tp_, pp=pp_, ep=o.ep, gpus_per_node=max(o.gpus_per_node, tp_), attention_dp=o.dp_attention
        ),
        engine=engine_name,
        engine_version=o.engine_version,
        engine_mode=o.engine_mode,
        kv_dtype=resolve_kv_dtype(o.kv_dtype, engine_name, mla=resolved.arch.mla is not None),
        max_model_len=context,
        users=o.users,
        gpu_memory_utilization=o.gpu_memory_utilization,
        max_num_seqs=o.max_num_seqs,
        max_num_batched_tokens=o.max_num_batched_tokens,
        block_size=o.block_size,
        enforce_eager=o.enforce_eager,
        # drafting with DeepSeek's own MTP layer loads it (estimate/memory.py)
        speculative_mtp=o.speculative_mtp or (o.spec_tokens > 0 and bool(resolved.counts.mtp_layers)),
        spec_tokens=o.spec_tokens,
        spec_accept=_accept(o.spec_tokens, o.spec_accept),
        usage=o.usage,
        engine_numbers=engine_numbers(engine_name),
        counts=resolved.counts,
        weights_scale=_weights_scale(resolved, applied),
    )
    est = estimate_memory(dep)
    return FitResult(
        model=resolved,
        deployment=dep,
        estimate=est,
        gpu_note=gpu_note,
        notes=(*resolved.notes, *qnotes, *long_note, *_spec_note(o.spec_tokens, resolved)),
        suggestions=() if est.fits or not suggest else suggest_changes(dep),
    )


def _accept(spec_tokens: int, accept: float | None) -> float:
    """The accept length to simulate: the user's, or the default for ``spec_tokens``."""
    if not spec_tokens:
        if accept is not None and accept != 1.0:
            raise BadInputError("spec_accept", "needs spec_tokens (tokens drafted per step) above 0")
        return 1.0
    return default_accept_length(spec_tokens) if accept is None else accept


def _spec_note(spec_tokens: int, resolved: ResolvedModel) -> tuple[str, ...]:
    """What the memory estimate leaves out when a separate draft head drafts."""
    if not spec_tokens or resolved.counts.mtp_layers:
        return ()
    return (
        "speculative decoding: the draft head's own weights (an EAGLE head is about one layer and"
        " an lm_head) are not counted in memory; its step costs are",
    )
