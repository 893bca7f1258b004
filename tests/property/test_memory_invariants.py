"""Invariants of the memory model, checked over generated architectures and settings."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gpusizer.api import engine_numbers
from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.catalog.load import quant_catalogue
from gpusizer.catalog.resolve import resolve_quant
from gpusizer.catalog.specs import GpuSpec
from gpusizer.domain.quant import apply_quant
from gpusizer.domain.scenario import Deployment
from gpusizer.domain.topology import Layout
from gpusizer.estimate.memory import estimate_memory
from gpusizer.units import GIB

ENGINES = ("vllm", "sglang", "tensorrt-llm", "llamacpp", "transformers")


@st.composite
def archs(draw: st.DrawFn) -> dict[str, Any]:
    heads = draw(st.sampled_from([8, 16, 32, 64]))
    kv = draw(st.sampled_from([h for h in (1, 2, 4, 8, 16, 32, 64) if heads % h == 0 and h <= heads]))
    head_dim = draw(st.sampled_from([64, 128]))
    return dict(
        model_type="llama",
        hidden_size=heads * head_dim,
        num_hidden_layers=draw(st.integers(2, 48)),
        num_attention_heads=heads,
        num_key_value_heads=kv,
        intermediate_size=draw(st.integers(1, 8)) * 1024,
        vocab_size=draw(st.sampled_from([32000, 128256, 152064])),
        max_position_embeddings=131072,
        tie_word_embeddings=draw(st.booleans()),
    )


def gpu(mem_gib: float) -> GpuSpec:
    return GpuSpec(
        key="test",
        name="test GPU",
        vendor="nvidia",
        gpu_class="datacenter",
        architecture="hopper",
        compute_capability="9.0",
        memory_bytes=int(mem_gib * GIB),
        memory_visible_bytes=int(mem_gib * GIB),
        memory_bandwidth_bps=3e12,
        source="test",
    )


def deployment(
    cfg: dict[str, Any],
    *,
    mem: float,
    users: int,
    ctx: int,
    engine: str = "vllm",
    quant: str = "bf16",
    tp: int = 1,
    pinned: bool = False,
) -> Deployment:
    """``pinned`` fixes the engine settings that engines otherwise pick by GPU size: vLLM's
    token budget jumps at 70 GiB and SGLang's mem_fraction_static falls at its 20/35/60 GiB
    tiers, so with defaults a slightly bigger GPU can hold fewer tokens (real behaviour)."""
    return Deployment(
        model=arch_from_hf_config(cfg),
        quant=apply_quant(resolve_quant(quant, quant_catalogue())),
        gpu=gpu(mem),
        layout=Layout(tp=tp),
        engine=engine,  # type: ignore[arg-type]
        max_model_len=ctx,
        users=users,
        engine_numbers=engine_numbers(engine),
        gpu_memory_utilization=0.9 if pinned else None,
        max_num_batched_tokens=2048 if pinned else None,
        max_num_seqs=256 if pinned else None,
    )


common = dict(
    cfg=archs(),
    mem=st.floats(8, 200),
    users=st.integers(1, 64),
    ctx=st.integers(256, 65536),
    engine=st.sampled_from(ENGINES),
)


@settings(max_examples=60, deadline=None)
@given(**common, extra=st.integers(1, 32))
def test_more_users_never_need_less_memory(cfg, mem, users, ctx, engine, extra) -> None:  # type: ignore[no-untyped-def]
    a = estimate_memory(deployment(cfg, mem=mem, users=users, ctx=ctx, engine=engine))
    b = estimate_memory(deployment(cfg, mem=mem, users=users + extra, ctx=ctx, engine=engine))
    assert b.limiting.kv_needed_bytes >= a.limiting.kv_needed_bytes
    assert not (b.fits and not a.fits)


@settings(max_examples=60, deadline=None)
@given(**common, more=st.floats(1, 100))
def test_more_memory_never_holds_fewer_tokens(cfg, mem, users, ctx, engine, more) -> None:  # type: ignore[no-untyped-def]
    a = estimate_memory(deployment(cfg, mem=mem, users=users, ctx=ctx, engine=engine, pinned=True))
    b = estimate_memory(deployment(cfg, mem=mem + more, users=users, ctx=ctx, engine=engine, pinned=True))
    assert b.max_concurrency >= a.max_concurrency
    assert b.kv_cache_tokens >= a.kv_cache_tokens
    assert not (a.fits and not b.fits)


@settings(max_examples=60, deadline=None)
@given(**common)
def test_a_plan_that_fits_has_room(cfg, mem, users, ctx, engine) -> None:  # type: ignore[no-untyped-def]
    est = estimate_memory(deployment(cfg, mem=mem, users=users, ctx=ctx, engine=engine))
    if est.fits:
        for r in est.ranks:
            assert r.free_bytes >= 0
            assert r.kv_needed_bytes <= r.kv_pool_bytes + 1
        assert est.max_concurrency >= users
        assert est.max_context_at_users >= min(ctx, 131072) - est.settings.block_size


@settings(max_examples=60, deadline=None)
@given(**common, longer=st.integers(1, 65536))
def test_longer_context_never_raises_concurrency(cfg, mem, users, ctx, engine, longer) -> None:  # type: ignore[no-untyped-def]
    a = estimate_memory(deployment(cfg, mem=mem, users=users, ctx=ctx, engine=engine))
    b = estimate_memory(deployment(cfg, mem=mem, users=users, ctx=ctx + longer, engine=engine))
    assert b.max_concurrency <= a.max_concurrency + 1e-9


@settings(max_examples=40, deadline=None)
@given(cfg=archs())
def test_fewer_bits_never_weigh_more(cfg) -> None:  # type: ignore[no-untyped-def]
    # Orders that hold whatever the shape (AWQ vs a GGUF mix depends on the embedding share).
    for order in (["fp32", "bf16", "fp8", "awq"], ["q8_0", "q6_k", "q4_k_m", "q2_k", "iq1_s"]):
        weights = []
        for q in order:
            eng = "llamacpp" if q.startswith(("q", "i")) or q == "fp32" else "vllm"
            d = deployment(cfg, mem=80, users=1, ctx=4096, engine=eng, quant=q)
            weights.append(estimate_memory(d).total_weight_bytes)
        assert weights == sorted(weights, reverse=True)


@settings(max_examples=40, deadline=None)
@given(cfg=archs(), tp=st.sampled_from([2, 4, 8]))
def test_tensor_parallel_shards_weights(cfg, tp) -> None:  # type: ignore[no-untyped-def]
    if cfg["num_attention_heads"] % tp:
        return
    if cfg["num_key_value_heads"] < tp and tp % cfg["num_key_value_heads"]:
        return
    one = estimate_memory(deployment(cfg, mem=80, users=1, ctx=4096))
    many = estimate_memory(deployment(cfg, mem=80, users=1, ctx=4096, tp=tp))
    assert many.limiting.weights_bytes < one.limiting.weights_bytes
    assert many.limiting.weights_bytes * tp >= one.limiting.weights_bytes  # replication only adds
