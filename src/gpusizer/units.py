"""Unit constants. The core works in base units (bytes, seconds, FLOP/s, bytes/s);
humane units (GiB, GB/s, TFLOP/s) appear only at the edges."""

from __future__ import annotations

__all__ = ["GB", "GIB", "MIB", "TB", "gib", "to_gib"]

GIB = 1 << 30
MIB = 1 << 20
GB = 10**9
TB = 10**12


def gib(value_gib: float) -> int:
    """GiB → bytes (rounded down to a whole byte)."""
    return int(value_gib * GIB)


def to_gib(value_bytes: float) -> float:
    """bytes → GiB."""
    return value_bytes / GIB
