"""Server-sent events as OpenAI-compatible servers stream them: ``data: {json}`` lines,
blank-line separated, ending with ``data: [DONE]``.

The decoder is fed the response body as it arrives, chunk by chunk, and returns the events
each chunk completed, so the caller can time every event by the arrival of the bytes that
carried it rather than by when it got round to parsing them.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DONE", "MALFORMED", "SseDecoder"]

DONE = object()
MALFORMED = object()  # a ``data:`` line whose payload is not JSON: a protocol error, reported


class SseDecoder:
    """Split a byte stream into lines (``\\n``, ``\\r\\n`` or ``\\r`` ends one; a line may
    span chunks) and decode each ``data:`` line: its JSON payload, ``MALFORMED`` when it is
    not JSON, ``DONE`` for ``[DONE]``. Comments, other fields and blank lines are skipped."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> list[Any]:
        data = self._tail + chunk
        lines = data.splitlines(keepends=True)
        self._tail = b""
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            self._tail = lines.pop()  # a CR then, in the next chunk, an LF: one blank line more
        return [e for e in (self._decode(line) for line in lines) if e is not None]

    def close(self) -> list[Any]:
        """Events on a last line the stream did not terminate."""
        tail, self._tail = self._tail, b""
        event = self._decode(tail) if tail else None
        return [] if event is None else [event]

    @staticmethod
    def _decode(raw: bytes) -> Any:
        line = raw.strip()
        if not line.startswith(b"data:"):
            return None  # blank lines, ``:`` comments, ``event:``/``id:``/``retry:`` fields
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return DONE
        try:
            return json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return MALFORMED
