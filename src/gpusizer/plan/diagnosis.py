"""The guide's operating rules applied to a live server's state (pure): latency spikes with a
queue but spare KV ⇒ compute-bound, add compute not VRAM; KV full with preemptions ⇒
memory-bound, more VRAM / FP8 KV / fewer sequences; idle batch slots ⇒ look at batching
and utilisation before buying anything. Inputs are plain numbers (from /metrics)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Diagnosis", "RunEvidence", "diagnose", "diagnose_runs"]

KV_FULL = 0.90  # share of KV blocks in use from which the cache is the constraint
KV_SPARE = 0.70  # below this, memory is not what holds requests back


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    rule: str
    verdict: str
    evidence: str


def diagnose(
    *,
    running: float | None,
    waiting: float | None,
    kv_usage: float | None,
    preemptions: float | None,
    ttft_s: float | None,
    itl_s: float | None,
    slo_ttft_s: float | None = None,
    slo_itl_s: float | None = None,
) -> list[Diagnosis]:
    out: list[Diagnosis] = []
    kv = kv_usage if kv_usage is not None else None
    if waiting and waiting > 0 and kv is not None and kv < KV_SPARE:
        out.append(
            Diagnosis(
                rule="queueing with spare KV ⇒ compute-bound: add compute (GPUs, faster link), not VRAM",
                verdict="compute-bound",
                evidence=f"{waiting:.0f} waiting, {running or 0:.0f} running, KV {kv:.0%} used",
            )
        )
    if kv is not None and kv >= KV_FULL:
        out.append(
            Diagnosis(
                rule="KV cache full ⇒ memory-bound: more VRAM per replica, FP8 KV, or a lower max_num_seqs",
                verdict="kv-bound",
                evidence=f"KV {kv:.0%} used"
                + (f", {preemptions:.0f} preemptions so far" if preemptions else ""),
            )
        )
    if (waiting or 0) == 0 and running is not None and running <= 1 and (kv is None or kv < 0.1):
        out.append(
            Diagnosis(
                rule="look at utilisation and batching before buying memory",
                verdict="underused",
                evidence=f"{running:.0f} running, nothing waiting"
                + (f", KV {kv:.0%}" if kv is not None else ""),
            )
        )
    if slo_ttft_s is not None and ttft_s is not None and ttft_s > slo_ttft_s:
        out.append(
            Diagnosis(
                rule="TTFT over the threshold ⇒ add compute (prefill is compute-bound), not VRAM",
                verdict="ttft-over",
                evidence=f"mean TTFT {ttft_s * 1e3:,.0f} ms > {slo_ttft_s * 1e3:,.0f} ms",
            )
        )
    if slo_itl_s is not None and itl_s is not None and itl_s > slo_itl_s:
        out.append(
            Diagnosis(
                rule="inter-token latency over target ⇒ decode is bandwidth-bound: fewer concurrent sequences per GPU, "
                "more GPUs/replicas, or lower-bit weights",
                verdict="itl-over",
                evidence=f"mean ITL {itl_s * 1e3:,.1f} ms > {slo_itl_s * 1e3:,.1f} ms",
            )
        )
    if not out:
        out.append(
            Diagnosis(
                rule="no rule fires",
                verdict="healthy",
                evidence=f"{running or 0:.0f} running, {waiting or 0:.0f} waiting"
                + (f", KV {kv:.0%}" if kv is not None else ""),
            )
        )
    return out


@dataclass(frozen=True, kw_only=True)
class RunEvidence:
    """What one stored bench point measured, client side and (when scraped) server side."""

    run_id: int
    concurrency: int | None
    rate: float | None
    completed: int
    failed: int
    failures: dict[str, int]
    requests_per_s: float
    output_tokens_per_s: float
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    tpot_p50_s: float | None
    tpot_p95_s: float | None
    max_running: float | None = None
    max_waiting: float | None = None
    max_kv_usage: float | None = None
    preemptions: float | None = None
    send_p50_s: float | None = None  # the bench client's own time before a request was on the wire
    e2e_p50_s: float | None = None
    server_ttft_mean_s: float | None = None  # the server's own histograms over the run (vLLM, SGLang)
    server_queue_mean_s: float | None = None
    status: str = "complete"  # running | complete | interrupted | failed | abandoned
    cancelled: int = 0  # requests cut off by an interrupt


QUEUE_TTFT_RATIO = 3.0  # p95 TTFT this many times p50: requests wait for a slot
KNEE_TPOT_GROWTH = 2.0  # TPOT grew this much with load...
KNEE_THROUGHPUT_GAIN = 1.2  # ...while throughput grew less than this: past the knee
RATE_SHORTFALL = 0.9  # achieved request rate below this share of the offered rate: saturated
FAILURE_SHARE = 0.01
QUEUE_SHARE = 0.5  # the server's own queue time is over half its TTFT...
QUEUE_MIN_S = 0.010  # ...and at least this long: the first token waits for a slot, not for prefill
CLIENT_SEND_SHARE = 0.2  # a request spent this share of its time in the client before it was sent...
CLIENT_SEND_MIN_S = 0.010  # ...and at least this long: the load generator limits the load
_CLIENT_SIDE = ("ConnectError", "ConnectTimeout", "PoolTimeout", "WriteTimeout")


def _name(e: RunEvidence) -> str:
    load = f"concurrency {e.concurrency}" if e.concurrency is not None else f"rate {e.rate:g}/s"
    return f"run {e.run_id} ({load})"


def _waiting(e: RunEvidence, n: str, kv: float | None, kv_text: str) -> list[Diagnosis]:
    """Requests waiting while KV is not full: the batch limit, compute, or replicas."""
    out: list[Diagnosis] = []
    if e.max_waiting and e.max_waiting > 0 and (kv is None or kv < KV_FULL):
        capped = (
            e.concurrency is not None and e.max_running is not None and e.max_running <= 0.5 * e.concurrency
        )
        if capped:
            out.append(
                Diagnosis(
                    rule="requests queue while the batch stays small and KV is not full ⇒ the engine's batch "
                    "limit (vLLM max_num_seqs, SGLang max_running_requests, llama.cpp --parallel) is too low: "
                    "raise it",
                    verdict="batch-capped",
                    evidence=f"{n}: at most {e.max_running:.0f} running of {e.concurrency} sent, "
                    f"{e.max_waiting:.0f} waiting, {kv_text}",
                )
            )
        elif kv is not None and kv < KV_SPARE:
            out.append(
                Diagnosis(
                    rule="queueing with spare KV ⇒ compute-bound: add compute (GPUs, replicas), not VRAM",
                    verdict="compute-bound",
                    evidence=f"{n}: up to {e.max_waiting:.0f} waiting and {e.max_running or 0:.0f} running, "
                    f"{kv_text}",
                )
            )
        else:
            out.append(
                Diagnosis(
                    rule="requests wait for a slot ⇒ more replicas, or a higher batch limit if KV allows",
                    verdict="queueing",
                    evidence=f"{n}: up to {e.max_waiting:.0f} waiting, {e.max_running or 0:.0f} running, "
                    f"{kv_text}",
                )
            )
    return out


def _load_findings(e: RunEvidence, n: str) -> list[Diagnosis]:
    """Queueing, a full KV cache, a wide TTFT spread, saturation and failures at one load point."""
    out: list[Diagnosis] = []
    kv = e.max_kv_usage
    kv_text = f"KV ≤ {kv:.0%}" if kv is not None else "KV use not exported"
    out.extend(_waiting(e, n, kv, kv_text))
    if (kv is not None and kv >= KV_FULL) or (e.preemptions or 0) > 0:
        out.append(
            Diagnosis(
                rule="KV cache full ⇒ memory-bound: more VRAM per replica, FP8 KV, or a lower max_num_seqs",
                verdict="kv-bound",
                evidence=(f"{n}: KV up to {kv:.0%}" if kv is not None else f"{n}: KV use not exported")
                + (f", {e.preemptions:.0f} preemptions during the run" if e.preemptions else ""),
            )
        )
    if (
        e.max_waiting is None
        and e.ttft_p50_s
        and e.ttft_p95_s
        and e.ttft_p95_s > QUEUE_TTFT_RATIO * e.ttft_p50_s
    ):
        out.append(
            Diagnosis(
                rule="p95 TTFT far above p50 ⇒ requests wait for a slot: more replicas or a higher batch limit",
                verdict="queueing",
                evidence=f"{n}: TTFT p95 {e.ttft_p95_s * 1e3:,.0f} ms vs p50 {e.ttft_p50_s * 1e3:,.0f} ms "
                "(the server exported no queue length)",
            )
        )
    if e.rate is not None and e.requests_per_s < RATE_SHORTFALL * e.rate and e.completed >= 10:
        out.append(
            Diagnosis(
                rule="the server completes fewer requests than arrive ⇒ saturated: the sustainable rate is "
                "what it achieved; add replicas for more",
                verdict="saturated",
                evidence=f"{n}: {e.requests_per_s:.2f} req/s completed of {e.rate:g} offered",
            )
        )
    total = e.completed + e.failed
    if total and e.failed / total > FAILURE_SHARE:
        causes = ", ".join(f"{k} × {v}" for k, v in sorted(e.failures.items(), key=lambda kv: -kv[1]))
        client = sum(v for k, v in e.failures.items() if k.startswith(_CLIENT_SIDE))
        out.append(
            Diagnosis(
                rule="connection-level failures ⇒ a client-side or network limit (connection pool, file "
                "descriptors, proxy), not the GPU"
                if client * 2 > e.failed
                else "requests failing ⇒ fix errors before reading latency (timeouts under load mean the "
                "server is past saturation)",
                verdict="client-limit" if client * 2 > e.failed else "failures",
                evidence=f"{n}: {e.failed} of {total} failed: {causes}",
            )
        )
    return out


def _latency_findings(
    e: RunEvidence, n: str, slo_ttft_s: float | None, slo_tpot_s: float | None
) -> list[Diagnosis]:
    """A slow load generator, time in the server's queue, and the latency targets missed at one
    load point."""
    out: list[Diagnosis] = []
    if e.send_p50_s is not None and e.e2e_p50_s and e.send_p50_s >= CLIENT_SEND_MIN_S:
        share = e.send_p50_s / (e.send_p50_s + e.e2e_p50_s)
        if share > CLIENT_SEND_SHARE:
            held = (
                f"; the server held about {e.concurrency * (1 - share):,.0f} of the {e.concurrency} "
                "requests asked"
                if e.concurrency
                else "; arrivals reached the server late"
            )
            out.append(
                Diagnosis(
                    rule="requests wait in the load generator before they are sent ⇒ the client, not the "
                    "server, limits this load: split it over processes or hosts, or lower the concurrency "
                    "per process (latencies are timed from the wire and stay valid)",
                    verdict="client-limit",
                    evidence=f"{n}: client send delay p50 {e.send_p50_s * 1e3:,.1f} ms, {share:.0%} of a "
                    f"request's time{held}",
                )
            )
    queued = (
        e.server_queue_mean_s / e.server_ttft_mean_s
        if e.server_queue_mean_s is not None and e.server_ttft_mean_s
        else None
    )
    if (
        queued is not None
        and e.server_queue_mean_s is not None
        and e.server_ttft_mean_s is not None
        and queued > QUEUE_SHARE
        and e.server_queue_mean_s >= QUEUE_MIN_S
    ):
        out.append(
            Diagnosis(
                rule="TTFT is mostly time in the server's queue ⇒ requests wait for a batch slot: more "
                "replicas, or a higher batch limit where KV allows; faster prefill alone will not fix it",
                verdict="queue-bound",
                evidence=f"{n}: by the server's own clock, {e.server_queue_mean_s * 1e3:,.0f} ms of its "
                f"{e.server_ttft_mean_s * 1e3:,.0f} ms mean TTFT was queueing ({queued:.0%})",
            )
        )
    if slo_ttft_s is not None and e.ttft_p95_s is not None and e.ttft_p95_s > slo_ttft_s:
        split = "" if queued is None else f"; {queued:.0%} of the server's TTFT was queueing"
        out.append(
            Diagnosis(
                rule="TTFT over the threshold ⇒ add compute (prefill is compute-bound), not VRAM",
                verdict="ttft-over",
                evidence=f"{n}: p95 TTFT {e.ttft_p95_s * 1e3:,.0f} ms > {slo_ttft_s * 1e3:,.0f} ms{split}",
            )
        )
    if slo_tpot_s is not None and e.tpot_p95_s is not None and e.tpot_p95_s > slo_tpot_s:
        out.append(
            Diagnosis(
                rule="time per token over target ⇒ decode is bandwidth-bound: fewer concurrent sequences "
                "per GPU, more replicas, or lower-bit weights",
                verdict="tpot-over",
                evidence=f"{n}: p95 TPOT {e.tpot_p95_s * 1e3:,.1f} ms > {slo_tpot_s * 1e3:,.1f} ms",
            )
        )
    return out


def diagnose_runs(
    runs: list[RunEvidence], *, slo_ttft_s: float | None = None, slo_tpot_s: float | None = None
) -> list[Diagnosis]:
    """The guide's operating rules over measured load points (one run or a sweep), each
    finding with its evidence and the action it recommends."""
    out: list[Diagnosis] = []
    for e in runs:
        n = _name(e)
        out.extend(_incomplete(e, n))
        out.extend(_load_findings(e, n))
        out.extend(_latency_findings(e, n, slo_ttft_s, slo_tpot_s))
    out.extend(_sweep_findings(runs))
    if not out:
        last = runs[-1] if runs else None
        out.append(
            Diagnosis(
                rule="no rule fires",
                verdict="healthy",
                evidence=f"{_name(last)}: {last.output_tokens_per_s:,.0f} output tokens/s, no queue, no failures"
                if last
                else "no runs",
            )
        )
    return out


_STATUS_RULES = {
    "abandoned": "the bench process died without closing the run (killed, crashed): its figures cover only "
    "the requests it stored and may miss the load's end; rerun the point before reading them as a measurement",
    "interrupted": "the run was interrupted: its figures cover only the requests finished before the stop; "
    "rerun the point for a full measurement",
    "failed": "the bench stopped on an error: its figures cover only the requests stored before it; fix the "
    "error and rerun",
    "running": "the run is still going (or its bench is unreachable from here): the figures are partial",
}


def _incomplete(e: RunEvidence, n: str) -> list[Diagnosis]:
    """A run that did not end as planned, or measured nothing, is never called healthy."""
    out = []
    if e.status != "complete":
        cut = f", {e.cancelled} cut off" if e.cancelled else ""
        out.append(
            Diagnosis(
                rule=_STATUS_RULES.get(e.status, f"the run ended as {e.status!r}: its figures are partial"),
                verdict=f"run-{e.status}",
                evidence=f"{n}: {e.status}, {e.completed} completed and {e.failed} failed requests stored{cut}",
            )
        )
    if e.completed == 0 and e.failed == 0:
        out.append(
            Diagnosis(
                rule="nothing was measured: no request completed or failed in this run",
                verdict="no-data",
                evidence=f"{n}: no measured request stored",
            )
        )
    return out


def _sweep_findings(runs: list[RunEvidence]) -> list[Diagnosis]:
    """Across a concurrency sweep: where more concurrency stops buying throughput."""
    pts = sorted(
        (e for e in runs if e.concurrency is not None and e.tpot_p50_s and e.output_tokens_per_s > 0),
        key=lambda e: e.concurrency or 0,
    )
    if len(pts) < 2:
        return []
    base = pts[0]
    assert base.tpot_p50_s is not None
    for e in pts[1:]:
        assert e.tpot_p50_s is not None
        tpot_growth = e.tpot_p50_s / base.tpot_p50_s
        gain = e.output_tokens_per_s / base.output_tokens_per_s
        if tpot_growth >= KNEE_TPOT_GROWTH and gain < KNEE_THROUGHPUT_GAIN:
            return [
                Diagnosis(
                    rule="batch too large: past the knee more concurrency buys latency, not throughput; cap "
                    f"concurrency near {base.concurrency} per replica and add replicas",
                    verdict="past-knee",
                    evidence=f"concurrency {base.concurrency} → {e.concurrency}: TPOT ×{tpot_growth:.1f}, "
                    f"throughput ×{gain:.2f}",
                )
            ]
        base = e
    last, first = pts[-1], pts[0]
    assert first.concurrency is not None and last.concurrency is not None
    gain = last.output_tokens_per_s / first.output_tokens_per_s
    if gain >= 0.7 * last.concurrency / first.concurrency and (last.max_waiting or 0) == 0:
        return [
            Diagnosis(
                rule="batch too small: throughput still grows almost linearly with concurrency, so the "
                "GPU has headroom; serve more users per replica before buying more",
                verdict="batch-small",
                evidence=f"concurrency {first.concurrency} → {last.concurrency}: throughput ×{gain:.1f}",
            )
        ]
    return []
