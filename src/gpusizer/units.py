"""Unit constants and the one reader of token counts. The core works in base units (bytes,
seconds, FLOP/s, bytes/s); humane units (GiB, GB/s, TFLOP/s, "32k" tokens) appear only at
the edges, and every edge reads them with the functions here, so the CLI, the web API and
the Python API accept the same forms."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["GB", "GIB", "MIB", "TB", "TOKEN_FORMS", "TokenCount", "gib", "parse_tokens", "to_gib"]

GIB = 1 << 30
MIB = 1 << 20
GB = 10**9
TB = 10**12

TOKEN_FORMS = "e.g. 4096, 32k, 128K, 1m (k = 1024 tokens, m = 1024 × 1024)"
_TOKENS = re.compile(r"\s*(\d{1,12}(?:\.\d{1,6})?)\s*([kKmM]?)\s*")
_MULTIPLIER = {"": 1, "k": 1024, "m": 1024 * 1024}


def gib(value_gib: float) -> int:
    """GiB → bytes (rounded down to a whole byte)."""
    return int(value_gib * GIB)


def to_gib(value_bytes: float) -> float:
    """bytes → GiB."""
    return value_bytes / GIB


def parse_tokens(text: str | int) -> int:
    """A token count as people write it: ``'32k'`` → 32768, ``'128K'`` → 131072, ``'1m'`` →
    1048576, ``'4096'`` or ``4096`` → 4096, ``'1.5k'`` → 1536. Raises ``ValueError`` (with a
    sentence for the user) for anything else, including NaN, negatives and counts below 1;
    upper bounds are the caller's (they differ per field)."""
    if isinstance(text, bool):  # bool is an int subclass; True is not a token count
        raise ValueError(f"cannot read {text!r} as a token count ({TOKEN_FORMS})")
    if isinstance(text, int):
        value = float(text)
    elif isinstance(text, str):
        m = _TOKENS.fullmatch(text)
        if not m:
            raise ValueError(f"cannot read {text!r} as a token count ({TOKEN_FORMS})")
        value = float(m.group(1)) * _MULTIPLIER[m.group(2).lower()]
    else:
        raise ValueError(f"cannot read {text!r} as a token count ({TOKEN_FORMS})")
    if value < 1:
        raise ValueError(f"must be at least 1 token, got {text!r}")
    return int(value)


def _token_field(value: Any) -> Any:
    return None if value is None else parse_tokens(value)


TokenCount = Annotated[int, BeforeValidator(_token_field)]
"""A pydantic field type that takes the same token forms as the CLI (``32k``, ``4096``);
bounds stay on the field (``Field(ge=1, le=…)``)."""
