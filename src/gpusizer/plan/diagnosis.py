"""The guide's operating rules applied to a live server's state (pure): latency spikes with a
queue but spare KV ⇒ compute-bound, add compute not VRAM; KV full with preemptions ⇒
memory-bound, more VRAM / FP8 KV / fewer sequences; idle batch slots ⇒ look at batching
and utilisation before buying anything. Inputs are plain numbers (from /metrics)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Diagnosis", "diagnose"]

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
