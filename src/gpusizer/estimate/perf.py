"""Latency and throughput by batch size, from the step-time model.

For each batch size B: TTFT is the prefill of one ``input_len`` prompt (in chunks of the
engine's token budget) on an otherwise idle engine; TPOT is one decode step of B sequences
at the mean context ``input_len + output_len / 2``. Tokens/s per user = 1 / TPOT; total
output tokens/s = B / TPOT. This is the analytic picture (no queueing): ``simulate`` adds
arrivals, continuous batching and a finite KV cache on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpusizer.catalog.specs import EfficiencyFactor, LinkSpec
from gpusizer.domain.scenario import Deployment
from gpusizer.estimate.roofline import Batch, Bound, Efficiency, StepTime, step_time

__all__ = ["PerfRow", "efficiency_for", "link_for", "node_link_for", "perf_rows"]


@dataclass(frozen=True, kw_only=True)
class PerfRow:
    batch: int
    ttft_s: float
    tpot_s: float
    prefill_tokens_per_s: float
    decode_tokens_per_s: float  # per sequence
    output_tokens_per_s: float  # all sequences
    bound: Bound
    reason: str
    decode_step: StepTime


def efficiency_for(
    factors: Sequence[EfficiencyFactor],
    engine: str,
    vendor: str,
    link: LinkSpec | None,
    *,
    gpu_class: str = "any",
    weight_format: str | None = None,
) -> tuple[Efficiency, str]:
    """The most specific factor row: engine × vendor × class (a row for the weight format
    before a general one), then wider, then the default."""
    order = [
        (engine, vendor, gpu_class),
        (engine, vendor, "any"),
        (engine, "any", "any"),
        ("default", vendor, "any"),
        ("default", "any", "any"),
    ]
    specific = [f for f in factors if f.weight_formats and weight_format in f.weight_formats]
    general = [f for f in factors if not f.weight_formats]
    for key in order:
        for f in (*specific, *general):
            if (f.engine, f.vendor, f.gpu_class) == key:
                eff = Efficiency(
                    bandwidth_fraction=f.bandwidth_fraction.value,
                    compute_fraction=f.compute_fraction.value,
                    step_overhead_s=f.step_overhead_s.value,
                    prefill_overhead_s=f.prefill_overhead_s.value if f.prefill_overhead_s else 0.0,
                    kv_bandwidth_fraction=f.kv_bandwidth_fraction.value if f.kv_bandwidth_fraction else None,
                    layer_overhead_s=f.layer_overhead_s.value if f.layer_overhead_s else 0.0,
                    moe_layer_overhead_s=f.moe_layer_overhead_s.value if f.moe_layer_overhead_s else 0.0,
                    sequence_layer_overhead_s=f.sequence_layer_overhead_s.value
                    if f.sequence_layer_overhead_s
                    else 0.0,
                    sequence_overhead_s=f.sequence_overhead_s.value if f.sequence_overhead_s else 0.0,
                    prefill_moe_layer_overhead_s=f.prefill_moe_layer_overhead_s.value
                    if f.prefill_moe_layer_overhead_s
                    else 0.0,
                    mla_layer_overhead_s=f.mla_layer_overhead_s.value if f.mla_layer_overhead_s else 0.0,
                    uncertainty=f.uncertainty,
                    link=link,
                )
                fmt = f"/{weight_format}" if f.weight_formats else ""
                return eff, f"{f.engine}/{f.vendor}/{f.gpu_class}{fmt}"
    raise LookupError("efficiency.yaml has no default row")


def link_for(dep: Deployment, links: dict[str, LinkSpec], override: str | None = None) -> LinkSpec | None:
    """The link TP/PP traffic crosses: NVLink/IF when the GPU has it, else its PCIe slot."""
    if dep.layout.gpus == 1:
        return None
    name = override
    if name is None:
        up = dep.gpu.scale_up_link
        if up and up != "none" and up in links and not (up == "nvlink-bridge" and dep.layout.gpus > 2):
            name = up
        else:
            name = dep.gpu.host_link if dep.gpu.host_link in links else "pcie4-x16"
    return links[name]


def node_link_for(dep: Deployment, links: dict[str, LinkSpec]) -> LinkSpec | None:
    """The network between nodes when the layout spans more than one (NDR on Hopper and
    Blackwell servers, HDR on Ampere, 100 GbE RoCE otherwise)."""
    if dep.layout.nodes <= 1:
        return None
    arch = dep.gpu.architecture.lower()
    name = (
        "infiniband-ndr"
        if arch in ("hopper", "blackwell")
        else "infiniband-hdr"
        if arch == "ampere"
        else "roce-100g"
    )
    return links.get(name)


def perf_rows(
    dep: Deployment,
    eff: Efficiency,
    *,
    input_len: int,
    output_len: int,
    batches: Sequence[int],
    chunk: int,
) -> list[PerfRow]:
    rows: list[PerfRow] = []
    # TTFT: the prompt in chunks of the engine's token budget, one sequence alone
    ttft = 0.0
    done = 0
    while done < input_len:
        n = min(chunk, input_len - done)
        ttft += step_time(dep, Batch(prefill=((n, done),)), eff).total_s
        done += n
    ctx = input_len + output_len // 2
    for b in batches:
        st = step_time(dep, Batch(decode=(ctx,) * b), eff)
        tpot = st.total_s
        rows.append(
            PerfRow(
                batch=b,
                ttft_s=ttft,
                tpot_s=tpot,
                prefill_tokens_per_s=input_len / ttft if ttft else 0.0,
                decode_tokens_per_s=1 / tpot,
                output_tokens_per_s=b / tpot,
                bound=st.bound,
                reason=st.reason,
                decode_step=st,
            )
        )
    return rows
