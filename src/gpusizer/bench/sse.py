"""Server-sent events as OpenAI-compatible servers stream them: ``data: {json}`` lines,
blank-line separated, ending with ``data: [DONE]``.

The decoder is fed the response body as it arrives, chunk by chunk, and returns the events
each chunk completed, so the caller can time every event by the arrival of the bytes that
carried it rather than by when it got round to parsing them.

It costs time linear in the bytes fed: a chunk is scanned once for its last line end, the
complete lines before it are split in C, and only the unfinished tail is kept (at most
``max_line_bytes``). A line longer than that is reported once as ``OVERSIZED`` and skipped,
so a server streaming a 64 MiB line can neither stall the event loop that times every other
request nor hold the memory.

Servers report failures inside a stream in three ways, all decoded to ``{"error": …}``:
a JSON payload with an ``error`` member (vLLM, SGLang, TGI), an ``event: error`` field
before the ``data:`` line, and a bare ``error: …`` field line.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DONE", "MALFORMED", "MAX_LINE_BYTES", "OVERSIZED", "SseDecoder"]

DONE = object()
MALFORMED = object()  # a ``data:`` line whose payload is not JSON: a protocol error, reported
OVERSIZED = object()  # a line over the cap: reported once, its bytes dropped
MAX_LINE_BYTES = 1 << 20  # 1 MiB: OpenAI-style events are a few hundred bytes, usage with logprobs a few KiB


class SseDecoder:
    """Split a byte stream into lines (``\\n``, ``\\r\\n`` or ``\\r`` ends one; a line may
    span chunks) and decode each ``data:`` line: its JSON payload, ``MALFORMED`` when it is
    not JSON, ``DONE`` for ``[DONE]``. Comments, other fields and blank lines are skipped;
    error fields are decoded to ``{"error": …}`` (see the module docstring)."""

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._tail = bytearray()  # the unfinished last line
        self._skip_lf = False  # the last chunk ended in CR: an LF opening the next one ends no line
        self._dropping = False  # inside an oversized line: drop bytes up to its end
        self._event = b""  # the ``event:`` field of the event being read

    def feed(self, chunk: bytes) -> list[Any]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if end < 0:  # no line ends here: the tail grows
            return self._keep(chunk)
        events: list[Any] = []
        head = chunk[: end + 1]
        if self._dropping:  # the oversized line ends in this chunk
            self._dropping = False
            cut = _first_eol(head)
            head = head[cut:]
        elif self._tail:
            head = bytes(self._tail) + head  # once per line completed: linear overall
            self._tail.clear()
        self._skip_lf = chunk.endswith(b"\r")
        for line in head.splitlines():  # bytes split at \n, \r\n and \r only
            event = self._decode(line)
            if event is not None:
                events.append(event)
        events.extend(self._keep(chunk[end + 1 :]))
        return events

    def close(self) -> list[Any]:
        """Events on a last line the stream did not terminate."""
        tail = bytes(self._tail)
        self._tail.clear()
        event = self._decode(tail) if tail and not self._dropping else None
        return [] if event is None else [event]

    def _keep(self, part: bytes) -> list[Any]:
        if self._dropping or not part:
            return []
        if len(self._tail) + len(part) > self._max:
            self._tail.clear()
            self._dropping = True
            return [OVERSIZED]
        self._tail += part
        return []

    def _decode(self, raw: bytes) -> Any:
        if len(raw) > self._max:
            return OVERSIZED
        line = raw.strip()
        if not line:
            self._event = b""  # a blank line ends the event
            return None
        if line.startswith(b"event:"):
            self._event = line[6:].strip()
            return None
        if line.startswith(b"error:"):  # a bare error field
            return {"error": _json_or_text(line[6:].strip())}
        if not line.startswith(b"data:"):
            return None  # ``:`` comments, ``id:``/``retry:`` fields
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return DONE
        if self._event == b"error":
            return {"error": _json_or_text(payload)}
        try:
            return json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return MALFORMED


def _first_eol(data: bytes) -> int:
    """Index just past the first line end in ``data`` (which has one)."""
    n, r = data.find(b"\n"), data.find(b"\r")
    at = min(i for i in (n, r) if i >= 0)
    return at + 2 if data[at : at + 2] == b"\r\n" else at + 1


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return payload.decode(errors="replace")[:200]
