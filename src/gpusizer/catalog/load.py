"""Load and validate the catalogue shipped as package data (YAML).

This is the data layer's one bit of I/O: reading files that ship inside the package.
Everything is validated by the pydantic shapes in ``specs`` and cached per process.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gpusizer.catalog.specs import (
    Checkpoint,
    CheckpointFile,
    CloudFile,
    CloudInstance,
    CloudPrice,
    EfficiencyFactor,
    EfficiencyFile,
    EngineCommand,
    EngineDefaults,
    EngineFile,
    EngineOptionsFile,
    GpuFile,
    GpuSpec,
    InterconnectFile,
    KvDtype,
    LinkSpec,
    ModelEntry,
    ModelFile,
    PriceFile,
    QuantFile,
    QuantFormat,
    SystemFile,
)
from gpusizer.errors import GpusizerError

__all__ = [
    "checkpoints",
    "cloud_instances",
    "cloud_prices",
    "efficiency_factors",
    "engine_defaults",
    "engine_number",
    "engine_options",
    "gpu_catalogue",
    "interconnects",
    "kv_dtype_table",
    "model_catalogue",
    "model_config",
    "quant_catalogue",
    "system_file",
]


# libyaml's C loader parses the catalogue ~10× faster than the pure-Python one (start-up cost)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(relative: str) -> Any:
    text = resources.files("gpusizer").joinpath("data", relative).read_text(encoding="utf-8")
    return yaml.load(text, Loader=_Loader)  # a safe loader (CSafeLoader or SafeLoader)


def _files(folder: str) -> list[str]:
    root = resources.files("gpusizer").joinpath("data", folder)
    return sorted(f"{folder}/{p.name}" for p in root.iterdir() if p.name.endswith(".yaml"))


_M = TypeVar("_M", bound=BaseModel)


def _validate(shape: type[_M], relative: str) -> _M:
    try:
        return shape.model_validate(_read(relative))
    except ValidationError as exc:  # a broken shipped file is a bug, but say where
        raise GpusizerError(
            f"catalogue file {relative}: {exc.errors()[0]['msg']} at "
            f"{'.'.join(str(x) for x in exc.errors()[0]['loc'])}"
        ) from exc


@lru_cache(maxsize=1)
def model_catalogue() -> tuple[ModelEntry, ...]:
    """Every catalogue model, in file order."""
    entries: list[ModelEntry] = []
    for rel in _files("models"):
        entries.extend(_validate(ModelFile, rel).models)
    ids = [e.id.lower() for e in entries]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise GpusizerError(f"catalogue: duplicate model ids {sorted(dup)}")
    return tuple(entries)


def model_config(entry: ModelEntry) -> dict[str, Any]:
    """The config.json of a catalogue entry, following ``config_from`` references."""
    seen: set[str] = set()
    current = entry
    by_id = {e.id: e for e in model_catalogue()}
    while current.config is None:
        ref = current.config_from or ""
        if ref in seen or ref not in by_id:
            raise GpusizerError(f"catalogue: {entry.id} config_from {ref!r} does not resolve")
        seen.add(ref)
        current = by_id[ref]
    return dict(current.config)


@lru_cache(maxsize=1)
def gpu_catalogue() -> tuple[GpuSpec, ...]:
    """Every catalogue GPU."""
    gpus: list[GpuSpec] = []
    for rel in _files("gpus"):
        gpus.extend(_validate(GpuFile, rel).gpus)
    keys = [g.key for g in gpus]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise GpusizerError(f"catalogue: duplicate GPU keys {sorted(dup)}")
    return tuple(gpus)


@lru_cache(maxsize=1)
def _quant_file() -> QuantFile:
    return _validate(QuantFile, "quant.yaml")


def quant_catalogue() -> tuple[QuantFormat, ...]:
    return _quant_file().formats


def kv_dtype_table() -> dict[str, KvDtype]:
    """KV-cache formats by key (data/quant.yaml ``kv_dtypes``): the one list of KV dtypes."""
    return dict(_quant_file().kv_dtypes)


@lru_cache(maxsize=1)
def _engines() -> dict[str, EngineDefaults]:
    return {e.engine: e for e in _validate(EngineFile, "engines.yaml").engines}


def engine_defaults(engine: str) -> EngineDefaults | None:
    """One engine's named, sourced numbers (data/engines.yaml), or None if it has none."""
    return _engines().get(engine)


def engine_number(engine: str, name: str) -> float:
    """A named engine constant (see data/engines.yaml for its source)."""
    try:
        return _engines()[engine].numbers[name].value
    except KeyError as exc:
        raise GpusizerError(f"catalogue: engines.yaml has no {engine}.{name}") from exc


@lru_cache(maxsize=1)
def interconnects() -> dict[str, LinkSpec]:
    """GPU-to-GPU links by name (data/interconnects.yaml)."""
    return dict(_validate(InterconnectFile, "interconnects.yaml").links)


@lru_cache(maxsize=1)
def efficiency_factors() -> tuple[EfficiencyFactor, ...]:
    """Achieved-fraction factors per engine × vendor (data/efficiency.yaml)."""
    return _validate(EfficiencyFile, "efficiency.yaml").factors


@lru_cache(maxsize=1)
def cloud_prices() -> dict[str, CloudPrice]:
    """Dated cloud $/GPU-hour quotes by GPU key (data/prices.yaml)."""
    return dict(_validate(PriceFile, "prices.yaml").prices)


@lru_cache(maxsize=1)
def system_file() -> SystemFile:
    """Buildable boxes, PCIe rates and extra links (data/systems.yaml)."""
    f = _validate(SystemFile, "systems.yaml")
    keys = [s.key for s in f.systems]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise GpusizerError(f"catalogue: duplicate system keys {sorted(dup)}")
    return f


@lru_cache(maxsize=1)
def cloud_instances() -> tuple[CloudInstance, ...]:
    """Rentable instance types with their GPUs and dated $/hour (data/cloud.yaml)."""
    return _validate(CloudFile, "cloud.yaml").instances


@lru_cache(maxsize=1)
def checkpoints() -> tuple[Checkpoint, ...]:
    """Published quantized checkpoints of catalogue models (data/checkpoints.yaml)."""
    return _validate(CheckpointFile, "checkpoints.yaml").checkpoints


@lru_cache(maxsize=1)
def engine_options() -> dict[str, EngineCommand]:
    """Each engine's documented command-line options (data/engine_options.yaml)."""
    return dict(_validate(EngineOptionsFile, "engine_options.yaml").engines)
