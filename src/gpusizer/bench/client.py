"""Load an OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI, Ollama) with streaming
requests and record every one: start, first token, each later token, end, token counts.

One asyncio event loop and one httpx client. Closed loop: ``concurrency`` workers each send
their next request as soon as the last one finished. Open loop: Poisson arrivals at ``rate``
(exponential gaps from a seeded generator). The first ``warmup`` requests are recorded but
flagged and left out of the metrics. The HTTP transport and the clock are parameters, so
tests can drive the client without a network and the timing stays honest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import numpy as np

from gpusizer.bench.sse import DONE, parse_sse_lines
from gpusizer.errors import BadInputError
from gpusizer.store.runs import RequestRecord

__all__ = ["BenchSettings", "run_load", "synthetic_prompt"]

_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "seven",
    "wise",
    "owls",
    "count",
    "silver",
    "stars",
    "above",
    "a",
    "quiet",
    "river",
    "that",
    "winds",
    "through",
    "ancient",
    "hills",
]


def synthetic_prompt(n_words: int, salt: int) -> str:
    """About ``n_words`` tokens of plain English; ``salt`` varies the start so prefix caches
    do not turn every request into a cache hit."""
    words = [_WORDS[(salt + i) % len(_WORDS)] for i in range(max(1, n_words))]
    return f"Request {salt}. " + " ".join(words)


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    url: str
    model: str
    api: Literal["completions", "chat"] = "completions"
    input_len: int = 256
    output_len: int = 64
    requests: int = 32
    warmup: int = 2
    concurrency: int | None = None
    rate: float | None = None
    timeout_s: float = 120.0
    api_key: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise BadInputError("--concurrency/--rate", "give exactly one load per point")
        if not self.url.startswith(("http://", "https://")):
            raise BadInputError("URL", f"{self.url!r} is not an http(s) URL")
        for name, v, lo, hi in (
            ("--requests", self.requests, 1, 1_000_000),
            ("--input-len", self.input_len, 1, 10**7),
            ("--output-len", self.output_len, 1, 10**6),
            ("--warmup", self.warmup, 0, 10_000),
        ):
            if not lo <= v <= hi:
                raise BadInputError(name, f"must be {lo}..{hi}, got {v}")


def _payload(s: BenchSettings, prompt: str) -> dict[str, Any]:
    common: dict[str, Any] = {
        "model": s.model,
        "max_tokens": s.output_len,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
        "ignore_eos": True,
    }  # vLLM, SGLang and llama.cpp honour it: fixed output length
    if s.api == "chat":
        return {**common, "messages": [{"role": "user", "content": prompt}]}
    return {**common, "prompt": prompt}


def _token_text(event: dict[str, Any]) -> str:
    choices = event.get("choices") or []
    if not choices:
        return ""
    c = choices[0]
    delta = c.get("delta") or {}
    return str(c.get("text") or delta.get("content") or delta.get("reasoning_content") or "")


async def _one(
    client: httpx.AsyncClient, s: BenchSettings, idx: int, t0: float, clock: Callable[[], float]
) -> RequestRecord:
    path = "/v1/chat/completions" if s.api == "chat" else "/v1/completions"
    start = clock() - t0
    first: float | None = None
    last: float | None = None
    gaps: list[float] = []
    chunks = 0
    usage: dict[str, Any] = {}
    try:
        async with client.stream("POST", path, json=_payload(s, synthetic_prompt(s.input_len, idx))) as resp:
            if resp.status_code != 200:
                body = (await resp.aread()).decode(errors="replace")[:200]
                return RequestRecord(
                    idx=idx,
                    warmup=idx < s.warmup,
                    start_s=start,
                    first_token_s=None,
                    end_s=clock() - t0,
                    prompt_tokens=None,
                    output_tokens=None,
                    itl_s=[],
                    error=f"HTTP {resp.status_code}: {body}",
                )
            async for event in parse_sse_lines(resp.aiter_lines()):
                if event is DONE:
                    break
                if not isinstance(event, dict):
                    continue
                if event.get("usage"):
                    usage = event["usage"]
                if _token_text(event):
                    now = clock() - t0
                    if first is None:
                        first = now
                    elif last is not None:
                        gaps.append(now - last)
                    last = now
                    chunks += 1
    except httpx.HTTPError as exc:
        return RequestRecord(
            idx=idx,
            warmup=idx < s.warmup,
            start_s=start,
            first_token_s=first,
            end_s=clock() - t0,
            prompt_tokens=None,
            output_tokens=chunks or None,
            itl_s=gaps,
            error=f"{exc.__class__.__name__}: {exc}"[:200],
        )
    return RequestRecord(
        idx=idx,
        warmup=idx < s.warmup,
        start_s=start,
        first_token_s=first,
        end_s=clock() - t0,
        prompt_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens") or chunks,
        itl_s=gaps,
    )


async def _run(
    s: BenchSettings, transport: httpx.AsyncBaseTransport | None, clock: Callable[[], float]
) -> list[RequestRecord]:
    headers = {"Authorization": f"Bearer {s.api_key}"} if s.api_key else {}
    limits = httpx.Limits(max_connections=max(s.concurrency or 64, 1) + 4)
    async with httpx.AsyncClient(
        base_url=s.url.rstrip("/"), transport=transport, timeout=s.timeout_s, headers=headers, limits=limits
    ) as client:
        total = s.requests + s.warmup
        t0 = clock()
        records: list[RequestRecord] = []
        if s.concurrency is not None:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(total):
                queue.put_nowait(i)

            async def worker() -> None:
                while True:
                    try:
                        i = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    records.append(await _one(client, s, i, t0, clock))

            await asyncio.gather(*(worker() for _ in range(min(s.concurrency, total))))
        else:
            assert s.rate is not None
            gaps = np.random.default_rng(s.seed).exponential(1 / s.rate, size=total)
            starts = np.cumsum(gaps) - gaps[0]
            tasks = []
            for i, at in enumerate(starts):
                delay = float(at) - (clock() - t0)
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(_one(client, s, i, t0, clock)))
            records = list(await asyncio.gather(*tasks))
    return sorted(records, key=lambda r: r.idx)


def run_load(
    s: BenchSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[RequestRecord]:
    """Run one load point and return every request's record (warm-up ones flagged)."""
    return asyncio.run(_run(s, transport, clock))
