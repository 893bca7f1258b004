"""Latency and throughput by batch size, from the step-time model.

For each batch size B: TTFT is the prefill of one ``input_len`` prompt (in chunks of the
engine's token budget) on an otherwise idle engine; TPOT is one decode step of B sequences
at the mean context ``input_len + output_len / 2``. Tokens/s per user = 1 / TPOT; total
output tokens/s = B / TPOT.

The ``loaded`` figures are the same B sequences as B users in a closed loop (each sends its
next request when the last one finishes, as a benchmark client at ``--max-concurrency B``
does): a new prompt waits for the step in flight (half a decode step on average), then
runs its prefill — in chunks that share steps with the B − 1 decodes on engines that mix
them (vLLM, TensorRT-LLM), or in steps of its own that pause every decode (SGLang) — and
queues behind the other users' prefills (M/D/1). The decodes in turn slow by the time the
prefills take. The arrival rate that closes the loop, B / (TTFT + (output − 1) · TPOT), is
found by fixed-point iteration. ``simulate`` replaces these averages by the full
step-by-step run (arrivals, continuous batching, a finite KV cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gpusizer.catalog.specs import EfficiencyFactor, LinkSpec
from gpusizer.domain.scenario import Deployment
from gpusizer.engines import engine_spec
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
    ttft_loaded_s: float = 0.0  # B users in a closed loop: step in flight + prefill + queue
    tpot_loaded_s: float = 0.0  # decode steps slowed by the other users' prefills


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
                    moe_compute_fraction=f.moe_compute_fraction.value if f.moe_compute_fraction else None,
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
                    eager_layer_overhead_s=f.eager_layer_overhead_s.value
                    if f.eager_layer_overhead_s
                    else 0.0,
                    request_overhead_s=f.request_overhead_s.value if f.request_overhead_s else 0.0,
                    uncertainty=f.uncertainty,
                    moe_uncertainty=f.moe_uncertainty,
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


def _prefill_alone(dep: Deployment, eff: Efficiency, input_len: int, chunk: int) -> float:
    """The prompt in chunks of the engine's token budget, one sequence alone."""
    total, done = 0.0, 0
    while done < input_len:
        n = min(chunk, input_len - done)
        total += step_time(dep, Batch(prefill=((n, done),)), eff).total_s
        done += n
    return total


def _prefill_among(
    dep: Deployment, eff: Efficiency, input_len: int, chunk: int, decodes: tuple[int, ...], decode_s: float
) -> tuple[float, float]:
    """(latency of a prompt's prefill, time it adds to the engine) with ``decodes`` running
    and sharing each chunk's step (the token budget left after the decodes)."""
    room = max(1, chunk - len(decodes))
    latency = extra = 0.0
    done = 0
    while done < input_len:
        n = min(room, input_len - done)
        t = step_time(dep, Batch(prefill=((n, done),), decode=decodes), eff).total_s
        latency += t
        extra += max(0.0, t - decode_s)
        done += n
    return latency, extra


def _closed_loop(
    prefill_s: float, prefill_extra_s: float, decode_s: float, users: int, output_len: int
) -> tuple[float, float]:
    """(TTFT, TPOT) of ``users`` closed-loop users at the fixed point of their arrival rate."""
    tpot = decode_s
    ttft = decode_s / 2 + prefill_s
    for _ in range(50):
        rate = users / max(1e-12, ttft + max(0, output_len - 1) * tpot)
        busy = min(0.95, rate * prefill_extra_s)  # fraction of time spent on prefill work
        queue = busy * prefill_extra_s / (2 * (1 - busy))  # M/D/1 wait behind other prefills
        new_ttft = decode_s / 2 + prefill_s + queue
        new_tpot = decode_s / (1 - busy)
        if abs(new_ttft - ttft) < 1e-9 and abs(new_tpot - tpot) < 1e-9:
            break
        ttft, tpot = (ttft + new_ttft) / 2, (tpot + new_tpot) / 2  # damped: the map can oscillate
    return ttft, tpot


def perf_rows(
    dep: Deployment,
    eff: Efficiency,
    *,
    input_len: int,
    output_len: int,
    batches: Sequence[int],
    chunk: int,
    mixed_prefill: bool | None = None,
) -> list[PerfRow]:
    """``mixed_prefill``: prompt chunks share steps with decodes (False: SGLang's
    prefill-only steps, which pause the decodes); None: as the deployment's engine does."""
    if mixed_prefill is None:
        mixed_prefill = engine_spec(dep.engine).mixed_prefill
    rows: list[PerfRow] = []
    alone = _prefill_alone(dep, eff, input_len, chunk)
    ttft = alone + eff.request_overhead_s  # the API server's share: every TTFT pays it, no step does
    ctx = input_len + output_len // 2
    for b in batches:
        st = step_time(dep, Batch(decode=(ctx,) * b), eff)
        tpot = st.total_s / (dep.spec_accept if dep.spec_tokens else 1.0)  # tokens kept per step
        if mixed_prefill and b > 1:
            others = step_time(dep, Batch(decode=(ctx,) * (b - 1)), eff).total_s
            pre, extra = _prefill_among(dep, eff, input_len, chunk, (ctx,) * (b - 1), others)
            pre += eff.request_overhead_s
        else:
            pre, extra = ttft, alone
        ttft_loaded, tpot_loaded = _closed_loop(pre, extra, tpot, b, output_len)
        rows.append(
            PerfRow(
                batch=b,
                ttft_s=ttft,
                tpot_s=tpot,
                prefill_tokens_per_s=input_len / alone if alone else 0.0,
                decode_tokens_per_s=1 / tpot,
                output_tokens_per_s=b / tpot,
                bound=st.bound,
                reason=st.reason,
                decode_step=st,
                ttft_loaded_s=ttft_loaded,
                tpot_loaded_s=tpot_loaded,
            )
        )
    return rows
