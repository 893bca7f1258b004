"""Recompute preemption (vLLM V1's policy; SGLang calls it a retraction).

Every running request that has finished its prompt decodes one token per step, and needs a
new KV block when its context crosses a block boundary. When those blocks are more than the
free ones — after the prefix cache evicted what it could — the most recently admitted
request is preempted: its blocks are freed, it stops reading any cached prefix, its progress
(prompt and output) is lost, and it re-queues at the front of the waiting queue, to be
recomputed from the start when it is admitted again. Repeated until the decodes fit or
nothing runs. Pure: no I/O, clock or RNG.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gpusizer.simulate.batch import Batch
from gpusizer.simulate.prefix_cache import PrefixCache

__all__ = ["fit_decodes", "new_blocks", "preempt_latest"]

IntArray = npt.NDArray[np.int64]


def preempt_latest(batch: Batch, cache: PrefixCache) -> None:
    """Preempt the most recently admitted running request (recompute)."""
    victim = batch.running.pop()
    batch.prefilling.discard(victim)
    batch.free_blocks += int(batch.blocks[victim])
    batch.blocks[victim] = 0
    cache.release(victim)
    batch.done_prompt[victim] = 0
    batch.generated[victim] = 0
    batch.credit[victim] = 0.0
    batch.first[victim] = np.nan
    batch.waiting.appendleft(victim)


def fit_decodes(batch: Batch, cache: PrefixCache, dec: IntArray) -> tuple[IntArray, IntArray, int]:
    """Make the KV blocks for one decode token of each of ``dec`` (the decoding requests)
    free: evict unreferenced cached prefixes, then preempt the latest admitted requests until
    the blocks fit. Returns the requests that still decode, their contexts before this
    token, and how many requests were preempted. Allocates nothing."""
    ctx = batch.inp[dec] + batch.generated[dec]
    need = int(new_blocks(batch, dec, ctx).sum())
    if need > batch.free_blocks:
        batch.free_blocks += cache.evict(need - batch.free_blocks, batch.running)
    preempted = 0
    while need > batch.free_blocks and batch.running:
        preempt_latest(batch, cache)
        preempted += 1
        dec = batch.decoders()
        ctx = batch.inp[dec] + batch.generated[dec]
        need = int(new_blocks(batch, dec, ctx).sum())
    return dec, ctx, preempted


def new_blocks(batch: Batch, dec: IntArray, ctx: IntArray) -> IntArray:
    """KV blocks each of ``dec`` (contexts ``ctx``) opens with the tokens it keeps this step."""
    b = batch.block
    if batch.accept == 1.0:
        one: IntArray = (ctx % b == 0).astype(np.int64)
        return one
    keep = batch.emissions(dec)
    opened: IntArray = (-(-(ctx + keep) // b) - (-(-ctx // b))).astype(np.int64)
    return opened
