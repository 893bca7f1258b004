"""Shared CLI plumbing: one-line errors with exit code 2, token-count parsing."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from gpusizer.errors import BadInputError, GpusizerError

__all__ = ["console", "err_console", "guarded", "parse_tokens"]

console = Console()
err_console = Console(stderr=True)
DEBUG = {"on": False}

F = TypeVar("F", bound=Callable[..., Any])


def parse_tokens(field: str, text: str | None) -> int | None:
    """'32k' → 32768, '128K' → 131072, '1m' → 1048576, '4096' → 4096."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise BadInputError(field, f"cannot read {text!r} as a token count", "e.g. 4096, 32k, 128k")
    value = float(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    if value < 1:
        raise BadInputError(field, f"must be at least 1 token, got {text!r}")
    return int(value)


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
        except KeyboardInterrupt:  # pragma: no cover
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
