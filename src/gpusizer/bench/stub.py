"""A scripted OpenAI-compatible server for testing the bench client: it streams a given
number of tokens with given delays, and injects faults on the requests you name.

It is a bare ASGI app (no framework, so it is fast enough to load-test the client itself):
``POST /v1/completions`` and ``/v1/chat/completions`` stream SSE chunks with a ``usage``
chunk and ``[DONE]``; ``GET /metrics`` exports vLLM-named gauges for what it is serving and
vLLM's TTFT, inter-token-latency and queue-time histograms, timed by the stub's own clock;
``POST /tokenize`` counts whitespace-separated words (a toy tokenizer, exact for the stub);
``GET /health`` answers 200. A request's index is read from the bench client's synthetic
prompt (``Request N.``), so a fault lands on the same request whatever the concurrency.

Faults: ``http500`` (an error status), ``drop`` (the connection closes mid-stream),
``malformed`` (a ``data:`` line that is not JSON), ``stall`` (no byte after the headers
until the client gives up), ``nodone`` (the stream ends cleanly but without ``[DONE]`` or a
finish reason), ``error_event`` (a few tokens, then vLLM's in-stream error object, then
``[DONE]``), ``json200`` (a 200 with one non-streamed JSON completion and its usage),
``keepalive`` (``: keep-alive`` comments every ``trickle_s``, never a token), ``trickle``
(one token, then one byte of a comment every ``trickle_s``), ``hugeline`` (a ``data:`` line
of ``huge_bytes`` with no end, written in 64 KiB pieces). ``slots`` caps the requests served at once, so the rest queue as behind an
engine's batch limit. Run it alone with ``python -m gpusizer.bench.stub --port 8011``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Fault", "StubConfig", "make_app"]

Fault = Literal[
    "http500",
    "drop",
    "malformed",
    "stall",
    "nodone",
    "error_event",
    "json200",
    "keepalive",
    "trickle",
    "hugeline",
]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_IDX = re.compile(r"Request (\d+)\.")


@dataclass(frozen=True, kw_only=True)
class StubConfig:
    ttft_s: float = 0.0
    itl_s: float = 0.0
    reasoning_tokens: int = 0  # streamed as reasoning_content before the answer (chat API)
    faults: Mapping[int, Fault] = field(default_factory=dict)
    stall_s: float = 3600.0
    burst: int = 1  # token events per write (servers coalesce too); the gap applies per write
    slots: int = 0  # requests served at once (a batch limit); the rest queue; 0: no limit
    usage: bool = True  # send the usage chunk (some servers ignore stream_options.include_usage)
    trickle_s: float = 0.05  # the gap between keep-alive comments or trickled bytes
    huge_bytes: int = 64 << 20  # the length of the ``hugeline`` fault's line


@dataclass
class _State:
    running: int = 0
    waiting: int = 0
    served: int = 0
    queue_sum: float = 0.0
    queue_count: int = 0
    ttft_sum: float = 0.0  # the stub's own clock, exported as vLLM's histograms are
    ttft_count: int = 0
    itl_sum: float = 0.0
    itl_count: int = 0


async def _body(receive: Receive) -> dict[str, Any]:
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    try:
        data = json.loads(b"".join(chunks) or b"{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _prompt_text(req: Mapping[str, Any]) -> str:
    if "prompt" in req:
        return str(req["prompt"])
    return " ".join(str(m.get("content", "")) for m in req.get("messages") or [] if isinstance(m, dict))


async def _send_json(send: Send, status: int, obj: Any) -> None:
    body = json.dumps(obj).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _histogram(name: str, total: float, count: int) -> str:
    """A Prometheus histogram with only its +Inf bucket: enough for means over a window."""
    label = 'model_name="stub"'
    return (
        f"# TYPE {name} histogram\n"
        f'{name}_bucket{{le="+Inf",{label}}} {count}\n'
        f"{name}_sum{{{label}}} {total:.6f}\n"
        f"{name}_count{{{label}}} {count}\n"
    )


async def _misbehave(send: Send, receive: Receive, cfg: StubConfig, fault: Fault, token: bytes) -> None:
    """The stream faults that never end well: the client must give up or fail the request.
    The endless ones stop when the client has gone (its ``http.disconnect``)."""
    gone = asyncio.ensure_future(receive())

    async def write(body: bytes) -> None:
        await send({"type": "http.response.body", "body": body, "more_body": True})

    try:
        await _misbehaving(write, gone, cfg, fault, token)
    finally:
        gone.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _misbehaving(
    write: Callable[[bytes], Awaitable[None]],
    gone: asyncio.Future[Message],
    cfg: StubConfig,
    fault: Fault,
    token: bytes,
) -> None:
    if fault == "error_event":  # vLLM's shape: {"error": {...}} then [DONE]
        await write(token + token)
        err = {
            "error": {
                "object": "error",
                "message": "injected: CUDA out of memory",
                "type": "InternalServerError",
            }
        }
        await write(b"data: " + json.dumps(err).encode() + b"\n\ndata: [DONE]\n\n")
    elif fault == "keepalive":
        while not gone.done():
            await write(b": keep-alive\n\n")
            await asyncio.sleep(cfg.trickle_s)
    elif fault == "trickle":
        await write(token + b":")
        while not gone.done():
            await asyncio.sleep(cfg.trickle_s)
            await write(b"x")
    elif fault == "hugeline":
        piece = b"x" * (64 << 10)
        await write(b'data: {"choices": [{"text": "')
        for _ in range(cfg.huge_bytes // len(piece)):
            if gone.done():
                return
            await write(piece)
        await write(b'"}]}\n\ndata: [DONE]\n\n')


def _chunk(chat: bool, text: str, *, reasoning: bool = False, finish: str | None = None) -> bytes:
    """One SSE event: a completions ``text`` choice, or a chat ``delta`` (reasoning or content)."""
    if chat:
        delta = {"reasoning_content": text} if reasoning else {"content": text}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish}
    return b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n"


def _metrics_text(state: _State) -> str:
    """What ``GET /metrics`` serves: vLLM-named gauges, a counter and three histograms."""
    return (
        "# TYPE vllm:num_requests_running gauge\n"
        f'vllm:num_requests_running{{model_name="stub"}} {state.running}\n'
        "# TYPE vllm:num_requests_waiting gauge\n"
        f'vllm:num_requests_waiting{{model_name="stub"}} {state.waiting}\n'
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        f'vllm:kv_cache_usage_perc{{model_name="stub"}} {min(1.0, state.running / 64):.4f}\n'
        "# TYPE vllm:num_preemptions counter\n"
        'vllm:num_preemptions_total{model_name="stub"} 0\n'
        + _histogram("vllm:time_to_first_token_seconds", state.ttft_sum, state.ttft_count)
        + _histogram("vllm:inter_token_latency_seconds", state.itl_sum, state.itl_count)
        + _histogram("vllm:request_queue_time_seconds", state.queue_sum, state.queue_count)
    )


async def _send_json200(send: Send, prompt: str, n: int, chat: bool) -> None:
    """The ``json200`` fault: one non-streamed completion of ``n`` tokens with its usage."""
    text = {"text": " tok" * n} if not chat else {"message": {"role": "assistant", "content": " tok" * n}}
    usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": n}
    await _send_json(
        send, 200, {"choices": [{"index": 0, **text, "finish_reason": "length"}], "usage": usage}
    )


async def _stream_tokens(
    cfg: StubConfig,
    state: _State,
    send: Send,
    *,
    chat: bool,
    n: int,
    fault: Fault | None,
    prompt: str,
    arrived: float,
) -> None:
    """The reasoning tokens (chat) then ``n`` answer tokens, ``cfg.burst`` events a write and
    ``cfg.itl_s`` between writes, timed into ``state``'s TTFT and ITL sums; then the usage
    chunk and ``[DONE]``. The ``drop``, ``malformed`` and ``nodone`` faults land here."""
    reasoning = cfg.reasoning_tokens if chat else 0
    total = reasoning + n
    plain = _chunk(chat, " tok")
    body = b""
    sent_tokens, last_write = 0, arrived
    for i in range(total):
        if fault == "drop" and i == n // 2:
            raise ConnectionResetError("injected: connection dropped mid-stream")
        last = i == total - 1
        if i < reasoning:
            event = _chunk(chat, " tok", reasoning=True)
        elif last and fault != "nodone":
            event = _chunk(chat, " tok", finish="length")
        else:
            event = plain
        body += event
        if fault == "malformed" and i == 1:
            body += b"data: {this is not json\n\n"
        if (i + 1) % cfg.burst == 0 or last:
            await send({"type": "http.response.body", "body": body, "more_body": True})
            body = b""
            now, tokens = asyncio.get_running_loop().time(), i + 1 - sent_tokens
            if sent_tokens == 0:  # the first write: TTFT, and the tokens that came with it
                state.ttft_sum += now - arrived
                state.ttft_count += 1
                state.itl_count += tokens - 1
            else:  # one gap, spread over the tokens the write carried
                state.itl_sum += now - last_write
                state.itl_count += tokens
            sent_tokens, last_write = i + 1, now
            if cfg.itl_s and not last:
                await asyncio.sleep(cfg.itl_s)
    tail = b""
    if fault != "nodone":
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": reasoning + n}
        if cfg.usage:
            tail = b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"
        tail += b"data: [DONE]\n\n"
    await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _stream(
    cfg: StubConfig,
    state: _State,
    send: Send,
    receive: Receive,
    req: Mapping[str, Any],
    chat: bool,
    arrived: float,
) -> None:
    """Answer one completion request, with the fault its index names (if any)."""
    prompt = _prompt_text(req)
    m = _IDX.search(prompt)
    fault = cfg.faults.get(int(m.group(1))) if m else None
    if fault == "http500":
        await _send_json(send, 500, {"error": {"message": "injected failure"}})
        return
    n = max(1, int(req.get("max_tokens") or 16))
    if fault == "json200":
        await _send_json200(send, prompt, n, chat)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )
    if fault == "stall":
        await asyncio.sleep(cfg.stall_s)
    if fault in ("keepalive", "trickle", "hugeline", "error_event"):
        await _misbehave(send, receive, cfg, fault, _chunk(chat, " tok"))
        return
    if cfg.ttft_s:
        await asyncio.sleep(cfg.ttft_s)
    await _stream_tokens(cfg, state, send, chat=chat, n=n, fault=fault, prompt=prompt, arrived=arrived)


async def _serve_completion(
    cfg: StubConfig,
    state: _State,
    slots: asyncio.Semaphore | None,
    send: Send,
    receive: Receive,
    chat: bool,
) -> None:
    """Queue for a slot (when ``cfg.slots`` caps them), then stream; ``state`` counts the
    waiting, running and served requests and the time queued."""
    loop = asyncio.get_running_loop()
    arrived = loop.time()
    req = await _body(receive)
    state.waiting += 1
    queued = True
    try:
        async with slots or contextlib.nullcontext():
            state.waiting, queued = state.waiting - 1, False
            state.queue_sum += loop.time() - arrived
            state.queue_count += 1
            state.running += 1
            try:
                await _stream(cfg, state, send, receive, req, chat=chat, arrived=arrived)
            finally:
                state.running -= 1
                state.served += 1
    finally:
        if queued:  # the client went away while it waited
            state.waiting -= 1


async def _lifespan(receive: Receive, send: Send) -> None:
    """ASGI lifespan: acknowledge startup, return at shutdown."""
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def make_app(cfg: StubConfig) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    state = _State()
    slots = asyncio.Semaphore(cfg.slots) if cfg.slots > 0 else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            await _serve_completion(cfg, state, slots, send, receive, chat=path.endswith("chat/completions"))
        elif method == "GET" and path == "/metrics":
            body = _metrics_text(state).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": body})
        elif method == "POST" and path == "/tokenize":
            req = await _body(receive)
            text = str(req.get("prompt") or req.get("content") or "")
            tokens = list(range(len(text.split())))
            await _send_json(send, 200, {"tokens": tokens, "count": len(tokens)})
        elif method == "GET" and path == "/health":
            await _send_json(send, 200, {"status": "ok"})
        else:
            await _send_json(send, 404, {"error": {"message": f"no route {method} {path}"}})

    return app


def main() -> None:  # pragma: no cover - a helper for benchmarks/ and manual checks
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8011)
    ap.add_argument("--ttft-ms", type=float, default=0.0)
    ap.add_argument("--itl-ms", type=float, default=0.0)
    ap.add_argument("--burst", type=int, default=1)
    ap.add_argument("--slots", type=int, default=0, help="requests served at once (0: no limit)")
    a = ap.parse_args()
    app = make_app(
        StubConfig(ttft_s=a.ttft_ms / 1e3, itl_s=a.itl_ms / 1e3, burst=max(1, a.burst), slots=max(0, a.slots))
    )
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning", backlog=4096)


if __name__ == "__main__":  # pragma: no cover
    main()
