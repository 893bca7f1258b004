"""Benchmark metrics, defined once:

* Origin = the moment the request's last byte was handed to the socket (the bench client
  traces it), or, for records without it, the moment the client took the request up. The
  server's latencies are timed from there, so the client's own work, connection-pool waits
  and new connections do not count as the server's time.
* Send delay = origin − client start (in an open loop, start = the request's scheduled
  arrival, so a generator that falls behind its schedule shows here rather than quietly
  thinning the arrivals): that client-side time, reported on its own (a large one means
  the load generator, not the server, is limiting).
* TTFT = arrival of the first streamed token − origin (a reasoning token counts). Tokens
  are timed by the arrival of the network read that carried them.
* Time to first answer token = first token of the answer proper − origin; differs
  from TTFT for reasoning models that stream ``reasoning_content`` first (DeepSeek-R1),
  and is reported only then.
* TPOT = (end − first token) / (output tokens − 1), output tokens from the server's usage;
  a server that sends no usage has its streamed chunks counted instead, and the summary
  says for how many requests the counts are such estimates.
* ITL = every gap between successive streamed chunks (differs from TPOT when a server
  streams several tokens per chunk).
* E2E = end − origin. Throughput = completed requests and output tokens over the measured
  window (first measured start to last measured end). Goodput = requests meeting the SLOs.
* Server-reported timings, when the server sends its own clock (llama.cpp's ``timings``):
  prefill = its prompt-processing time, TPOT its time per output token, and TTFT − prefill
  per request: what the first token waited outside prefill (queue, tokenizing, HTTP).
Warm-up requests and failed requests are left out of the latencies; failures are counted
by cause (the text before the first colon of the recorded error). Requests cut off by an
interrupt (``cancelled``) are neither: they are counted on their own and left out of the
failures and of goodput's denominator, since the server was never given the time to answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gpusizer.simulate.stats import Dist, dist
from gpusizer.store.runs import MetricsSample, RequestRecord

__all__ = ["BenchMetrics", "bench_metrics", "server_summary"]


@dataclass(frozen=True, kw_only=True)
class BenchMetrics:
    completed: int
    failed: int
    ttft: Dist
    tpot: Dist
    itl: Dist
    e2e: Dist
    requests_per_s: float
    output_tokens_per_s: float
    goodput_share: float
    mean_prompt_tokens: float | None
    ttfat: Dist | None = None
    failures: dict[str, int] | None = None
    send: Dist | None = None  # client-side time before each request was on the wire
    estimated_counts: int = 0  # requests whose token counts are streamed chunks, not the server's usage
    server_prefill: Dist | None = None
    server_tpot: Dist | None = None
    ttft_outside_prefill: Dist | None = None
    cancelled: int = 0  # measured requests cut off by an interrupt

    def as_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.ttfat is not None:
            extra["time_to_first_answer_token_ms"] = self.ttfat.as_ms()
        if self.send is not None:
            extra["client_send_ms"] = self.send.as_ms()
        if self.server_prefill is not None:
            extra["server_reported"] = {
                "prefill_ms": self.server_prefill.as_ms(),
                "tpot_ms": None if self.server_tpot is None else self.server_tpot.as_ms(),
                "ttft_outside_prefill_ms": None
                if self.ttft_outside_prefill is None
                else self.ttft_outside_prefill.as_ms(),
            }
        extra["token_counts"] = (
            "server usage"
            if not self.estimated_counts
            else f"estimated from streamed chunks for {self.estimated_counts} of {self.completed} requests "
            "(the server sent no usage)"
        )
        return {
            "completed": self.completed,
            "failed": self.failed,
            "ttft_ms": self.ttft.as_ms(),
            "tpot_ms": self.tpot.as_ms(),
            "itl_ms": self.itl.as_ms(),
            "e2e_ms": self.e2e.as_ms(),
            "requests_per_s": round(self.requests_per_s, 4),
            "output_tokens_per_s": round(self.output_tokens_per_s, 2),
            "goodput": round(self.goodput_share, 4),
            "mean_prompt_tokens": self.mean_prompt_tokens,
            "failures": dict(self.failures or {}),
            "cancelled": self.cancelled,
            **extra,
        }


def bench_metrics(
    records: list[RequestRecord], *, slo_ttft_s: float | None = None, slo_tpot_s: float | None = None
) -> BenchMetrics:
    cut_off = [r for r in records if not r.warmup and r.cancelled]
    measured = [r for r in records if not r.warmup and not r.cancelled]
    ok = [r for r in measured if r.error is None and r.first_token_s is not None and r.end_s is not None]
    ttft = np.array([r.first_token_s - r.origin_s for r in ok if r.first_token_s is not None])
    e2e = np.array([r.end_s - r.origin_s for r in ok if r.end_s is not None])
    tpot_list = [
        (r.end_s - r.first_token_s) / (r.output_tokens - 1)
        for r in ok
        if r.output_tokens and r.output_tokens > 1 and r.end_s is not None and r.first_token_s is not None
    ]
    itl = np.array([g for r in ok for g in r.itl_s])
    window = (max(r.end_s for r in ok if r.end_s) - min(r.start_s for r in ok)) if ok else 0.0
    tokens = sum(r.output_tokens or 0 for r in ok)
    good = 0
    for r in ok:
        assert r.first_token_s is not None and r.end_s is not None
        t_ok = slo_ttft_s is None or r.first_token_s - r.origin_s <= slo_ttft_s
        out = r.output_tokens or 0
        p_ok = slo_tpot_s is None or out <= 1 or (r.end_s - r.first_token_s) / (out - 1) <= slo_tpot_s
        good += int(t_ok and p_ok)
    prompts = [r.prompt_tokens for r in ok if r.prompt_tokens]
    reasoning = [r for r in ok if r.first_answer_s is not None and r.first_answer_s != r.first_token_s]
    ttfat = (
        dist(np.array([r.first_answer_s - r.origin_s for r in ok if r.first_answer_s is not None]))
        if reasoning
        else None
    )
    sends = [r.send_delay_s for r in ok if r.send_delay_s is not None]
    prefill = [r.server_prefill_s for r in ok if r.server_prefill_s is not None]
    server_tpot = [r.server_tpot_s for r in ok if r.server_tpot_s is not None]
    outside = [
        r.first_token_s - r.origin_s - r.server_prefill_s
        for r in ok
        if r.server_prefill_s is not None and r.first_token_s is not None
    ]
    failures: dict[str, int] = {}
    ok_ids = {id(r) for r in ok}
    for r in measured:
        if id(r) not in ok_ids:
            cause = (r.error or "no token").split(":")[0]
            failures[cause] = failures.get(cause, 0) + 1
    return BenchMetrics(
        completed=len(ok),
        failed=len(measured) - len(ok),
        ttft=dist(ttft),
        tpot=dist(np.array(tpot_list)),
        itl=dist(itl),
        e2e=dist(e2e),
        requests_per_s=len(ok) / window if window > 0 else 0.0,
        output_tokens_per_s=tokens / window if window > 0 else 0.0,
        goodput_share=good / len(measured) if measured else 0.0,
        mean_prompt_tokens=float(np.mean(prompts)) if prompts else None,
        ttfat=ttfat,
        failures=failures,
        send=dist(np.array(sends)) if sends else None,
        estimated_counts=sum(1 for r in ok if r.prompt_tokens is None),  # usage carries both counts
        server_prefill=dist(np.array(prefill)) if prefill else None,
        server_tpot=dist(np.array(server_tpot)) if server_tpot else None,
        ttft_outside_prefill=dist(np.array(outside)) if outside else None,
        cancelled=len(cut_off),
    )


def server_summary(samples: list[MetricsSample]) -> dict[str, Any]:
    """What the server's own metrics said during a run: peaks of running and waiting
    requests and KV-cache use, preemptions counted over the run (counter delta), and the
    means of its TTFT, inter-token-latency and queue-time histograms over the run (vLLM, SGLang): the
    change in each histogram's sum over the change in its count, between the first sample
    (taken before the load) and the last (after it), so they include warm-up requests."""

    def peak(values: list[float | None]) -> float | None:
        seen = [v for v in values if v is not None]
        return max(seen) if seen else None

    def window_mean(sums: list[float | None], counts: list[float | None]) -> float | None:
        pairs = [(s, c) for s, c in zip(sums, counts, strict=True) if s is not None and c is not None]
        if len(pairs) < 2 or pairs[-1][1] <= pairs[0][1]:
            return None
        return (pairs[-1][0] - pairs[0][0]) / (pairs[-1][1] - pairs[0][1])

    pre = [s.preemptions for s in samples if s.preemptions is not None]
    ttft = window_mean([s.ttft_sum_s for s in samples], [s.ttft_count for s in samples])
    itl = window_mean([s.itl_sum_s for s in samples], [s.itl_count for s in samples])
    queue = window_mean([s.queue_sum_s for s in samples], [s.queue_count for s in samples])
    return {
        "samples": len(samples),
        "max_running": peak([s.running for s in samples]),
        "max_waiting": peak([s.waiting for s in samples]),
        "max_kv_usage": peak([s.kv_usage for s in samples]),
        "preemptions": (pre[-1] - pre[0]) if len(pre) >= 2 else None,
        "ttft_mean_ms": None if ttft is None else round(ttft * 1e3, 3),
        "itl_mean_ms": None if itl is None else round(itl * 1e3, 3),
        "queue_mean_ms": None if queue is None else round(queue * 1e3, 3),
    }
