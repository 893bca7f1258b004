"""The Python API, and the one place that turns names and files into core values.

``fit(...)`` resolves a model (catalogue name, config.json, model directory or GGUF), a
GPU (catalogue name or custom numbers), a quantization and an engine, builds a frozen
``Deployment`` and hands it to the pure estimator. The CLI and (later) the web app call
these functions, so every front end shows the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from gpusizer.catalog.arch import ModelArch
from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.catalog.load import (
    _engines,
    efficiency_factors,
    gpu_catalogue,
    interconnects,
    model_catalogue,
    model_config,
    quant_catalogue,
)
from gpusizer.catalog.resolve import resolve_gpu, resolve_model, resolve_quant
from gpusizer.catalog.specs import EfficiencyFactor, EfficiencyFile, GpuSpec, ModelEntry
from gpusizer.domain.kv import ENGINES, Engine, resolve_kv_dtype
from gpusizer.domain.params import ParamCounts, count_params
from gpusizer.domain.quant import AppliedQuant, apply_quant, native_quant_key
from gpusizer.domain.scenario import Deployment, Usage
from gpusizer.domain.topology import Layout
from gpusizer.domain.weights import total_weight_bytes
from gpusizer.errors import BadInputError, GpusizerError, NotInCatalogueError
from gpusizer.estimate.memory import MemoryEstimate, estimate_memory
from gpusizer.estimate.perf import PerfRow, efficiency_for, link_for, node_link_for, perf_rows
from gpusizer.estimate.roofline import Batch, Efficiency, step_time
from gpusizer.readers.local import read_local_model
from gpusizer.store.paths import profile_path, profiles_dir
from gpusizer.units import GB, GIB

__all__ = [
    "FitResult",
    "PerfResult",
    "ResolvedModel",
    "SimPoint",
    "SimulateResult",
    "catalogue_model",
    "efficiency_of",
    "engine_numbers",
    "fit",
    "load_efficiency_file",
    "model_from_config",
    "perf",
    "resolve_gpu_spec",
    "resolve_model_spec",
    "simulate",
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


def model_from_config(config: Mapping[str, Any], name: str = "uploaded config.json") -> ResolvedModel:
    """A model from a Hugging Face config.json already read into memory (uploads). Any
    shape this cannot read is a BadInputError naming ``config.json``, never a crash."""
    if not isinstance(config, Mapping):
        raise BadInputError("config.json", "must be a JSON object")
    try:
        arch = arch_from_hf_config(config, name)
        counts = count_params(arch)
    except GpusizerError:
        raise
    except (KeyError, TypeError, ValueError, ZeroDivisionError, AttributeError) as exc:
        raise BadInputError(
            "config.json", f"cannot read it as a model config ({exc.__class__.__name__}: {exc})"
        ) from exc
    return ResolvedModel(
        name=str(config.get("_name_or_path") or name)[:200],
        arch=arch,
        counts=counts,
        source="uploaded config.json",
        native_quant=native_quant_key(config.get("quantization_config")),
    )


def resolve_model_spec(spec: str, *, hf: bool = False) -> ResolvedModel:
    """Catalogue name / HF id, a local config.json, model directory or .gguf, or (with
    ``hf``) a Hugging Face repo fetched over the network."""
    if not spec or not spec.strip():
        raise BadInputError("MODEL", "empty model name")
    local = read_local_model(spec)
    if local is not None:
        arch = arch_from_hf_config(local.config, local.name)
        notes = (local.weight_bytes_note,) if local.weight_bytes_note else ()
        return ResolvedModel(
            name=local.name,
            arch=arch,
            counts=count_params(arch),
            source=local.source,
            native_quant=native_quant_key(local.config.get("quantization_config")),
            exact_weight_bytes=local.exact_weight_bytes,
            exact_includes_mtp=local.exact_includes_mtp,
            gguf_type=local.gguf_type,
            notes=notes,
        )
    try:
        return catalogue_model(spec)
    except NotInCatalogueError:
        if not hf:
            raise
        from gpusizer.readers.hub import fetch_hub_model

        hub = fetch_hub_model(spec)
        arch = arch_from_hf_config(hub.config, hub.name)
        return ResolvedModel(
            name=hub.name,
            arch=arch,
            counts=count_params(arch),
            source=hub.source,
            native_quant=native_quant_key(hub.config.get("quantization_config")),
            exact_weight_bytes=hub.exact_weight_bytes,
            exact_includes_mtp=hub.exact_includes_mtp,
            notes=(hub.weight_bytes_note,) if hub.weight_bytes_note else (),
        )


def catalogue_model(name: str) -> ResolvedModel:
    """A catalogue model by id, short name or alias — never a path on this machine nor a
    Hub look-up (the web app resolves names only this way)."""
    entry = resolve_model(name, model_catalogue())
    config = model_config(entry)
    arch = arch_from_hf_config(config, entry.id)
    notes = (entry.config_note,) if entry.config_note else ()
    return ResolvedModel(
        name=entry.id,
        arch=arch,
        counts=count_params(arch),
        source=entry.config_source,
        entry=entry,
        native_quant=native_quant_key(config.get("quantization_config")),
        notes=notes,
    )


MAX_USER_YAML_BYTES = 1 << 20  # a --gpu-file or --efficiency YAML: a few KiB in practice


def _read_user_file(field_name: str, path: str) -> str:
    """A small user YAML file as text; FIFOs, devices and folders are refused before any
    read (so nothing hangs), and so is anything over ``MAX_USER_YAML_BYTES``."""
    import stat

    try:
        st = Path(path).stat()
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError(field_name, f"{path!r} is not a regular file")
        if st.st_size > MAX_USER_YAML_BYTES:
            raise BadInputError(field_name, f"{path!r} is larger than 1 MiB")
        with open(path, "rb") as fh:
            return fh.read(MAX_USER_YAML_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        raise BadInputError(field_name, f"cannot read {path!r} ({exc.strerror})") from exc


def _positive(field_name: str, value: float | None) -> float | None:
    if value is not None and not 0 < value < 1e7:
        raise BadInputError(field_name, f"must be a positive number, got {value}")
    return value


def resolve_gpu_spec(
    name: str | GpuSpec | None,
    *,
    memory_gib: float | None = None,
    bandwidth_gbps: float | None = None,
    tflops_bf16: float | None = None,
    gpu_file: str | None = None,
) -> tuple[GpuSpec, str | None]:
    """Catalogue GPU (optionally with overridden capacity), a user YAML file, or a
    custom GPU from numbers alone."""
    memory_gib = _positive("--gpu-memory-gib", memory_gib)
    bandwidth_gbps = _positive("--gpu-bandwidth-gbps", bandwidth_gbps)
    tflops_bf16 = _positive("--gpu-tflops", tflops_bf16)
    note: str | None = None
    if isinstance(name, GpuSpec):
        gpu = name
    elif gpu_file:
        try:
            data: Any = yaml.safe_load(_read_user_file("--gpu-file", gpu_file))
        except yaml.YAMLError as exc:
            raise BadInputError("--gpu-file", f"{gpu_file!r} is not valid YAML") from exc
        try:
            gpu = GpuSpec.model_validate({"source": f"user file {gpu_file}", **(data or {})})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise BadInputError(
                "--gpu-file",
                f"{'.'.join(map(str, err['loc']))}: {err['msg']}",
                "the GpuSpec fields of data/gpus/*.yaml",
            ) from exc
    elif name:
        match = resolve_gpu(name, gpu_catalogue())
        gpu, note = match.gpu, match.note
    elif memory_gib:
        gpu = GpuSpec(
            key="custom",
            name=f"custom {memory_gib:g} GiB GPU",
            vendor="nvidia",
            gpu_class="datacenter",
            architecture="custom",
            memory_bytes=int(memory_gib * GIB),
            memory_bandwidth_bps=(bandwidth_gbps or 1000) * GB,
            source="user flags",
        )
    else:
        raise BadInputError(
            "--gpu", "missing", "a catalogue GPU name (see `gpusizer gpus`) or --gpu-memory-gib"
        )
    update: dict[str, Any] = {}
    if memory_gib:  # on Apple silicon this is the machine's RAM; Metal's working-set cap still applies
        update.update(
            memory_bytes=int(memory_gib * GIB),
            memory_visible_bytes=None if gpu.vendor == "apple" else int(memory_gib * GIB),
        )
    if bandwidth_gbps:
        update["memory_bandwidth_bps"] = bandwidth_gbps * GB
    if tflops_bf16:
        update["flops"] = gpu.flops.model_copy(
            update={"bf16": tflops_bf16 * 1e12, "fp16": tflops_bf16 * 1e12}
        )
    if update:
        gpu = gpu.model_copy(update=update)
    return gpu, note


def engine_numbers(engine: str) -> dict[str, float]:
    """The named constants of ``engine`` (data/engines.yaml); engines that run a
    vLLM-like profile forward inherit vLLM's activation constants."""
    table = _engines()
    base = {k: v.value for k, v in table["vllm"].numbers.items()}
    if engine != "vllm" and engine in table:
        base.update({k: v.value for k, v in table[engine].numbers.items()})
    return base


def load_efficiency_file(path: str) -> tuple[EfficiencyFactor, ...]:
    """User efficiency factors (``gpusizer calibrate`` writes them); same shape as
    data/efficiency.yaml. They take precedence over the catalogue's. ``path`` is a YAML file,
    or the name of a profile saved by ``gpusizer calibrate --profile NAME``."""
    if not Path(path).exists() and "/" not in path and not path.endswith((".yaml", ".yml")):
        named = profile_path(path, "--profile")
        if not named.exists():
            have = sorted(p.stem for p in profiles_dir().glob("*.yaml")) if profiles_dir().is_dir() else []
            raise BadInputError(
                "--profile",
                f"no file or profile named {path!r}",
                ", ".join(have) or "`gpusizer calibrate --profile NAME` saves one",
            )
        path = str(named)
    try:
        data: Any = yaml.safe_load(_read_user_file("--efficiency", path))
    except yaml.YAMLError as exc:
        raise BadInputError("--efficiency", f"{path!r} is not valid YAML") from exc
    try:
        return EfficiencyFile.model_validate(data).factors
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInputError("--efficiency", f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from exc


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
    return replace(eff, node_link=node_link_for(dep, links)), row, name


@dataclass(frozen=True, kw_only=True)
class FitResult:
    model: ResolvedModel
    deployment: Deployment
    estimate: MemoryEstimate
    gpu_note: str | None = None
    notes: tuple[str, ...] = field(default=())
    suggestions: tuple[str, ...] = field(default=())


def _quant(
    model: ResolvedModel, quant: str | None, engine: str = "vllm"
) -> tuple[AppliedQuant, tuple[str, ...]]:
    """The weight format: the user's, else the GGUF file's, else (llama.cpp) Q4_K_M, else the
    checkpoint's own. On llama.cpp a 16-bit choice means GGUF F16."""
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
    if key is None and engine == "llamacpp":
        key = "q4_k_m"
        notes.append("llama.cpp: weights taken as a Q4_K_M GGUF (pass --quant for another type)")
    if key is None:
        key = model.native_quant or "bf16"
        if model.native_quant:
            notes.append(f"weights as the checkpoint ships them: {model.native_quant}")
    fmt = resolve_quant(key, formats)
    if engine == "llamacpp" and fmt.kind == "float" and fmt.key in ("bf16", "fp16"):
        fmt = resolve_quant("f16-gguf", formats)
    elif engine != "llamacpp" and fmt.key == "f16-gguf":  # llama.cpp's type name F16 on a GPU engine
        fmt = resolve_quant("fp16", formats)
    native = fmt.key == model.native_quant
    cfg = model.arch.quantization_config
    return apply_quant(fmt, quantization_config=cfg, native=native), tuple(notes)


def fit(
    model: str | ResolvedModel,
    gpu: str | GpuSpec | None = None,
    *,
    gpus: int | None = None,
    tp: int | None = None,
    pp: int | None = None,
    quant: str | None = None,
    kv_dtype: str = "auto",
    engine: str | None = None,
    engine_version: str | None = None,
    engine_mode: Literal["V0", "V1"] | None = None,
    max_model_len: int | None = None,
    users: int = 1,
    gpu_memory_utilization: float | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    block_size: int | None = None,
    enforce_eager: bool = False,
    speculative_mtp: bool = False,
    usage: Usage = "serve",
    ep: bool = False,
    gpus_per_node: int = 8,
    dp_attention: bool = False,
    gpu_memory_gib: float | None = None,
    gpu_bandwidth_gbps: float | None = None,
    gpu_file: str | None = None,
    hf: bool = False,
    suggest: bool = True,
    allow_long_context: bool = True,
) -> FitResult:
    """Does ``model`` fit on ``gpu`` for ``users`` at ``max_model_len``? Per-GPU answer.

    A ``max_model_len`` beyond the model's ``max_position_embeddings`` is refused unless
    ``allow_long_context`` (then a note says RoPE scaling must be configured). The library
    default allows it, as engines do when told to (vLLM ``VLLM_ALLOW_LONG_MAX_MODEL_LEN``,
    and published measurements ran so); the CLI and the web API pass False unless the user
    asks (``--allow-long-context``)."""
    resolved = model if isinstance(model, ResolvedModel) else resolve_model_spec(model, hf=hf)
    gpu_spec, gpu_note = resolve_gpu_spec(
        gpu, memory_gib=gpu_memory_gib, bandwidth_gbps=gpu_bandwidth_gbps, gpu_file=gpu_file
    )
    gguf_only = quant is not None and _llamacpp_only(quant)  # --quant Q4_K_M names a GGUF type
    eng = engine or ("llamacpp" if resolved.gguf_type or gguf_only or gpu_spec.vendor == "apple" else "vllm")
    if eng not in ENGINES:
        raise BadInputError("--engine", f"unknown engine {eng!r}", ", ".join(ENGINES))
    engine_name: Engine = eng
    n_gpus = gpus or (tp or 1) * (pp or 1)
    if tp is None and pp is None:
        if engine_name in ("llamacpp", "transformers"):  # layer split (-ngl / device_map="auto")
            tp_, pp_ = 1, n_gpus
        else:  # TP inside a node, PP across nodes
            tp_ = min(n_gpus, gpus_per_node)
            pp_ = max(1, n_gpus // tp_)
    else:
        tp_ = tp or max(1, n_gpus // (pp or 1))
        pp_ = pp or max(1, n_gpus // tp_)
    if tp_ * pp_ != n_gpus:
        raise BadInputError("--gpus", f"{n_gpus} GPUs do not equal tp {tp_} × pp {pp_}")
    if tp_ > MAX_SCALE_UP_GPUS:
        raise BadInputError(
            "--tp",
            f"{tp_} GPUs in one tensor-parallel group; the largest scale-up domain is "
            f"{MAX_SCALE_UP_GPUS} GPUs (GB200 NVL72)",
            f"TP ≤ {MAX_SCALE_UP_GPUS}; use --pp across nodes",
        )
    applied, qnotes = _quant(resolved, quant, engine_name)
    if engine_name not in applied.fmt.engines:
        raise BadInputError(
            "--quant",
            f"{applied.fmt.key} does not run on {engine_name}",
            "engines: " + ", ".join(applied.fmt.engines),
        )
    qnotes = (*qnotes, *_check_quant_on_gpu(applied, gpu_spec, engine_name))
    if dp_attention and (tp_ < 2 or engine_name not in ("vllm", "sglang", "tensorrt-llm")):
        raise BadInputError("--dp-attention", "needs TP ≥ 2 on vLLM, SGLang or TensorRT-LLM")
    context = max_model_len or resolved.arch.max_position_embeddings or 4096
    trained = resolved.arch.max_position_embeddings
    long_note: tuple[str, ...] = ()
    if max_model_len is not None and trained and max_model_len > trained:
        if not allow_long_context:
            raise BadInputError(
                "--max-model-len",
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
    scale = 1.0
    if resolved.exact_weight_bytes:
        modelled = total_weight_bytes(resolved.counts, applied)
        if resolved.exact_includes_mtp:
            modelled += (
                sum(lp.total for lp in resolved.counts.mtp_layers) * applied.fmt.linear_bits_per_weight / 8
            )
        scale = resolved.exact_weight_bytes / modelled if modelled else 1.0
    dep = Deployment(
        model=resolved.arch,
        quant=applied,
        gpu=gpu_spec,
        # a TP group is one scale-up domain (16× RTX 3090 in one box is TP 16 on one node)
        layout=Layout(
            tp=tp_, pp=pp_, ep=ep, gpus_per_node=max(gpus_per_node, tp_), attention_dp=dp_attention
        ),
        engine=engine_name,
        engine_version=engine_version,
        engine_mode=engine_mode,
        kv_dtype=resolve_kv_dtype(kv_dtype, engine_name, mla=resolved.arch.mla is not None),
        max_model_len=context,
        users=users,
        gpu_memory_utilization=gpu_memory_utilization,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        block_size=block_size,
        enforce_eager=enforce_eager,
        speculative_mtp=speculative_mtp,
        usage=usage,
        engine_numbers=engine_numbers(engine_name),
        counts=resolved.counts,
        weights_scale=scale,
    )
    est = estimate_memory(dep)
    return FitResult(
        model=resolved,
        deployment=dep,
        estimate=est,
        gpu_note=gpu_note,
        notes=(*resolved.notes, *qnotes, *long_note),
        suggestions=() if est.fits or not suggest else _suggest(dep),
    )


def _llamacpp_only(quant: str) -> bool:
    """Whether ``quant`` names a format only llama.cpp runs (a GGUF type such as Q4_K_M)."""
    try:
        return resolve_quant(quant, quant_catalogue()).engines == ("llamacpp",)
    except NotInCatalogueError:
        return False


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
        "--quant",
        f"{q.fmt.key} needs {q.fmt.compute_dtype.upper()} tensor cores, which {gpu.name} "
        f"({gpu.architecture}) lacks on {engine}",
        alternatives,
    )


def _suggest(dep: Deployment) -> tuple[str, ...]:
    """Single changes that would make a failing deployment fit (each one checked)."""
    out: list[str] = []

    def fits(d: Deployment) -> bool:
        try:
            return estimate_memory(d).fits
        except BadInputError:
            return False

    if dep.kv_dtype == "auto" and dep.engine != "transformers":
        kv = "q8_0" if dep.engine == "llamacpp" else "fp8"
        if fits(replace(dep, kv_dtype=kv)):
            out.append(f"--kv-dtype {kv} (half the KV bytes) fits")
    awq = next((f for f in quant_catalogue() if f.key == "awq"), None)
    native16 = dep.quant.fmt.key in ("bf16", "fp16")
    if awq and native16 and dep.engine in awq.engines and fits(replace(dep, quant=apply_quant(awq))):
        out.append("--quant awq (4-bit, the guide's production default) fits")
    for factor in (2, 4, 8):
        try:
            if dep.engine in ("llamacpp", "transformers"):
                layout = Layout(tp=1, pp=dep.layout.pp * factor)
            else:
                layout = Layout(tp=dep.layout.tp * factor, pp=dep.layout.pp)
            candidate = replace(dep, layout=layout)
        except BadInputError:
            continue
        if fits(candidate):
            out.append(f"--gpus {layout.gpus} (TP {layout.tp} × PP {layout.pp}) fits")
            break
    users = _most_users_that_fit(dep, fits)
    if users:
        out.append(f"--users {users} fits at this context")
    return tuple(out)


def _most_users_that_fit(dep: Deployment, fits: Callable[[Deployment], bool]) -> int:
    """The largest user count below ``dep.users`` that fits (0: none). Memory need grows with
    users, so a bisection over 1..users-1 finds it in ~log2(users) estimates (a linear walk
    down from 100,000 users took 27 s)."""
    if dep.users <= 1 or not fits(replace(dep, users=1)):
        return 0
    low, high = 1, dep.users - 1  # low fits; the answer is in [low, high]
    while low < high:
        mid = (low + high + 1) // 2
        if fits(replace(dep, users=mid)):
            low = mid
        else:
            high = mid - 1
    return low


@dataclass(frozen=True, kw_only=True)
class PerfResult:
    fit: FitResult
    rows: tuple[PerfRow, ...]
    input_len: int
    output_len: int
    efficiency_row: str
    link_name: str | None
    uncertainty: float | None  # median |relative error| of the factors' fit; None: not fitted
    bandwidth_fraction: float = 1.0
    compute_fraction: float = 1.0


MAX_BATCH = 4096


def perf(
    model: str | ResolvedModel,
    gpu: str | None = None,
    *,
    input_len: int = 1024,
    output_len: int = 256,
    batches: tuple[int, ...] | None = None,
    link: str | None = None,
    efficiency_file: str | None = None,
    **fit_kwargs: Any,
) -> PerfResult:
    """TTFT, TPOT and throughput by batch size (the analytic step-time model)."""
    for name, value in (("--input-len", input_len), ("--output-len", output_len)):
        if not 1 <= value <= 16 * 1024 * 1024:
            raise BadInputError(name, f"must be 1..16M tokens, got {value}")
    if link is not None and link not in interconnects():
        raise BadInputError("--link", f"unknown link {link!r}", ", ".join(sorted(interconnects())))
    fit_kwargs.setdefault("max_model_len", input_len + output_len)
    res = fit(model, gpu, **fit_kwargs)
    dep = res.deployment
    if batches is None:
        top = max(1, min(MAX_BATCH, int(res.estimate.max_concurrency) or 1))
        batches = tuple(b for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096) if b <= top) or (
            1,
        )
    if any(not 1 <= b <= MAX_BATCH for b in batches):
        raise BadInputError("--batch", f"must be 1..{MAX_BATCH}")
    user = load_efficiency_file(efficiency_file) if efficiency_file else ()
    eff, row, link_name = efficiency_of(dep, link, user)
    rows = perf_rows(
        dep,
        eff,
        input_len=input_len,
        output_len=output_len,
        batches=batches,
        chunk=res.estimate.settings.max_num_batched_tokens if dep.engine != "llamacpp" else 2048,
    )
    return PerfResult(
        fit=res,
        rows=tuple(rows),
        input_len=input_len,
        output_len=output_len,
        efficiency_row=row,
        link_name=link_name,
        uncertainty=eff.uncertainty,
        bandwidth_fraction=eff.bandwidth_fraction,
        compute_fraction=eff.compute_fraction,
    )


def _mean_len(d: Any) -> float:
    """Mean of a LengthDist (fixed: its value; uniform: the midpoint; else its mean)."""
    if d.kind == "uniform":
        return float(d.low + d.high) / 2
    if d.kind == "empirical" and d.values:
        return float(sum(d.values)) / len(d.values)
    return float(d.mean)


@dataclass(frozen=True, kw_only=True)
class SimPoint:
    rate: float | None
    users: int | None
    stats: Any  # gpusizer.simulate.stats.SimStats
    trace: Any = None  # gpusizer.simulate.engine.SimTrace (for plots)
    binds: str = ""  # what bounds a decode step at this point's mean batch and context


@dataclass(frozen=True, kw_only=True)
class SimulateResult:
    fit: FitResult
    points: tuple[SimPoint, ...]
    knee: SimPoint | None  # first point where the SLOs fail (goodput share below 0.95)
    efficiency_row: str
    uncertainty: float | None
    warnings: tuple[str, ...] = ()  # runs that ended with requests unfinished, and what to change


def _sim_warning(point: SimPoint, requests: int) -> str | None:
    """One sentence when a simulated point ended before every request finished."""
    trace = point.trace
    if trace is None or trace.stopped is None:
        return None
    load = (
        f"{point.rate:g} req/s"
        if point.rate is not None
        else f"{point.users} users"
        if point.users is not None
        else "the trace's load"
    )
    left = trace.unfinished
    if trace.stopped == "max_steps":
        return (
            f"at {load} the simulation stopped after {trace.steps:,} engine steps (its limit) with "
            f"{left:,} of {requests:,} requests unfinished; they count as missed in goodput — simulate "
            "fewer requests (--requests, --duration) or a load this deployment can drain (lower --rate, "
            "fewer --users)"
        )
    return (
        f"at {load} {left:,} of {requests:,} requests never started: a prompt needs more KV blocks than "
        "the whole pool holds; shorten --input-len or give the deployment more KV memory (more GPUs, "
        "--kv-dtype fp8, a smaller --quant)"
    )


def simulate(
    model: str | ResolvedModel,
    gpu: str | GpuSpec | None = None,
    *,
    rates: tuple[float, ...] = (),
    users: tuple[int, ...] = (),
    input_len: Any = None,
    output_len: Any = None,
    requests: int = 1000,
    think_time_s: float = 0.0,
    burstiness: float = 1.0,
    seed: int = 0,
    slo_ttft_ms: float | None = None,
    slo_tpot_ms: float | None = None,
    trace_rows: list[dict[str, float]] | None = None,
    efficiency_file: str | None = None,
    prefix_tokens: int = 0,
    prefix_groups: int = 1,
    prefix_caching: bool | None = None,
    **fit_kwargs: Any,
) -> SimulateResult:
    """Continuous batching under load: one point per rate (open loop) or user count (closed
    loop). ``prefix_tokens`` of every prompt are shared within one of ``prefix_groups``
    groups; ``prefix_caching`` defaults to what the engine does out of the box."""
    from gpusizer.simulate.run import simulate_deployment
    from gpusizer.simulate.workload import LengthDist, Workload, requests_from_trace

    trace_reqs = requests_from_trace(trace_rows) if trace_rows is not None else None
    if trace_reqs is not None:
        rates, users = (0.0,), ()  # one point: the trace's own arrivals
        longest_trace = int((trace_reqs.input_len + trace_reqs.output_len).max())
        fit_kwargs.setdefault("max_model_len", longest_trace)
        requests = len(trace_reqs.input_len)
    elif bool(rates) == bool(users):
        raise BadInputError("--rate/--users", "give request rates or user counts (one of them)")
    inp = input_len or LengthDist(mean=1024)
    out = output_len or LengthDist(mean=256)
    longest = int(
        (inp.high if inp.kind != "fixed" else inp.mean) + (out.high if out.kind != "fixed" else out.mean)
    )
    fit_kwargs.setdefault("max_model_len", max(longest, 2))
    res = fit(model, gpu, suggest=False, **fit_kwargs)
    dep = res.deployment
    user = load_efficiency_file(efficiency_file) if efficiency_file else ()
    eff, row, _ = efficiency_of(dep, None, user)
    points: list[SimPoint] = []
    grid: list[tuple[float | None, int | None]] = [(r, None) for r in rates] + [(None, u) for u in users]
    for rate, n_users in grid:
        w = Workload(
            input_len=inp,
            output_len=out,
            rate=rate if trace_reqs is None else 1.0,
            users=n_users,
            think_time_s=think_time_s,
            burstiness=burstiness,
            requests=requests,
            prefix_tokens=prefix_tokens,
            prefix_groups=prefix_groups,
        )
        stats, trace = simulate_deployment(
            dep,
            res.estimate,
            eff,
            w,
            trace_requests=trace_reqs,
            seed=seed,
            slo_ttft_s=slo_ttft_ms / 1e3 if slo_ttft_ms else None,
            slo_tpot_s=slo_tpot_ms / 1e3 if slo_tpot_ms else None,
            prefix_caching=prefix_caching,
        )
        batch = max(1, round(stats.mean_running))
        ctx = int(_mean_len(inp) + _mean_len(out) / 2)
        binds = step_time(dep, Batch(decode=(ctx,) * batch), eff).reason
        points.append(
            SimPoint(
                rate=None if trace_reqs is not None else rate,
                users=n_users,
                stats=stats,
                trace=trace,
                binds=f"decode step at {batch} running × {ctx:,} tokens: {binds}",
            )
        )
    knee = None
    if slo_ttft_ms or slo_tpot_ms:
        knee = next((p for p in points if p.stats.goodput_share < 0.95), None)
    warnings = tuple(line for p in points if (line := _sim_warning(p, requests)) is not None)
    return SimulateResult(
        fit=res,
        points=tuple(points),
        knee=knee,
        efficiency_row=row,
        uncertainty=eff.uncertainty,
        warnings=warnings,
    )
