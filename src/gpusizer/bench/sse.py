"""Server-sent events as OpenAI-compatible servers stream them: ``data: {json}`` lines,
blank-line separated, ending with ``data: [DONE]``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["DONE", "MALFORMED", "parse_sse_lines"]

DONE = object()
MALFORMED = object()  # a ``data:`` line whose payload is not JSON: a protocol error, reported


async def parse_sse_lines(lines: AsyncIterator[str]) -> AsyncIterator[Any]:
    """Yield each event's decoded JSON payload (``MALFORMED`` for one that is not JSON), then
    ``DONE``; comments and other fields are skipped."""
    async for raw in lines:
        line = raw.strip()
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            yield DONE
            return
        try:
            yield json.loads(payload)
        except json.JSONDecodeError:
            yield MALFORMED
