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
connections, streams that end without ``[DONE]`` or a finish reason, non-JSON events, error
events and streams with no token are each recorded with their cause (``request.py``).

An ``Interrupt`` (Ctrl-C, SIGTERM) wakes the point at once: the requests in flight are
cancelled and recorded as ``cancelled``, and the point returns what it has. ``heartbeat``
is called every ``HEARTBEAT_S`` while the point runs, so the store can tell a long point from
a dead one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from gpusizer.bench.interrupt import Interrupt
from gpusizer.bench.prometheus import parse_metrics
from gpusizer.bench.request import send_one
from gpusizer.errors import BadInputError
from gpusizer.store.runs import MetricsSample, RequestRecord

__all__ = ["BenchSettings", "Prompt", "run_load", "server_base", "synthetic_prompt"]

HEARTBEAT_S = 5.0  # how often a running point tells the store it is alive
CANCEL_WAIT_S = 5.0  # on interrupt, how long the cancelled requests get to record themselves

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


def server_base(url: str, field: str = "URL") -> str:
    """The server's base URL (scheme, host, port and any path prefix) without a trailing
    ``/v1``: OpenAI clients are given ``http://host:8000/v1`` and servers are documented that
    way, while the request paths here (``/v1/completions``) and ``/metrics`` start at the
    root. A URL that cannot be connected to as written is refused with one line."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # ValueError when out of 0..65535
        httpx.URL(text)
    except (ValueError, httpx.InvalidURL) as exc:
        raise BadInputError(field, f"{url!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise BadInputError(field, f"{url!r} is not an http(s) URL", "e.g. http://127.0.0.1:8000")
    if not parts.hostname:
        raise BadInputError(field, f"{url!r} names no host", "e.g. http://127.0.0.1:8000")
    if port == 0:
        raise BadInputError(field, f"{url!r}: port 0 cannot be connected to", "ports 1..65535")
    if parts.query or parts.fragment:
        raise BadInputError(field, f"{url!r} has a query or fragment; give the server's base URL")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


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
        server_base(self.url)
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
        if not 0 < self.timeout_s <= 86400:
            raise BadInputError("--timeout-s", f"must be above 0 s and at most a day, got {self.timeout_s}")

    @property
    def base_url(self) -> str:
        """Where requests go: ``url`` without a trailing ``/v1`` (see ``server_base``)."""
        return server_base(self.url)

    def public(self) -> dict[str, Any]:
        """What is stored with the run: everything but the API key."""
        return {k: v for k, v in self.__dict__.items() if k != "api_key"}


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


async def _cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait while each records itself as cancelled."""
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _settle(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Wait for every task; when the waiting is cut short (an interrupt, a failure), cancel
    the rest and let each record itself before passing the cause on."""
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        await _cancel_all(tasks)
        raise


async def _load(
    client: httpx.AsyncClient,
    s: BenchSettings,
    t0: float,
    clock: Callable[[], float],
    prompt_for: Callable[[int], Prompt],
    done: Callable[[RequestRecord], None],
) -> None:
    """Send the point's requests: closed loop (``concurrency`` workers) or open loop (arrivals
    at ``rate``)."""
    total = s.requests + s.warmup
    deadline = s.duration_s

    def more(i: int) -> bool:
        return i < total and (deadline is None or clock() - t0 < deadline)

    if s.concurrency is not None:
        next_idx = 0

        async def worker() -> None:
            nonlocal next_idx
            while more(next_idx):
                i, next_idx = next_idx, next_idx + 1
                await send_one(client, s, i, prompt_for(i), t0, clock, done)

        await _settle([asyncio.create_task(worker()) for _ in range(min(s.concurrency, total))])
        return
    assert s.rate is not None
    rng = np.random.default_rng(s.seed)
    tasks: list[asyncio.Task[None]] = []
    at, i = 0.0, 0
    try:
        while i < total and (deadline is None or at < deadline):
            delay = at - (clock() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send_one(client, s, i, prompt_for(i), t0, clock, done, at)))
            i += 1
            k = s.burstiness
            at += float(rng.exponential(1 / s.rate) if k == 1 else rng.gamma(k, 1 / (k * s.rate)))
    except BaseException:  # interrupted between arrivals: the requests in flight are cut off
        await _cancel_all(tasks)
        raise
    await _settle(tasks)


async def _beat(heartbeat: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        heartbeat()


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` until it ends or ``stop`` is set; True when it was stopped. Stopped work
    is cancelled and given ``CANCEL_WAIT_S`` to record its requests as cancelled."""
    task = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        task.result()  # a failure of the load itself (a store that cannot be written) goes on up
        return False
    task.cancel()
    await asyncio.wait({task}, timeout=CANCEL_WAIT_S)
    if task.done() and not task.cancelled() and task.exception() is not None:
        task.result()
    return True


async def _run(
    s: BenchSettings,
    prompts: Sequence[Prompt],
    transport: httpx.AsyncBaseTransport | None,
    clock: Callable[[], float],
    on_record: Callable[[RequestRecord], None] | None,
    on_metrics: Callable[[MetricsSample], None] | None,
    interrupt: Interrupt | None,
    heartbeat: Callable[[], None] | None,
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
    stop = interrupt.bind(asyncio.get_running_loop()) if interrupt is not None else asyncio.Event()
    try:
        async with httpx.AsyncClient(
            base_url=s.base_url, transport=transport, timeout=s.timeout_s, headers=headers, limits=limits
        ) as client:
            t0 = clock()
            helpers = []
            scraper = None
            if on_metrics is not None and s.metrics_interval_s > 0:
                scraper = asyncio.create_task(_scrape(client, s.metrics_interval_s, t0, clock, on_metrics))
                helpers.append(scraper)
            if heartbeat is not None:
                helpers.append(asyncio.create_task(_beat(heartbeat)))
            stopped = False
            try:
                stopped = await _until_stopped(_load(client, s, t0, clock, prompt_for, done), stop)
            finally:
                scraping = scraper is not None and not scraper.done()  # done early: no metrics to read
                for h in helpers:
                    h.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
                if scraping and on_metrics is not None and not stopped:  # the counters at the end
                    with contextlib.suppress(Exception):
                        await _sample(client, LAST_SAMPLE_TIMEOUT_S, t0, clock, on_metrics)
    finally:
        if interrupt is not None:
            interrupt.unbind()
    return sorted(records, key=lambda r: r.idx)


def run_load(
    s: BenchSettings,
    *,
    prompts: Sequence[Prompt] = (),
    on_record: Callable[[RequestRecord], None] | None = None,
    on_metrics: Callable[[MetricsSample], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.perf_counter,
    interrupt: Interrupt | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> list[RequestRecord]:
    """Run one load point and return every request's record (warm-up ones flagged, those
    cut off by ``interrupt`` flagged ``cancelled``). ``on_record`` sees each request as it
    finishes, so a caller can store it at once."""
    return asyncio.run(_run(s, prompts, transport, clock, on_record, on_metrics, interrupt, heartbeat))
