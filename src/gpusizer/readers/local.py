"""Read a model that is not in the catalogue from the user's disk: a ``config.json``, a
model directory (config plus safetensors index or headers for exact bytes), or a GGUF file
(header read with the ``gguf`` package; exact tensor bytes, architecture from metadata).

Returns plain values (a config dict and, when known, exact stored weight bytes); every
malformed input becomes a one-line ``BadInputError`` naming the file.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpusizer.errors import BadInputError

__all__ = ["LocalModel", "read_local_model", "read_safetensors_header"]

MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors refuses headers over 100 MB too


@dataclass(frozen=True, kw_only=True)
class LocalModel:
    name: str
    config: dict[str, Any]
    source: str  # where the config was read
    exact_weight_bytes: int | None = None  # stored bytes of the main model's tensors
    exact_includes_mtp: bool = False  # an index total_size counts the MTP layer too
    weight_bytes_note: str | None = None
    gguf_type: str | None = None  # GGUF file type name (e.g. Q4_K_M) when read from GGUF


def _load_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise BadInputError(str(path), "is larger than 4 MiB; not a config.json")
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(str(path), f"cannot be read ({exc.__class__.__name__})") from exc
    except json.JSONDecodeError as exc:
        raise BadInputError(str(path), f"is not valid JSON (line {exc.lineno}: {exc.msg})") from exc


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file: {tensor: {dtype, shape, data_offsets}}."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise BadInputError(str(path), "is not a safetensors file (too short)")
            (size,) = struct.unpack("<Q", raw)
            if size > MAX_HEADER_BYTES:
                raise BadInputError(str(path), "safetensors header is implausibly large")
            header = json.loads(fh.read(size))
    except OSError as exc:
        raise BadInputError(str(path), f"cannot be read ({exc.__class__.__name__})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(str(path), "safetensors header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise BadInputError(str(path), "safetensors header is not a JSON object")
    return header


def _is_mtp(name: str, num_layers: int) -> bool:
    return name.startswith(f"model.layers.{num_layers}.") or ".mtp." in name


def _dir_weight_bytes(folder: Path, config: dict[str, Any]) -> tuple[int | None, str | None, bool]:
    layers = int(config.get("num_hidden_layers") or 0)
    files = sorted(folder.glob("*.safetensors"))
    if files:
        total = 0
        skipped = 0
        for f in files:
            for name, meta in read_safetensors_header(f).items():
                if name == "__metadata__" or not isinstance(meta, dict):
                    continue
                begin, end = meta.get("data_offsets", [0, 0])
                if _is_mtp(name, layers):
                    skipped += end - begin
                    continue
                total += end - begin
        note = f"exact bytes from {len(files)} safetensors header(s)"
        if skipped:
            note += f"; {skipped / 2**30:.2f} GiB of MTP tensors not loaded"
        return total, note, False
    index = folder / "model.safetensors.index.json"
    if index.exists():
        data = _load_json(index)
        total_size = (data.get("metadata") or {}).get("total_size") if isinstance(data, dict) else None
        if isinstance(total_size, int) and total_size > 0:
            return total_size, "total_size from model.safetensors.index.json (includes any MTP layer)", True
    return None, None, False


def _read_gguf(path: Path) -> LocalModel:
    try:
        from gguf import GGUFReader
    except ImportError as exc:  # pragma: no cover - gguf is a dependency
        raise BadInputError(str(path), "reading GGUF needs the 'gguf' package") from exc
    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # the gguf package raises ValueError/struct errors on bad files
        raise BadInputError(str(path), f"is not a readable GGUF file ({exc.__class__.__name__})") from exc
    from gpusizer.readers.gguf_meta import config_from_gguf

    config, ftype = config_from_gguf(reader)
    exact = sum(int(t.n_bytes) for t in reader.tensors)
    return LocalModel(
        name=path.stem,
        config=config,
        source=str(path),
        exact_weight_bytes=exact,
        weight_bytes_note=f"exact bytes of {len(reader.tensors)} GGUF tensors",
        gguf_type=ftype,
    )


def read_local_model(spec: str) -> LocalModel | None:
    """``spec`` as a path: config.json, model directory or .gguf. None if it is no path."""
    path = Path(spec).expanduser()
    if not path.exists():
        if spec.endswith((".json", ".gguf")) or ("/" in spec and spec.startswith((".", "/", "~"))):
            raise BadInputError("MODEL", f"file {spec!r} does not exist")
        return None
    if path.is_dir():
        cfg_path = path / "config.json"
        if not cfg_path.exists():
            ggufs = sorted(path.glob("*.gguf"))
            if ggufs:
                return _read_gguf(ggufs[0])
            raise BadInputError("MODEL", f"directory {spec!r} has no config.json or .gguf file")
        config = _load_json(cfg_path)
        if not isinstance(config, dict):
            raise BadInputError(str(cfg_path), "is not a JSON object")
        exact, note, with_mtp = _dir_weight_bytes(path, config)
        return LocalModel(
            name=path.name,
            config=config,
            source=str(cfg_path),
            exact_weight_bytes=exact,
            weight_bytes_note=note,
            exact_includes_mtp=with_mtp,
        )
    if path.suffix == ".gguf":
        return _read_gguf(path)
    config = _load_json(path)
    if not isinstance(config, dict):
        raise BadInputError(str(path), "is not a JSON object")
    name = path.parent.name if path.name == "config.json" else path.stem
    return LocalModel(name=name or "model", config=config, source=str(path))
