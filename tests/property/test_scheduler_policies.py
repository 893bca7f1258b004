"""Scheduler policies in the simulator. Prefix caching: shared system prompts are computed once, their blocks
held once, and nothing else about the run changes."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gpusizer.api import perf, simulate
from gpusizer.simulate.engine import EngineLimits, run_engine
from gpusizer.simulate.workload import LengthDist, Requests

MODEL, GPU = "deepseek-r1-distill-qwen-7b", "H100"


def _sim(caching: bool, prefix: int, groups: int = 1, rate: float = 2.0) -> object:
    res = simulate(
        MODEL,
        GPU,
        rates=(rate,),
        input_len=LengthDist(mean=2304),
        output_len=LengthDist(mean=64),
        requests=300,
        prefix_tokens=prefix,
        prefix_groups=groups,
        prefix_caching=caching,
    )
    return res.points[0].stats


def test_a_shared_system_prompt_cuts_ttft_to_the_uncached_part() -> None:
    off = _sim(False, 2048)
    on = _sim(True, 2048)
    assert on.completed == off.completed == 300  # type: ignore[attr-defined]
    # every request after the first skips the 2,048 cached tokens (128 blocks of 16)
    assert on.prefix_hit_tokens == 299 * 2048  # type: ignore[attr-defined]
    # at low load the TTFT is one prefill: of 256 new tokens over a 2,304-token context,
    # against 2,304 tokens without the cache. Check against the analytic model of each.
    tail = perf(MODEL, GPU, batches=(1,), input_len=256, output_len=64).rows[0].ttft_s
    full = perf(MODEL, GPU, batches=(1,), input_len=2304, output_len=64).rows[0].ttft_s
    assert on.ttft.p50 < off.ttft.p50  # type: ignore[attr-defined]
    assert abs(off.ttft.p50 - full) / full < 0.10  # type: ignore[attr-defined]
    assert tail * 0.9 < on.ttft.p50 < full * 0.6  # type: ignore[attr-defined]


def test_no_prefix_or_caching_off_changes_nothing() -> None:
    plain = _sim(True, 0)
    off = _sim(False, 2048)
    assert plain.ttft.p50 == off.ttft.p50 and plain.prefix_hit_tokens == 0  # type: ignore[attr-defined]


def test_many_groups_hit_less_than_one() -> None:
    one = _sim(True, 2048, groups=1)
    many = _sim(True, 2048, groups=100)
    assert many.prefix_hit_tokens < one.prefix_hit_tokens  # type: ignore[attr-defined]
    assert many.prefix_hit_tokens > 0  # type: ignore[attr-defined]


class _Flat:
    """A step model where a step costs its token count, for invariants on the scheduler."""

    attn_window = 0  # dense attention

    def seconds(
        self,
        tokens: int,
        seqs: int,
        decode_ctx: float,
        prefill_kv: float,
        prefill_work: float,
        chunks: int,
        window_ctx: float | None = None,
        window_work: float | None = None,
    ) -> float:
        return 1e-3 + 1e-5 * tokens


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(5, 60),
    prefix=st.integers(0, 600),
    groups=st.integers(1, 4),
    blocks=st.integers(40, 400),
    seed=st.integers(0, 1000),
)
# found by hypothesis: the last request fit the pool only once a cached prefix it did not use was
# evicted, and eviction had waited for its prompt alone to overflow the free blocks
@example(n=5, prefix=128, groups=3, blocks=40, seed=4)
def test_caching_never_loses_a_request_or_computes_more(
    n: int, prefix: int, groups: int, blocks: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    inp = rng.integers(prefix + 1, prefix + 300, size=n).astype(np.int64)
    out = rng.integers(1, 40, size=n).astype(np.int64)
    req = Requests(
        arrival_s=np.sort(rng.uniform(0, 1, size=n)),
        input_len=inp,
        output_len=out,
        prefix_id=rng.integers(0, groups, size=n).astype(np.int64),
        prefix_len=np.full(n, prefix, dtype=np.int64),
    )
    need = int(((inp + out) // 16 + 2).max())
    kv = max(blocks, need + prefix // 16 + 2)
    on = run_engine(
        _Flat(),
        req,
        EngineLimits(
            max_num_batched_tokens=512, max_num_seqs=16, block_size=16, kv_blocks=kv, prefix_caching=True
        ),
    )
    off = run_engine(
        _Flat(),
        req,
        EngineLimits(
            max_num_batched_tokens=512, max_num_seqs=16, block_size=16, kv_blocks=kv, prefix_caching=False
        ),
    )
    for tr in (on, off):
        assert not np.isnan(tr.finish_s).any()  # every request finishes
        assert (tr.output_tokens == out).all()  # with the tokens it asked for
        assert tr.step_kv_used.max() <= 1.0 + 1e-9
    # hits are counted per admission: at most each request's full cached blocks, again per preemption
    per_request = np.minimum((prefix // 16) * 16, ((inp - 1) // 16) * 16)
    assert on.prefix_hit_tokens <= int(per_request.sum()) + on.preemptions * (prefix // 16) * 16
    assert off.prefix_hit_tokens == 0
    # the cache only removes prefill work: total busy time never grows when preemptions don't
    if on.preemptions == off.preemptions == 0:
        assert on.step_dt_s.sum() <= off.step_dt_s.sum() + 1e-9


def _limits(kv: int, reserve: float) -> EngineLimits:
    return EngineLimits(
        max_num_batched_tokens=512,
        max_num_seqs=64,
        block_size=16,
        kv_blocks=kv,
        reserve_init=reserve,
        reserve_min=reserve * 0.14,
        reserve_decay_steps=600,
    )


def test_sglang_admission_reserve_trades_preemptions_for_queueing() -> None:
    # A pool too small for everyone's full output: vLLM-style greedy admission preempts,
    # SGLang's reserve admits fewer at a time and preempts less.
    rng = np.random.default_rng(7)
    n = 200
    req = Requests(
        arrival_s=np.sort(rng.uniform(0, 2, size=n)),
        input_len=rng.integers(100, 400, size=n).astype(np.int64),
        output_len=rng.integers(200, 600, size=n).astype(np.int64),
    )
    greedy = run_engine(_Flat(), req, _limits(400, 0.0))
    reserved = run_engine(_Flat(), req, _limits(400, 0.7))
    for tr in (greedy, reserved):
        assert not np.isnan(tr.finish_s).any() and (tr.output_tokens == req.output_len).all()
    assert greedy.preemptions > 0
    assert reserved.preemptions < greedy.preemptions
    assert reserved.step_running.mean() < greedy.step_running.mean()
