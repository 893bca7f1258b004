"""The simulator's scheduling policies on their own: admission (FIFO, the SGLang reserve),
recompute preemption and the prefix cache (hits, hand-over, LRU eviction)."""

from __future__ import annotations

import numpy as np
import pytest

from gpusizer.simulate.admission import AdmissionReserve, admit_waiting
from gpusizer.simulate.batch import Batch
from gpusizer.simulate.preemption import fit_decodes, preempt_latest
from gpusizer.simulate.prefix_cache import PrefixCache
from gpusizer.simulate.workload import Requests


def _req(
    inp: list[int], out: list[int], pid: list[int] | None = None, plen: list[int] | None = None
) -> Requests:
    return Requests(
        arrival_s=np.zeros(len(inp)),
        input_len=np.asarray(inp, dtype=np.int64),
        output_len=np.asarray(out, dtype=np.int64),
        prefix_id=None if pid is None else np.asarray(pid, dtype=np.int64),
        prefix_len=None if plen is None else np.asarray(plen, dtype=np.int64),
    )


def _no_reserve(block: int) -> AdmissionReserve:
    return AdmissionReserve(init=0.0, floor=0.0, decay_steps=600, clip=4096, block=block)


def test_admission_is_fifo_and_stops_at_the_first_request_that_does_not_fit() -> None:
    req = _req([64, 200, 16], [8, 8, 8])
    batch = Batch(req, kv_blocks=10, block=16)  # 4 + 13 blocks do not fit; 4 + 1 would
    batch.waiting.extend([0, 1, 2])
    cache = PrefixCache(req, 16, enabled=False)
    chunks: list[tuple[int, int]] = []
    left = admit_waiting(batch, cache, _no_reserve(16), chunks, budget=1000, max_seqs=8, step=0)
    assert chunks == [(0, 64)] and left == 1000 - 64
    assert batch.running == [0] and list(batch.waiting) == [1, 2]
    assert batch.free_blocks == 10 - 4 and batch.blocks[0] == 4


def test_admission_respects_the_token_budget_and_sequence_cap() -> None:
    req = _req([100, 100, 100], [8, 8, 8])
    batch = Batch(req, kv_blocks=1000, block=16)
    batch.waiting.extend([0, 1, 2])
    chunks: list[tuple[int, int]] = []
    cache = PrefixCache(req, 16, enabled=False)
    left = admit_waiting(batch, cache, _no_reserve(16), chunks, budget=150, max_seqs=8, step=0)
    assert chunks == [(0, 100), (1, 50)] and left == 0  # a chunked second prompt, then no budget
    batch2 = Batch(req, kv_blocks=1000, block=16)
    batch2.waiting.extend([0, 1, 2])
    admit_waiting(batch2, cache, _no_reserve(16), [], budget=1000, max_seqs=2, step=0)
    assert batch2.running == [0, 1]


def test_reserve_decays_to_its_floor_and_resets_on_preemption() -> None:
    r = AdmissionReserve(init=0.7, floor=0.1, decay_steps=3, clip=4096, block=16)
    for _ in range(10):
        r.decay()
    assert r.ratio == pytest.approx(0.1)
    r.reset()
    assert r.ratio == 0.7


def test_reserve_holds_blocks_for_running_requests_output() -> None:
    req = _req([16, 16], [320, 10_000])
    batch = Batch(req, kv_blocks=1000, block=16)
    batch.running.extend([0, 1])
    r = AdmissionReserve(init=0.5, floor=0.5, decay_steps=1, clip=4096, block=16)
    assert r.held(batch) == pytest.approx(0.5 * (320 + 4096) / 16)  # output clipped at 4,096
    assert r.held_with(1.0, 32) == pytest.approx(1.0 + 0.5 * 32 / 16)
    assert _no_reserve(16).held(batch) == 0.0


def test_preemption_frees_the_latest_request_and_requeues_it_first() -> None:
    req = _req([32, 32], [64, 64])
    batch = Batch(req, kv_blocks=4, block=16)
    cache = PrefixCache(req, 16, enabled=False)
    for r in (0, 1):  # both past their prompt, 2 blocks each, contexts on a block boundary
        batch.running.append(r)
        batch.done_prompt[r] = 32
        batch.blocks[r] = 2
        batch.first[r] = 1.0
    batch.free_blocks = 0
    batch.waiting.append(9)
    dec, ctx, preempted = fit_decodes(batch, cache, batch.decoders())
    assert preempted == 1 and dec.tolist() == [0] and ctx.tolist() == [32]
    assert batch.running == [0] and list(batch.waiting) == [1, 9]
    assert batch.free_blocks == 2 and batch.blocks[1] == 0 and np.isnan(batch.first[1])
    preempt_latest(batch, cache)
    assert batch.running == [] and list(batch.waiting) == [0, 1, 9] and batch.free_blocks == 4


def test_prefix_cache_hits_after_the_first_request_hands_its_blocks_over() -> None:
    req = _req([100, 100, 32], [4, 4, 4], pid=[0, 0, 0], plen=[40, 40, 32])
    cache = PrefixCache(req, 16, enabled=True)
    assert cache.lookup(0, 100) == 0  # nothing cached yet
    assert cache.adopt(0, 100, step=0) == 2  # 2 full blocks of the 40-token prefix
    assert cache.lookup(1, 100) == 32 and cache.held_blocks(0) == 2
    assert cache.lookup(2, 32) == 16  # a whole-prompt prefix: at least one token is left to compute
    cache.admitted(1, 32, step=1)
    assert cache.hit_tokens == 32 and cache.adopt(1, 100, step=1) == 0  # held once
    off = PrefixCache(req, 16, enabled=False)
    assert off.adopt(0, 100, step=0) == 0 and off.lookup(1, 100) == 0


def test_eviction_drops_least_recently_used_unreferenced_prefixes() -> None:
    req = _req([100] * 3, [4] * 3, pid=[0, 1, 2], plen=[32, 32, 32])
    cache = PrefixCache(req, 16, enabled=True)
    for r, step in ((0, 5), (1, 3), (2, 9)):
        cache.adopt(r, 100, step=step)
    # group 1 is the oldest but request 1 still reads it: group 0 goes first, then 2
    assert cache.evict(1, running=[1]) == 2
    assert not cache.holds(0) and cache.holds(1) and cache.holds(2)
    assert cache.evict(10, running=[1]) == 2 and cache.holds(1) and not cache.holds(2)
    cache.release(1)
    assert cache.evict(10, running=[1]) == 2 and cache.evict(10, running=[]) == 0
