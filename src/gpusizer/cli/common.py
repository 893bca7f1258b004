"""Shared CLI plumbing: one-line errors with exit code 2, token-count parsing."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from gpusizer import units
from gpusizer.errors import BadInputError, GpusizerError

__all__ = [
    "console",
    "err_console",
    "guarded",
    "parse_tokens",
    "read_text_file",
    "write_report",
    "write_svgs",
]

# Piped or captured output (``| tee run.log``) has no terminal width; rich would squeeze the
# wide tables into 80 columns and cut every header. COLUMNS, when set, still decides.
_PIPED_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 180
console = Console(width=_PIPED_WIDTH)
err_console = Console(stderr=True)
DEBUG = {"on": False}

F = TypeVar("F", bound=Callable[..., Any])


def parse_tokens(field: str, text: str | None) -> int | None:
    """'32k' → 32768, '128K' → 131072, '1m' → 1048576, '4096' → 4096 (``units.parse_tokens``,
    the one reader every surface uses); a bad value is a one-line error naming ``field``."""
    if text is None:
        return None
    try:
        return units.parse_tokens(text)
    except ValueError as exc:
        raise BadInputError(field, str(exc)) from None


def guarded(fn: F) -> F:
    """Run a command; expected errors print one line and exit 2 (traceback with --debug)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GpusizerError as exc:
            if DEBUG["on"]:
                raise
            err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None
        except sqlite3.Error as exc:  # a runs file damaged, locked or on a full disk
            if DEBUG["on"]:
                raise
            err_console.print(
                f"[bold red]error:[/] --db: the runs file could not be read or written ({exc})",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:  # pragma: no cover
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def read_text_file(field: str, path: str, max_bytes: int) -> str:
    """A user's input file as text: a regular file of at most ``max_bytes`` (a FIFO, a
    device such as /dev/zero or a directory is refused before anything is read, so the
    command can neither hang nor fill memory); every failure is a one-line error."""
    import stat as stat_

    try:
        st = os.stat(path)
    except OSError as exc:
        raise BadInputError(field, f"cannot read {path!r} ({exc.strerror})") from None
    if not stat_.S_ISREG(st.st_mode):
        raise BadInputError(field, f"{path!r} is not a regular file")
    if st.st_size > max_bytes:
        raise BadInputError(field, f"{path!r} is larger than {max_bytes // (1 << 20)} MiB")
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise BadInputError(field, f"cannot read {path!r} ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise BadInputError(field, f"{path!r} is larger than {max_bytes // (1 << 20)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(field, f"{path!r} is not UTF-8 text") from None


_GENERATOR_MARK = 'name="generator" content="gpusizer"'


def write_report(path: str, html: str) -> None:
    """Write a ``--report`` file. A file that exists is replaced only when gpusizer wrote
    it; anything else the user keeps there is never overwritten."""
    from pathlib import Path

    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise BadInputError("--report", f"{path!r} must end in .html")
    if not target.parent.is_dir():
        raise BadInputError("--report", f"folder {str(target.parent)!r} does not exist")
    if target.exists():
        try:
            head = target.read_text(encoding="utf-8", errors="replace")[:4096]
        except OSError as exc:
            raise BadInputError("--report", f"cannot read {path!r} ({exc.strerror})") from exc
        if _GENERATOR_MARK not in head:
            raise BadInputError(
                "--report", f"{path!r} exists and is not a gpusizer report; not overwriting it"
            )
    try:
        target.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise BadInputError("--report", f"cannot write {path!r} ({exc.strerror})") from exc


def write_svgs(field: str, folder: str, charts: list[tuple[str, str]]) -> list[str]:
    """Write each (name, SVG) chart as ``folder/name.svg`` for slides; returns the paths."""
    from pathlib import Path

    out_dir = Path(folder)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(field, f"cannot create folder {folder!r} ({exc.strerror})") from exc
    written = []
    for name, svg in charts:
        target = out_dir / f"{name}.svg"
        try:
            target.write_text(svg, encoding="utf-8")
        except OSError as exc:
            raise BadInputError(field, f"cannot write {target} ({exc.strerror})") from exc
        written.append(str(target))
    return written
