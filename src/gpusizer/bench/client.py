"""Load an OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI, Ollama) with streaming
requests and record every one: start, the moment it was on the wire, first token, first
answer token, each later token, end, token counts, and the cause when it failed.

One asyncio event loop and one httpx client. Closed loop: ``concurrency`` workers each send
their next request as soon as the last one finished. Open loop: arrivals at ``rate``, Poisson
(exponential gaps from a seeded generator) or burstier with ``burstiness`` below 1 (gamma
gaps of shape ``burstiness``, the same mean; as simulate and vLLM's benchmark draw them).
A point ends after ``requests`` measured requests or ``duration_s`` seconds, whichever
comes first. The first ``warmup`` requests
are recorded but flagged and left out of the metrics. Each finished request is handed to
``on_record`` at once (the CLI commits it to the store), and the server's ``/metrics`` is
scraped every ``metrics_interval_s`` into ``on_metrics``. The HTTP transport and the clock
are parameters, so tests can drive the client without a network and the timing stays honest.

Failures never stop the run and never count as zero latency: HTTP errors, timeouts, dropped
connections, streams that end without ``[DONE]`` or a finish reason, non-JSON events and
streams with no token are each recorded with their cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import httpx
import numpy as np

from gpusizer.bench.prometheus import parse_metrics
from gpusizer.bench.sse import DONE, MALFORMED, SseDecoder
from gpusizer.errors import BadInputError
from gpusizer.store.runs import MetricsSample, RequestRecord

__all__ = ["BenchSettings", "Prompt", "run_load", "synthetic_prompt"]

SOON_AFTER_START_S = 0.25  # the /metrics sample after the idle baseline: a short point is still seen busy
LAST_SAMPLE_TIMEOUT_S = 2.0  # the closing /metrics sample (final counters) waits at most this long

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


@dataclass(frozen=True)
class Prompt:
    """One request's input: text for the completions API, messages for chat; ``output_len``
    overrides the point's output length (datasets carry their own)."""

    text: str | None = None
    messages: tuple[dict[str, str], ...] | None = None
    output_len: int | None = None


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    url: str
    model: str
    api: Literal["completions", "chat"] = "completions"
    input_len: int = 256
    output_len: int = 64
    requests: int = 32
    duration_s: float | None = None
    warmup: int = 2
    concurrency: int | None = None
    rate: float | None = None
    burstiness: float = 1.0  # gamma shape of the open-loop gaps: 1 = Poisson, < 1 burstier
    timeout_s: float = 120.0
    api_key: str | None = field(default=None, repr=False)
    seed: int = 0
    metrics_interval_s: float = 1.0  # 0: do not scrape /metrics
    prompt_words: int | None = None  # synthetic words that make input_len tokens (see prompts.py)

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise BadInputError("--concurrency/--rate", "give exactly one load per point")
        if not self.url.startswith(("http://", "https://")):
            raise BadInputError("URL", f"{self.url!r} is not an http(s) URL")
        for name, v, lo, hi in (
            ("--requests", self.requests, 1, 10_000_000),
            ("--input-len", self.input_len, 1, 10**7),
            ("--output-len", self.output_len, 1, 10**6),
            ("--warmup", self.warmup, 0, 10_000),
            ("--concurrency", 1 if self.concurrency is None else self.concurrency, 1, 100_000),
        ):
            if not lo <= v <= hi:
                raise BadInputError(name, f"must be {lo}..{hi}, got {v}")
        if self.rate is not None and not 0 < self.rate <= 1e6:
            raise BadInputError("--rate", f"must be above 0 and at most 1e6 requests/s, got {self.rate}")
        if not 0.01 <= self.burstiness <= 100:
            raise BadInputError(
                "--burstiness", f"must be 0.01..100 (1 = Poisson, below 1 burstier), got {self.burstiness}"
            )
        if self.duration_s is not None and not 0 < self.duration_s <= 7 * 86400:
            raise BadInputError("--duration", f"must be above 0 s and at most a week, got {self.duration_s}")

    def public(self) -> dict[str, Any]:
        """What is stored with the run: everything but the API key."""
        return {k: v for k, v in self.__dict__.items() if k != "api_key"}


def _payload(s: BenchSettings, prompt: Prompt) -> dict[str, Any]:
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
    if not choices:
        return "", "", False
    c = choices[0]
    delta = c.get("delta") or {}
    answer = str(c.get("text") or delta.get("content") or "")
    reasoning = str(delta.get("reasoning_content") or delta.get("reasoning") or "")
    return answer, reasoning, bool(c.get("finish_reason"))


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
        once ``[DONE]`` came."""
        for event in events:
            if event is DONE:
                self.finished = True
                return True
            if event is MALFORMED:
                self.malformed += 1
                continue
            if not isinstance(event, dict):
                continue
            if event.get("usage"):
                self.usage = event["usage"]
            if isinstance(event.get("timings"), dict):
                self.timings = event["timings"]
            answer, reasoning, finished = _texts(event)
            if answer or reasoning:
                self.token(now, bool(answer))
            self.finished = self.finished or finished
        return False

    def problem(self) -> str | None:
        if self.malformed:
            return f"malformed SSE: {self.malformed} event(s) were not JSON"
        if not self.finished:
            return "stream ended before [DONE] or a finish reason (dropped connection?)"
        if self.chunks == 0:
            return "the stream carried no token"
        return None


async def _one(
    client: httpx.AsyncClient,
    s: BenchSettings,
    idx: int,
    prompt: Prompt,
    t0: float,
    clock: Callable[[], float],
) -> RequestRecord:
    """One streamed request. ``start`` is when the client took it up; ``sent`` when its last
    byte was handed to the socket (httpcore's ``trace`` extension reports it), so that the
    client's own work, pool waits and new connections stay out of TTFT and are reported
    apart. Each token is timed by the arrival of the bytes that carried it."""
    path = "/v1/chat/completions" if s.api == "chat" else "/v1/completions"
    start = clock() - t0
    sent: float | None = None

    async def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal sent
        if event.endswith("send_request_body.complete"):
            sent = clock() - t0

    st = _Stream()
    error: str | None = None
    try:
        request = client.build_request("POST", path, json=_payload(s, prompt), extensions={"trace": trace})
        resp = await client.send(request, stream=True)
        try:
            if resp.status_code != 200:
                body = (await resp.aread()).decode(errors="replace")[:200]
                error = f"HTTP {resp.status_code}: {body}"
            else:
                decoder = SseDecoder()
                async for chunk in resp.aiter_bytes():
                    if st.take(decoder.feed(chunk), clock() - t0):
                        break
                else:
                    st.take(decoder.close(), clock() - t0)
                error = st.problem()
        finally:
            await resp.aclose()
    except httpx.HTTPError as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:200] if str(exc) else exc.__class__.__name__
    return RequestRecord(
        idx=idx,
        warmup=idx < s.warmup,
        start_s=start,
        first_token_s=st.first,
        end_s=clock() - t0,
        prompt_tokens=st.usage.get("prompt_tokens"),
        output_tokens=st.usage.get("completion_tokens") or st.chunks or None,
        itl_s=st.gaps,
        error=error,
        first_answer_s=st.first_answer,
        sent_s=sent,
        server_prefill_s=st.server_s("prompt_ms"),
        server_tpot_s=st.server_s("predicted_per_token_ms"),
    )


async def _sample(
    client: httpx.AsyncClient,
    timeout_s: float,
    t0: float,
    clock: Callable[[], float],
    on_metrics: Callable[[MetricsSample], None],
) -> bool:
    """One sample of the server's /metrics; False when it has none worth reading."""
    try:
        resp = await client.get("/metrics", timeout=timeout_s)
        if resp.status_code != 200:
            return False
        snap = parse_metrics(resp.text)
    except (httpx.HTTPError, ValueError):
        return False
    if snap.engine is None and snap.running is None:
        return False  # not a serving engine's metrics
    kept = {f.name: getattr(snap, f.name) for f in fields(MetricsSample) if f.name != "t_s"}
    on_metrics(MetricsSample(t_s=clock() - t0, **kept))  # what is stored: the sample's own fields
    return True


async def _scrape(
    client: httpx.AsyncClient,
    every_s: float,
    t0: float,
    clock: Callable[[], float],
    on_metrics: Callable[[MetricsSample], None],
) -> None:
    """Sample the server's /metrics until cancelled; stop quietly if it has none. The first
    sample is the idle baseline (counters), the second comes soon after the load started, so
    even a point shorter than the interval is seen busy."""
    wait = min(every_s, SOON_AFTER_START_S)
    while await _sample(client, max(every_s, 1.0), t0, clock, on_metrics):
        await asyncio.sleep(wait)
        wait = every_s


async def _run(
    s: BenchSettings,
    prompts: Sequence[Prompt],
    transport: httpx.AsyncBaseTransport | None,
    clock: Callable[[], float],
    on_record: Callable[[RequestRecord], None] | None,
    on_metrics: Callable[[MetricsSample], None] | None,
) -> list[RequestRecord]:
    headers = {"Authorization": f"Bearer {s.api_key}"} if s.api_key else {}
    pool = (s.concurrency or 256) + 8
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    records: list[RequestRecord] = []

    def done(r: RequestRecord) -> None:
        records.append(r)
        if on_record is not None:
            on_record(r)

    def prompt_for(i: int) -> Prompt:
        return (
            prompts[i % len(prompts)]
            if prompts
            else Prompt(text=synthetic_prompt(s.prompt_words or s.input_len, i))
        )

    if transport is None:  # small request writes must not wait on Nagle's algorithm
        transport = httpx.AsyncHTTPTransport(
            limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
    async with httpx.AsyncClient(
        base_url=s.url.rstrip("/"), transport=transport, timeout=s.timeout_s, headers=headers, limits=limits
    ) as client:
        total = s.requests + s.warmup
        t0 = clock()
        deadline = None if s.duration_s is None else s.duration_s

        def more(i: int) -> bool:
            return i < total and (deadline is None or clock() - t0 < deadline)

        scraper = None
        if on_metrics is not None and s.metrics_interval_s > 0:
            scraper = asyncio.create_task(_scrape(client, s.metrics_interval_s, t0, clock, on_metrics))
        try:
            if s.concurrency is not None:
                next_idx = 0

                async def worker() -> None:
                    nonlocal next_idx
                    while more(next_idx):
                        i, next_idx = next_idx, next_idx + 1
                        done(await _one(client, s, i, prompt_for(i), t0, clock))

                await asyncio.gather(*(worker() for _ in range(min(s.concurrency, total))))
            else:
                assert s.rate is not None
                rng = np.random.default_rng(s.seed)
                tasks: list[asyncio.Task[None]] = []
                at, i = 0.0, 0

                async def fire(i: int) -> None:
                    done(await _one(client, s, i, prompt_for(i), t0, clock))

                while i < total and (deadline is None or at < deadline):
                    delay = at - (clock() - t0)
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(fire(i)))
                    i += 1
                    k = s.burstiness
                    at += float(rng.exponential(1 / s.rate) if k == 1 else rng.gamma(k, 1 / (k * s.rate)))
                await asyncio.gather(*tasks)
        finally:
            if scraper is not None:
                scraping = not scraper.done()  # done early: the server has no metrics to read
                scraper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scraper
                if scraping and on_metrics is not None:  # the counters at the end of the point
                    with contextlib.suppress(Exception):
                        await _sample(client, LAST_SAMPLE_TIMEOUT_S, t0, clock, on_metrics)
    return sorted(records, key=lambda r: r.idx)


def run_load(
    s: BenchSettings,
    *,
    prompts: Sequence[Prompt] = (),
    on_record: Callable[[RequestRecord], None] | None = None,
    on_metrics: Callable[[MetricsSample], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[RequestRecord]:
    """Run one load point and return every request's record (warm-up ones flagged).
    ``on_record`` sees each request as it finishes, so a caller can store it at once."""
    return asyncio.run(_run(s, prompts, transport, clock, on_record, on_metrics))
