"""One benchmark request: send it, time every token of its stream, and record what it was.

    build payload ─▶ POST (traced: when the last byte was on the wire)
        ├─ status ≠ 200 ────────────▶ failed: "HTTP 404: POST <url> … (hint)"
        ├─ one JSON body, not SSE ───▶ failed: "not streamed: …" (or the error it carried)
        └─ SSE ─▶ SseDecoder ─▶ _Stream.take(events, arrival time)
                     ├─ [DONE] or finish_reason ─▶ ok, unless the stream carried an error event
                     ├─ an error event ──────────▶ failed: "stream error: <the server's message>"
                     └─ a line over the cap ─────▶ failed: "SSE line over 1 MiB"
    the whole request lives under one deadline (``timeout_s``): keep-alive comments or a
    trickle of bytes cannot hold it past that; a cancelled request (the run was interrupted)
    is recorded as ``cancelled``, neither a success nor a failure.

Every outcome is handed to ``done`` exactly once, the cancelled ones included.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from gpusizer.bench.sse import DONE, MALFORMED, MAX_LINE_BYTES, OVERSIZED, SseDecoder
from gpusizer.errors import BadInputError
from gpusizer.store.runs import RequestRecord

if TYPE_CHECKING:
    from gpusizer.bench.client import BenchSettings, Prompt

__all__ = ["CANCELLED", "MAX_JSON_BODY_BYTES", "api_path", "payload", "send_one"]

CANCELLED = "cancelled: the run was interrupted before the answer was complete"
MAX_JSON_BODY_BYTES = 4 << 20  # a non-streamed answer is read this far, no further


def api_path(api: str) -> str:
    return "/v1/chat/completions" if api == "chat" else "/v1/completions"


def payload(s: BenchSettings, prompt: Prompt) -> dict[str, Any]:
    common: dict[str, Any] = {
        "model": s.model,
        "max_tokens": prompt.output_len or s.output_len,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
        "ignore_eos": True,
    }  # vLLM, SGLang and llama.cpp honour it: fixed output length
    if s.api == "chat":
        messages = list(prompt.messages or ({"role": "user", "content": prompt.text or ""},))
        return {**common, "messages": messages}
    if prompt.text is None:
        raise BadInputError("--dataset", "the completions API needs a text prompt", "use --api chat")
    return {**common, "prompt": prompt.text}


def _texts(event: dict[str, Any]) -> tuple[str, str, bool]:
    """(answer text, reasoning text, finished) of one streamed chunk."""
    choices = event.get("choices") or []
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return "", "", False
    c = choices[0]
    delta = c.get("delta") or {}
    if not isinstance(delta, dict):
        delta = {}
    answer = str(c.get("text") or delta.get("content") or "")
    reasoning = str(delta.get("reasoning_content") or delta.get("reasoning") or "")
    return answer, reasoning, bool(c.get("finish_reason"))


def _error_text(event: dict[str, Any]) -> str | None:
    """The server's message when an event reports an error: ``{"error": …}`` (vLLM, SGLang,
    TGI) or ``{"object": "error", "message": …}``."""
    err = event.get("error")
    if err is None and event.get("object") == "error":
        err = event
    if not err:  # servers that send "error": null (or "") in every healthy chunk
        return None
    if isinstance(err, dict):
        err = err.get("message") or err.get("msg") or json.dumps(err)[:200]
    return " ".join(str(err).split())[:200] or "an error event with no message"


@dataclass
class _Stream:
    """What one response has streamed so far."""

    first: float | None = None
    first_answer: float | None = None
    last: float | None = None
    gaps: list[float] = field(default_factory=list)
    chunks: int = 0
    malformed: int = 0
    finished: bool = False
    oversized: bool = False
    server_error: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)  # llama.cpp's own clock, when it sends it

    def server_s(self, key: str) -> float | None:
        """One of the server's own timings (milliseconds in ``timings``), in seconds."""
        v = self.timings.get(key)
        return float(v) / 1e3 if isinstance(v, int | float) and v >= 0 else None

    def token(self, now: float, answer: bool) -> None:
        if self.first is None:
            self.first = now
        elif self.last is not None:
            self.gaps.append(now - self.last)
        if answer and self.first_answer is None:
            self.first_answer = now
        self.last = now
        self.chunks += 1

    def take(self, events: list[Any], now: float) -> bool:
        """Absorb the events one network read carried (they all arrived at ``now``); True
        once the stream is over for the client: ``[DONE]`` came, or a line over the cap."""
        for event in events:
            if event is DONE:
                return True
            if event is OVERSIZED:
                self.oversized = True
                return True
            if event is MALFORMED:
                self.malformed += 1
                continue
            if not isinstance(event, dict):
                continue
            err = _error_text(event)
            if err is not None:
                self.server_error = self.server_error or err
                continue
            if isinstance(event.get("usage"), dict) and event["usage"]:
                self.usage = event["usage"]
            if isinstance(event.get("timings"), dict):
                self.timings = event["timings"]
            answer, reasoning, finished = _texts(event)
            if answer or reasoning:
                self.token(now, bool(answer))
            self.finished = self.finished or finished
        return False

    def problem(self, done: bool) -> str | None:
        if self.server_error is not None:
            return f"stream error: {self.server_error}"
        if self.oversized:
            return f"SSE line over {MAX_LINE_BYTES >> 20} MiB: not an OpenAI-style stream"
        if self.malformed:
            return f"malformed SSE: {self.malformed} event(s) were not JSON"
        if not (done or self.finished):
            return "stream ended before [DONE] or a finish reason (dropped connection?)"
        if self.chunks == 0:
            return "the stream carried no token"
        return None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


async def _read_capped(resp: httpx.Response, cap: int) -> bytes | None:
    """The body, or None when it is longer than ``cap``."""
    body = bytearray()
    async for chunk in resp.aiter_bytes():
        body += chunk
        if len(body) > cap:
            return None
    return bytes(body)


def _not_streamed(body: bytes | None, st: _Stream) -> str:
    """Why a 200 with one JSON body is not a measurement; its usage is kept on ``st``."""
    if body is None:
        return f"not streamed: the server answered one body over {MAX_JSON_BODY_BYTES >> 20} MiB, not an SSE stream"
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict):
        err = _error_text(doc)
        if err is not None:
            return f"server error: {err}"
        if isinstance(doc.get("usage"), dict):
            st.usage = doc["usage"]
    out = _int(st.usage.get("completion_tokens"))
    counted = f" ({out} output tokens by its usage)" if out is not None else ""
    return (
        f"not streamed: the server answered 200 with one JSON body{counted} instead of an SSE stream, "
        "so TTFT and TPOT cannot be timed (a proxy that buffers, or a server that ignores stream=true?)"
    )


def _http_error(resp: httpx.Response, body: str, base_url: str) -> str:
    text = " ".join(body.split())[:160]
    where = f"{resp.request.method} {resp.request.url}"
    if resp.status_code == 404:
        return (
            f"HTTP 404: {where} not found ({text}); give the server's base URL, with or without /v1 "
            f"(e.g. {base_url}), and a model name it serves"
        )
    return f"HTTP {resp.status_code}: {where}: {text}"


async def send_one(
    client: httpx.AsyncClient,
    s: BenchSettings,
    idx: int,
    prompt: Prompt,
    t0: float,
    clock: Callable[[], float],
    done: Callable[[RequestRecord], None],
    arrival_s: float | None = None,
) -> None:
    """One streamed request, handed to ``done`` when it ends however it ends. ``start`` is
    its arrival in an open loop (``arrival_s``: the schedule, so a client that falls behind
    shows it as send delay instead of quietly thinning the arrivals), else when the client
    took it up; ``sent`` when its last byte was handed to the socket
    (httpcore's ``trace`` extension reports it), so that the client's own work, pool waits
    and new connections stay out of TTFT and are reported apart. Each token is timed by the
    arrival of the bytes that carried it."""
    start = clock() - t0 if arrival_s is None else min(arrival_s, clock() - t0)
    sent: float | None = None

    async def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal sent
        if event.endswith("send_request_body.complete"):
            sent = clock() - t0

    st = _Stream()

    def record(error: str | None, cancelled: bool = False) -> RequestRecord:
        return RequestRecord(
            idx=idx,
            warmup=idx < s.warmup,
            start_s=start,
            first_token_s=st.first,
            end_s=clock() - t0,
            prompt_tokens=_int(st.usage.get("prompt_tokens")),
            output_tokens=_int(st.usage.get("completion_tokens")) or st.chunks or None,
            itl_s=st.gaps,
            error=error,
            first_answer_s=st.first_answer,
            sent_s=sent,
            server_prefill_s=st.server_s("prompt_ms"),
            server_tpot_s=st.server_s("predicted_per_token_ms"),
            cancelled=cancelled,
        )

    body = payload(s, prompt)
    try:
        async with asyncio.timeout(s.timeout_s):
            error = await _exchange(client, s, body, st, t0, clock, trace)
    except TimeoutError:
        error = f"Timeout: no complete answer within --timeout-s {s.timeout_s:g} s"
    except asyncio.CancelledError:
        done(record(CANCELLED, cancelled=True))
        raise
    except httpx.HTTPError as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:200] if str(exc) else exc.__class__.__name__
    done(record(error))


async def _exchange(
    client: httpx.AsyncClient,
    s: BenchSettings,
    body: dict[str, Any],
    st: _Stream,
    t0: float,
    clock: Callable[[], float],
    trace: Callable[[str, dict[str, Any]], Any],
) -> str | None:
    """Send, read the answer into ``st``; the failure's cause, or None."""
    request = client.build_request("POST", api_path(s.api), json=body, extensions={"trace": trace})
    resp = await client.send(request, stream=True)
    try:
        if resp.status_code != 200:
            raw = await _read_capped(resp, 4096)
            return _http_error(resp, (raw or b"").decode(errors="replace"), s.base_url)
        ctype = resp.headers.get("content-type", "")
        if "json" in ctype and "event-stream" not in ctype:
            return _not_streamed(await _read_capped(resp, MAX_JSON_BODY_BYTES), st)
        decoder = SseDecoder()
        finished = False
        opening = b""  # the first bytes, to recognise a JSON body sent without its content type
        async for chunk in resp.aiter_bytes():
            if len(opening) < 1:
                opening = chunk.lstrip()[:1]
            if st.take(decoder.feed(chunk), clock() - t0):
                finished = True
                break
        else:
            finished = st.take(decoder.close(), clock() - t0)
        if opening == b"{" and st.chunks == 0 and st.server_error is None and not st.malformed:
            return "not streamed: the server answered 200 with a JSON body instead of an SSE stream"
        return st.problem(finished and not st.oversized)
    finally:
        await resp.aclose()
