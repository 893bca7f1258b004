"""Admission: which waiting requests join the running batch in a step.

Waiting requests are admitted first come, first served, each with its first prompt chunk
(after any prefix-cache hit), while the step's token budget (``max_num_batched_tokens``),
the sequence cap (``max_num_seqs``) and the free KV blocks allow; the first request that
does not fit stops admission for the step (no skipping ahead). When blocks are short,
unreferenced cached prefixes are evicted first; a request whose own prefix was evicted then
computes its whole prompt.

Admission reserve (SGLang's policy; vLLM has none): a request is admitted only if the free
blocks also cover ``ratio × min(remaining output, clip)`` tokens of every running request
(itself included once admitted). The ratio starts at ``reserve_init``, decays linearly to
``reserve_min`` over ``reserve_decay_steps`` steps, and jumps back to ``reserve_init``
whenever a request is preempted (SGLang calls it a retraction) — fewer preemptions, more
queueing. Pure: no I/O, clock or RNG.
"""

from __future__ import annotations

import math

import numpy as np

from gpusizer.simulate.batch import Batch
from gpusizer.simulate.prefix_cache import PrefixCache

__all__ = ["AdmissionReserve", "admit_waiting"]


class AdmissionReserve:
    """SGLang's admission reserve: the decaying ratio and the blocks it holds back (a ratio
    of 0, vLLM's case, holds back nothing)."""

    __slots__ = ("_block", "_clip", "_decay", "_floor", "_init", "ratio")

    def __init__(self, *, init: float, floor: float, decay_steps: int, clip: int, block: int) -> None:
        self._init = init
        self._floor = floor
        self._decay = (init - floor) / max(1, decay_steps)
        self._clip = clip
        self._block = block
        self.ratio = init

    def reset(self) -> None:
        """A request was preempted: back to the initial ratio."""
        self.ratio = self._init

    def decay(self) -> None:
        """One engine step ran: the ratio decays towards its floor."""
        self.ratio = max(self._floor, self.ratio - self._decay)

    def held(self, batch: Batch) -> float:
        """Blocks held back for the running requests' future tokens."""
        if self.ratio > 0 and batch.running:
            run_now = np.asarray(batch.running, dtype=np.int64)
            left = np.minimum(batch.out[run_now] - batch.generated[run_now], self._clip)
            return self.ratio * float(left.sum()) / self._block
        return 0.0

    def held_with(self, held: float, output_len: int) -> float:
        """``held`` plus the reserve of a newly admitted request of ``output_len`` tokens."""
        if self.ratio > 0:
            return held + self.ratio * min(output_len, self._clip) / self._block
        return held


def admit_waiting(
    batch: Batch,
    cache: PrefixCache,
    reserve: AdmissionReserve,
    chunks: list[tuple[int, int]],
    *,
    budget: int,
    max_seqs: int,
    step: int,
) -> int:
    """Admit waiting requests (FIFO) into ``batch`` for this step, appending each one's first
    prompt chunk (request, tokens) to ``chunks``; returns the token budget left."""
    b = batch.block
    inp = batch.inp
    waiting, running = batch.waiting, batch.running
    held = reserve.held(batch)
    while waiting and budget > 0 and len(running) < max_seqs:
        r = waiting[0]
        hit = cache.lookup(r, int(inp[r]))
        k = int(min(inp[r] - hit, budget))
        need_b = math.ceil(k / b)
        if need_b + held > batch.free_blocks:  # short of blocks: drop unused cached prefixes
            batch.free_blocks += cache.evict(math.ceil(need_b + held - batch.free_blocks), running)
            if hit and not cache.holds(r):  # its own prefix was evicted: compute it all
                hit = 0
                k = int(min(inp[r], budget))
                need_b = math.ceil(k / b)
                if need_b + held > batch.free_blocks:
                    batch.free_blocks += cache.evict(math.ceil(need_b + held - batch.free_blocks), running)
        if need_b + held > batch.free_blocks:
            break
        waiting.popleft()
        running.append(r)
        held = reserve.held_with(held, int(batch.out[r]))
        batch.prefilling.add(r)
        batch.done_prompt[r] = hit
        cache.admitted(r, hit, step)
        batch.blocks[r] = need_b
        batch.free_blocks -= need_b
        chunks.append((r, k))
        budget -= k
    return budget
