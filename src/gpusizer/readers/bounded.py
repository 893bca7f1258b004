"""Bounded reads: every byte gpusizer reads from a file or a request passes through here.

    path ──open_regular──▶ a regular file's handle (FIFO, device, socket, folder: refused)
         ──read_bounded──▶ at most ``max_bytes`` bytes (a bigger file: refused)
    text ──parse_json───▶ a JSON value, nested at most ``MAX_JSON_DEPTH`` deep, no NaN/Infinity

A named pipe would block ``open()`` until a writer comes and ``/dev/zero`` never ends, so a
path is opened with ``O_NONBLOCK`` (which never waits, not even on a FIFO) and checked with
``fstat`` before one byte is read. Each refusal is one ``BadInputError`` naming the file.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from gpusizer.errors import BadInputError

__all__ = ["MAX_JSON_DEPTH", "json_depth", "open_regular", "parse_json", "read_bounded", "why"]

# A config.json nests 4 deep (quantization_config.config_groups.<group>.weights), an API body 2.
# 32 leaves room for any real file and stays far below Python's recursion limit (1000), which
# a deeper value would hit in whatever walks it next (validation, error reporting).
MAX_JSON_DEPTH = 32


def why(exc: OSError) -> str:
    """'permission denied', 'no such file or directory', … for an OSError."""
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return exc.__class__.__name__


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path, *, what: str) -> BinaryIO:
    """``path`` opened for binary reading, only if it is a regular file (symlinks followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO's other end on some systems
            raise BadInputError(str(path), f"is not a regular file; give {what}") from exc
        raise BadInputError(str(path), f"cannot be read ({why(exc)})") from exc
    except ValueError as exc:  # an embedded NUL byte
        raise BadInputError(str(path), "is not a usable path (NUL byte)") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise BadInputError(str(path), f"is {_kind(mode)}, not a file; give {what}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: Path, max_bytes: int, *, what: str) -> bytes:
    """All of ``path`` if it is a regular file of at most ``max_bytes`` bytes. A file that
    grows while read (or a /proc file that says size 0) is still cut at ``max_bytes + 1``."""
    with open_regular(path, what=what) as fh:
        try:
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise BadInputError(str(path), f"cannot be read ({why(exc)})") from exc
    if len(data) > max_bytes:
        raise BadInputError(str(path), f"is larger than {_size(max_bytes)}; not {what}")
    return data


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n // 1024} KiB"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_depth(value: Any) -> int:
    """How deeply ``value``'s lists and objects nest (a scalar: 0). Iterative: no recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def parse_json(raw: str | bytes, where: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict JSON (no NaN, Infinity or 4300-digit numbers), at most ``max_depth`` deep;
    else one ``BadInputError`` naming ``where``."""
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError as exc:
        raise BadInputError(where, f"is nested too deeply (more than {max_depth} levels)") from exc
    except json.JSONDecodeError as exc:
        raise BadInputError(where, f"is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise BadInputError(where, "is not UTF-8 text") from exc
    except ValueError as exc:  # NaN/Infinity, or an integer past Python's digit limit
        raise BadInputError(where, f"is not valid JSON ({str(exc).split(';')[0]})") from exc
    if json_depth(value) > max_depth:
        raise BadInputError(where, f"is nested too deeply (more than {max_depth} levels)")
    return value
