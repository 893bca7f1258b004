"""The one place that turns what a user names into core values: a model (catalogue name or
HF id, a config.json, a model directory, a GGUF file, an uploaded config, a Hub repo), a GPU
(catalogue name, a YAML file, custom numbers) and a calibration profile or efficiency file.

Files are read here (through ``gpusizer.readers``, bounded); names are matched by
``catalog.resolve``. Everything after this works on the resolved values and does no I/O.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.catalog.load import gpu_catalogue, model_catalogue, model_config
from gpusizer.catalog.resolve import resolve_gpu, resolve_model
from gpusizer.catalog.specs import EfficiencyFactor, EfficiencyFile, GpuSpec
from gpusizer.domain.params import count_params
from gpusizer.domain.quant import native_quant_key
from gpusizer.errors import BadInputError, GpusizerError, NotInCatalogueError
from gpusizer.plan.deploy import ResolvedModel
from gpusizer.readers.local import read_local_model
from gpusizer.store.paths import profile_path, profiles_dir
from gpusizer.units import GB, GIB

__all__ = [
    "MAX_USER_YAML_BYTES",
    "catalogue_model",
    "load_efficiency_file",
    "model_from_config",
    "resolve_gpu_spec",
    "resolve_model_spec",
]

MAX_USER_YAML_BYTES = 1 << 20  # a --gpu-file or --efficiency YAML: a few KiB in practice


def _quantization_config(config: Mapping[str, Any]) -> Any:
    """The checkpoint's ``quantization_config``: top level, or in ``text_config`` where a
    multimodal release (Kimi-K2.5) keeps it beside the language model's fields."""
    q = config.get("quantization_config")
    text = config.get("text_config")
    if q is None and isinstance(text, dict):
        q = text.get("quantization_config")
    return q


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
        native_quant=native_quant_key(_quantization_config(config)),
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
            native_quant=native_quant_key(_quantization_config(local.config)),
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
            native_quant=native_quant_key(_quantization_config(hub.config)),
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
        native_quant=native_quant_key(_quantization_config(config)),
        notes=notes,
    )


def _read_user_file(field_name: str, path: str) -> str:
    """A small user YAML file as text; FIFOs, devices and folders are refused before any
    read (so nothing hangs), and so is anything over ``MAX_USER_YAML_BYTES``."""
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


def _gpu_from_file(gpu_file: str) -> GpuSpec:
    try:
        data: Any = yaml.safe_load(_read_user_file("gpu_file", gpu_file))
    except yaml.YAMLError as exc:
        raise BadInputError("gpu_file", f"{gpu_file!r} is not valid YAML") from exc
    try:
        return GpuSpec.model_validate({"source": f"user file {gpu_file}", **(data or {})})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInputError(
            "gpu_file",
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}",
            "the GpuSpec fields of data/gpus/*.yaml",
        ) from exc


def _custom_gpu(memory_gib: float, bandwidth_gbps: float | None) -> GpuSpec:
    return GpuSpec(
        key="custom",
        name=f"custom {memory_gib:g} GiB GPU",
        vendor="nvidia",
        gpu_class="datacenter",
        architecture="custom",
        memory_bytes=int(memory_gib * GIB),
        memory_bandwidth_bps=(bandwidth_gbps or 1000) * GB,
        source="user flags",
    )


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
    memory_gib = _positive("gpu_memory_gib", memory_gib)
    bandwidth_gbps = _positive("gpu_bandwidth_gbps", bandwidth_gbps)
    tflops_bf16 = _positive("gpu_tflops", tflops_bf16)
    note: str | None = None
    if isinstance(name, GpuSpec):
        gpu = name
    elif gpu_file:
        gpu = _gpu_from_file(gpu_file)
    elif name:
        match = resolve_gpu(name, gpu_catalogue())
        gpu, note = match.gpu, match.note
    elif memory_gib:
        gpu = _custom_gpu(memory_gib, bandwidth_gbps)
    else:
        raise BadInputError("gpu", "missing", "a catalogue GPU name (see `gpusizer gpus`) or gpu_memory_gib")
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


def load_efficiency_file(path: str) -> tuple[EfficiencyFactor, ...]:
    """User efficiency factors (``gpusizer calibrate`` writes them); same shape as
    data/efficiency.yaml. They take precedence over the catalogue's. ``path`` is a YAML file,
    or the name of a profile saved by ``gpusizer calibrate --profile NAME``."""
    if not Path(path).exists() and "/" not in path and not path.endswith((".yaml", ".yml")):
        named = profile_path(path, "efficiency_file")
        if not named.exists():
            have = sorted(p.stem for p in profiles_dir().glob("*.yaml")) if profiles_dir().is_dir() else []
            raise BadInputError(
                "efficiency_file",
                f"no file or profile named {path!r}",
                ", ".join(have) or "`gpusizer calibrate --profile NAME` saves one",
            )
        path = str(named)
    try:
        data: Any = yaml.safe_load(_read_user_file("efficiency_file", path))
    except yaml.YAMLError as exc:
        raise BadInputError("efficiency_file", f"{path!r} is not valid YAML") from exc
    try:
        return EfficiencyFile.model_validate(data).factors
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInputError("efficiency_file", f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
