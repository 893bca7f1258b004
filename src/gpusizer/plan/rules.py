"""The guide's decision rules (shared/reference/guide.txt) as named, checkable findings.

Each rule looks at the evaluated candidates and returns a ``Finding``: its name, whether
the plan follows it, the evidence (numbers from this run), and one sentence for the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpusizer.plan.evaluate import Accepted, Rejected
from gpusizer.units import GIB

__all__ = ["Finding", "findings"]


@dataclass(frozen=True, kw_only=True)
class Finding:
    rule: str
    holds: bool
    evidence: str
    advice: str


def _budget_at_max(pick: Accepted) -> Finding:
    lim = pick.memory.limiting
    need = lim.weights_bytes + lim.kv_needed_bytes + lim.activation_bytes + lim.non_torch_bytes
    return Finding(
        rule="budget VRAM at maximum context × maximum concurrency",
        holds=True,
        evidence=(
            f"{pick.dep.users} users × {pick.dep.max_model_len:,} tokens: engine-accurate "
            f"{need / GIB:.1f} GiB per GPU vs the guide's rule of thumb "
            f"{pick.memory.rule_of_thumb_bytes / GIB:.1f} GiB"
        ),
        advice="every candidate was sized for all users at full context at once, not the average",
    )


def _awq_default(pick: Accepted, accepted: Sequence[Accepted], rejected: Sequence[Rejected] = ()) -> Finding:
    q = pick.dep.quant.fmt.key
    moe = pick.dep.model.moe is not None
    awq = [a for a in accepted if a.dep.quant.fmt.key == "awq"]
    holds = q == "awq" or not awq
    ev = f"chosen weights: {pick.dep.quant.label}"
    missed = [r for r in rejected if " awq" in r.label and r.stage == "slo" and "simulat" in r.reason]
    if q != "awq" and missed:
        ev += (
            f"; cheaper AWQ plans missed in simulation, e.g. {missed[0].label}: {missed[0].detail} "
            "(4-bit weights dequantize to 16-bit math, so prefill is slower than FP8 on FP8 tensor cores)"
        )
    elif awq and q != "awq":
        best = min(awq, key=lambda a: a.usd_per_hour)
        ev += (
            f"; cheapest AWQ plan: {best.dep.layout.gpus}× {best.dep.gpu.name} at ${best.usd_per_hour:.2f}/h"
        )
    advice = "4-bit AWQ is the production default" + (" (and AWQ over GPTQ for MoE models)" if moe else "")
    if q in ("bf16", "fp16", "fp8", "fp8-block"):
        advice += "; this plan keeps higher precision because it is cheaper or precision was asked for"
    return Finding(
        rule="4-bit AWQ as the default production quantization", holds=holds, evidence=ev, advice=advice
    )


def _ttft_compute(rejected: Sequence[Rejected]) -> Finding | None:
    slow = [r for r in rejected if r.stage == "slo" and r.reason.startswith("TTFT")]
    if not slow:
        return None
    return Finding(
        rule="TTFT over the threshold ⇒ add compute, not VRAM",
        holds=True,
        evidence=f"{len(slow)} candidates missed the TTFT target; e.g. {slow[0].label}: {slow[0].detail}",
        advice="prefill is compute-bound: more or faster GPUs (TFLOP/s) lower TTFT, more memory does not",
    )


def _link(pick: Accepted) -> Finding:
    dep = pick.dep
    if dep.layout.gpus == 1:
        return Finding(
            rule="multi-GPU only over NVLink or one PCIe switch",
            holds=True,
            evidence=(
                f"{pick.replicas} independent engines of one GPU each: no inter-GPU traffic"
                if pick.replicas > 1
                else "single GPU: no inter-GPU traffic"
            ),
            advice="nothing crosses the bus per token"
            + (" (a router splits the users)" if pick.replicas > 1 else ""),
        )
    if pick.placement is not None:
        link = pick.placement.link_name
        nvlink = not link.startswith("pcie") and not link.startswith("none")
        where = f" in {pick.placement.system.name}"
    else:
        link = dep.gpu.scale_up_link or "none"
        nvlink = link not in ("none", "")
        link = link if nvlink else str(dep.gpu.host_link)
        where = ""
    return Finding(
        rule="multi-GPU only over NVLink or one PCIe switch",
        holds=nvlink,
        evidence=f"{dep.layout.gpus}× {dep.gpu.name}{where}, TP {dep.layout.tp}: link {link}",
        advice=(
            "NVLink / Infinity Fabric carries the per-layer all-reduces"
            if nvlink
            else (
                "no PCIe peer-to-peer on these cards: every all-reduce is staged through host memory; "
                if link.endswith("no-p2p")
                else ""
            )
            + "PCIe only: keep the GPUs on x16 slots of one CPU or PCIe switch (not x4/x8 risers or across "
            "sockets); the simulated speed above already counts this link"
        ),
    )


def _one_big_gpu(pick: Accepted, accepted: Sequence[Accepted], rejected: Sequence[Rejected]) -> Finding:
    singles = [a for a in accepted if a.gpus == 1]
    if pick.gpus == 1:
        return Finding(
            rule="one high-VRAM GPU before a cluster",
            holds=True,
            evidence=f"the pick is one {pick.dep.gpu.name}",
            advice="simplest deployment",
        )
    if singles:
        best = min(singles, key=lambda a: a.usd_per_hour)
        return Finding(
            rule="one high-VRAM GPU before a cluster",
            holds=False,
            evidence=(
                f"single-GPU option: {best.dep.gpu.name} at ${best.usd_per_hour:.2f}/h vs "
                f"${pick.usd_per_hour:.2f}/h for the pick"
            ),
            advice="a single card avoids interconnect overhead; consider it if the price gap is small",
        )
    missed = [r for r in rejected if r.label.startswith("1× ") and r.reason.endswith("in simulation")]
    return Finding(
        rule="one high-VRAM GPU before a cluster",
        holds=True,
        evidence=(
            f"the best single card missed under load: {missed[0].label} — {missed[0].detail}"
            if missed
            else "no single GPU in the search meets memory and SLOs"
        ),
        advice="a multi-GPU deployment is required"
        + (" (replicas split the users' prefills, which queue on one card)" if missed else ""),
    )


def findings(
    pick: Accepted | None, accepted: Sequence[Accepted], rejected: Sequence[Rejected]
) -> list[Finding]:
    out: list[Finding] = []
    if pick is not None:
        out += [
            _budget_at_max(pick),
            _awq_default(pick, accepted, rejected),
            _link(pick),
            _one_big_gpu(pick, accepted, rejected),
        ]
    ttft = _ttft_compute(rejected)
    if ttft:
        out.append(ttft)
    return out
