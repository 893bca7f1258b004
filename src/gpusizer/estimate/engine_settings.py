"""The engine settings a deployment actually runs with: the user's values, else the
engine's defaults for its version and GPU (vLLM picks ``max_num_batched_tokens`` and
``max_num_seqs`` by GPU memory; SGLang derives ``mem_fraction_static`` from its reserve
formula). Each default says where it came from, so the report can show it.

The rules are each engine's own (``gpusizer.engines.<engine>``, the spec's ``settings``
hook); this module hands them the deployment's values."""

from __future__ import annotations

from gpusizer.domain.scenario import Deployment
from gpusizer.engines import EngineSettings, SettingsInput, engine_spec, parse_version
from gpusizer.engines.base import Band
from gpusizer.engines.vllm import LATEST_VLLM

__all__ = ["LATEST_VLLM", "Band", "EngineSettings", "engine_settings", "parse_version", "settings_input"]


def _capability(text: str | None) -> float:
    """'9.0' → 9.0; absent or not a CUDA capability (an AMD gfx name) → 0."""
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def settings_input(dep: Deployment) -> SettingsInput:
    """The plain values an engine's defaults depend on."""
    return SettingsInput(
        numbers=dep.engine_numbers,
        visible_bytes=dep.visible_memory_bytes,
        gpu_key=dep.gpu.key,
        compute_capability=_capability(dep.gpu.compute_capability),
        mla=dep.model.mla is not None,
        tp=dep.layout.tp,
        pp=dep.layout.pp,
        max_model_len=dep.max_model_len,
        users=dep.users,
        memory_fraction=dep.gpu_memory_utilization,
        max_num_seqs=dep.max_num_seqs,
        max_num_batched_tokens=dep.max_num_batched_tokens,
        block_size=dep.block_size,
        engine_version=dep.engine_version,
        engine_mode=dep.engine_mode,
        usage=dep.usage,
        enforce_eager=dep.enforce_eager,
    )


def engine_settings(dep: Deployment) -> EngineSettings:
    """``dep``'s settings under its engine's defaults."""
    return engine_spec(dep.engine).settings(settings_input(dep))
