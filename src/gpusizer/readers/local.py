"""Read a model that is not in the catalogue from the user's disk: a ``config.json``, a
model directory (config plus safetensors index or headers for exact bytes), or a GGUF file
(header read with the ``gguf`` package; exact tensor bytes, architecture from metadata).

Returns plain values (a config dict and, when known, exact stored weight bytes); every
malformed input becomes a one-line ``BadInputError`` naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpusizer.catalog.hf_config import check_config_bounds
from gpusizer.errors import BadInputError
from gpusizer.readers.bounded import open_regular, parse_json, read_bounded, why

__all__ = ["LocalModel", "read_local_model", "read_safetensors_header"]

MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors refuses headers over 100 MB too
MAX_SHARDS = 10_000  # .safetensors files in one folder (DeepSeek-V3: 163)


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
    raw = read_bounded(path, MAX_CONFIG_BYTES, what="a config.json")
    return parse_json(raw, str(path))


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file: {tensor: {dtype, shape, data_offsets}};
    every tensor's ``data_offsets`` checked to lie inside the file's data."""
    with open_regular(path, what="a .safetensors file") as fh:
        try:
            file_size = os.fstat(fh.fileno()).st_size
            raw = fh.read(8)
            if len(raw) != 8:
                raise BadInputError(str(path), "is not a safetensors file (too short)")
            (size,) = struct.unpack("<Q", raw)
            if size > MAX_HEADER_BYTES:
                raise BadInputError(str(path), "safetensors header is implausibly large")
            if size > file_size - 8:
                raise BadInputError(
                    str(path), f"safetensors header of {size:,} bytes runs past the end of the file"
                )
            text = fh.read(size)
        except OSError as exc:
            raise BadInputError(str(path), f"cannot be read ({why(exc)})") from exc
    header = parse_json(text, f"{path}: safetensors header")
    if not isinstance(header, dict):
        raise BadInputError(str(path), "safetensors header is not a JSON object")
    data_size = file_size - 8 - size
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        offsets = meta.get("data_offsets") if isinstance(meta, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise BadInputError(
                str(path),
                f"tensor {name[:80]!r}: data_offsets {str(offsets)[:60]} are not [begin, end] "
                f"within the file's {data_size:,} data bytes",
            )
    return header


def _is_mtp(name: str, num_layers: int) -> bool:
    return name.startswith(f"model.layers.{num_layers}.") or ".mtp." in name


def _dir_weight_bytes(
    folder: Path, names: list[str], config: dict[str, Any]
) -> tuple[int | None, str | None, bool]:
    layers = int(config.get("num_hidden_layers") or 0)  # bounded by check_config_bounds
    files = [folder / n for n in names if n.endswith(".safetensors")]
    if len(files) > MAX_SHARDS:
        raise BadInputError(str(folder), f"holds {len(files):,} .safetensors files (at most {MAX_SHARDS:,})")
    if files:
        total = 0
        skipped = 0
        for f in files:
            for name, meta in read_safetensors_header(f).items():
                if name == "__metadata__":
                    continue
                begin, end = meta["data_offsets"]  # checked by read_safetensors_header
                if _is_mtp(name, layers):
                    skipped += end - begin
                    continue
                total += end - begin
        note = f"exact bytes from {len(files)} safetensors header(s)"
        if skipped:
            note += f"; {skipped / 2**30:.2f} GiB of MTP tensors not loaded"
        return total, note, False
    index = folder / "model.safetensors.index.json"
    if index.name in names:
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
    open_regular(path, what="a .gguf file").close()  # a FIFO or device would hang the memory map
    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # the gguf package raises ValueError/struct errors on bad files
        raise BadInputError(str(path), f"is not a readable GGUF file ({exc.__class__.__name__})") from exc
    from gpusizer.readers.gguf_meta import config_from_gguf

    try:
        config, ftype = config_from_gguf(reader)
        exact = sum(int(t.n_bytes) for t in reader.tensors)
    except BadInputError as exc:
        raise BadInputError(str(path), exc.message) from exc
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise BadInputError(str(path), f"GGUF metadata cannot be read ({exc.__class__.__name__})") from exc
    _check(path, config)
    return LocalModel(
        name=path.stem,
        config=config,
        source=str(path),
        exact_weight_bytes=exact,
        weight_bytes_note=f"exact bytes of {len(reader.tensors)} GGUF tensors",
        gguf_type=ftype,
    )


def _stat(path: Path, spec: str) -> os.stat_result | None:
    """The path's status; None when nothing is there (or the text cannot be a path)."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:  # an embedded NUL byte: not a path
        return None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return None
        raise BadInputError("MODEL", f"{spec[:200]!r} cannot be read ({why(exc)})") from exc


def _list_dir(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries)
    except OSError as exc:
        raise BadInputError(str(folder), f"folder cannot be read ({why(exc)})") from exc


def read_local_model(spec: str) -> LocalModel | None:
    """``spec`` as a path: config.json, model directory or .gguf. None if it is no path.
    Only regular files are read, each up to a size cap; a bad one is one BadInputError."""
    path = Path(spec).expanduser()
    st = _stat(path, spec)
    if st is None:
        if spec.endswith((".json", ".gguf")) or ("/" in spec and spec.startswith((".", "/", "~"))):
            raise BadInputError("MODEL", f"file {spec[:200]!r} does not exist")
        return None
    if stat.S_ISDIR(st.st_mode):
        names = _list_dir(path)
        cfg_path = path / "config.json"
        if "config.json" not in names:
            ggufs = [n for n in names if n.endswith(".gguf")]
            if ggufs:
                return _read_gguf(path / ggufs[0])
            raise BadInputError("MODEL", f"directory {spec!r} has no config.json or .gguf file")
        config = _load_json(cfg_path)
        if not isinstance(config, dict):
            raise BadInputError(str(cfg_path), "is not a JSON object")
        _check(cfg_path, config)
        exact, note, with_mtp = _dir_weight_bytes(path, names, config)
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
    _check(path, config)
    name = path.parent.name if path.name == "config.json" else path.stem
    return LocalModel(name=name or "model", config=config, source=str(path))


def _check(path: Path, config: dict[str, Any]) -> None:
    """The config's bounds, before any arithmetic; the error names the file."""
    try:
        check_config_bounds(config)
    except BadInputError as exc:
        raise BadInputError(str(path), exc.message) from exc
