"""The engine registry: one typed, frozen ``EngineSpec`` per inference engine.

Everything that differs between vLLM, SGLang, TensorRT-LLM, llama.cpp and HF transformers
is a field or hook of its spec, defined once in that engine's module here; other code asks
the registry instead of comparing engine names. Adding an engine = one module in this
package (its ``SPEC``), its name in ``base.Engine`` and ``_MODULES`` below, and its data rows
(numbers in data/engines.yaml, KV dtypes in data/quant.yaml ``kv_dtypes.*.engines``,
documented flags in data/engine_options.yaml).

Public API::

    Engine                 Literal type of the engine names (Deployment.engine)
    ENGINE_NAMES           every engine, in display order
    PLAN_ENGINES           engines with a serving command (what ``plan`` searches)
    DEFAULT_ENGINE         "vllm"
    engine_spec(name)      the EngineSpec (BadInputError naming ``engine`` if unknown)
    is_engine(name)        whether ``name`` is a registered engine
    all_engines()          every EngineSpec, in display order
    engines_for_vendor(v)  engines that run on GPU vendor ``v``
    engine_for_metrics(ks) the engine whose Prometheus prefix names exported metrics
    EngineSpec, EngineSettings, MemoryFraction, LaunchInput, SettingsInput  (base.py)

Replacing a name comparison (for code not converted yet)::

    engine in ("vllm", "sglang", "tensorrt-llm")   spec.serving (or spec.kv_split_over_tp for KV)
    engine in ("llamacpp", "transformers")          spec.layer_split   (multi-GPU = layer split)
    engine == "llamacpp" (weights / quant names)    spec.checkpoints == "gguf"; spec.gguf_quants
    engine == "llamacpp" ... else 2048              spec.prefill_chunk(settings)
    "q8_0" if llamacpp else "fp8"                   spec.compact_kv
    engine == "sglang" (admission reserve)          spec.admission == "reserve-ratio"
    mixed_prefill=engine != "sglang"                spec.mixed_prefill
    PREFIX_CACHING_DEFAULT[engine]                  spec.prefix_cache_default
    engine in ("vllm", "sglang") (DP attention)     spec.dp_attention
    engine == "vllm" (gpu_memory_utilization)       spec.memory_fraction.basis == "total"
    engine == "vllm" (version bands)                spec.versioned
    engine != "vllm" (show the engine's name)       engine != DEFAULT_ENGINE
    {"vllm": "vLLM", ...}[engine]                   spec.label
    ("vllm", "sglang", ..., "auto") name lists      ENGINE_NAMES / PLAN_ENGINES (+ "auto")
    api.engine_numbers(engine)                      spec.numbers()

Examples::

    engine_spec("sglang").memory_fraction.flag       # "--mem-fraction-static"
    engine_spec("llamacpp").kv_dtypes()              # ("auto", "bf16", …, "q8_0", …)
    engine_spec("tensorrt-llm").settings(inp)        # defaults for a SettingsInput
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeGuard

from gpusizer.engines import llamacpp, sglang, tensorrt_llm, transformers, vllm
from gpusizer.engines.base import (
    Engine,
    EngineSettings,
    EngineSpec,
    LaunchInput,
    MemoryFraction,
    SettingsInput,
    parse_version,
)
from gpusizer.errors import BadInputError

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINE_NAMES",
    "PLAN_ENGINES",
    "Engine",
    "EngineSettings",
    "EngineSpec",
    "LaunchInput",
    "MemoryFraction",
    "SettingsInput",
    "all_engines",
    "engine_for_metrics",
    "engine_spec",
    "engines_for_vendor",
    "is_engine",
    "parse_version",
]

_MODULES = (vllm, sglang, tensorrt_llm, llamacpp, transformers)
_REGISTRY: dict[str, EngineSpec] = {m.SPEC.name: m.SPEC for m in _MODULES}

ENGINE_NAMES: tuple[Engine, ...] = tuple(s.name for s in _REGISTRY.values())
PLAN_ENGINES: tuple[Engine, ...] = tuple(s.name for s in _REGISTRY.values() if s.has_command)
DEFAULT_ENGINE: Engine = "vllm"


def is_engine(name: str) -> TypeGuard[Engine]:
    """Whether ``name`` is a registered engine."""
    return name in _REGISTRY


def engine_spec(name: str) -> EngineSpec:
    """The spec of engine ``name``; an unknown name is a BadInputError naming the field."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BadInputError("engine", f"unknown engine {name!r}", ", ".join(ENGINE_NAMES)) from None


def all_engines() -> tuple[EngineSpec, ...]:
    """Every engine's spec, in display order."""
    return tuple(_REGISTRY.values())


def engines_for_vendor(vendor: str) -> tuple[Engine, ...]:
    """The engines that run on GPUs of ``vendor`` (nvidia, amd, apple)."""
    return tuple(s.name for s in _REGISTRY.values() if vendor in s.vendors)


def engine_for_metrics(names: Iterable[str]) -> Engine | None:
    """The engine whose metric prefix (``vllm:``, ``sglang:`` …) the metric ``names`` use."""
    keys = tuple(names)
    for s in _REGISTRY.values():
        if s.metrics_prefix and any(k.startswith(s.metrics_prefix + ":") for k in keys):
            return s.name
    return None
