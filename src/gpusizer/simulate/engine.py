"""Continuous batching, step by step (vLLM V1 semantics by default).

Each step the scheduler, under a token budget (``max_num_batched_tokens``) and a sequence
cap (``max_num_seqs``):

1. gives every running request that has finished its prompt one decode token, allocating a
   new KV block when its context crosses a block boundary — if blocks run out it preempts
   the most recently admitted request (recompute: its blocks are freed and it re-queues at
   the front with its progress lost; ``preemption``);
2. continues chunked prefills of running requests, oldest first;
3. admits waiting requests (FIFO) while the budget, the sequence cap and free blocks allow,
   with their first prompt chunk — on SGLang only if the free blocks also cover its
   admission reserve (``admission``).

Prefix caching (``prefix_cache``): requests that share a prompt prefix skip the full blocks
of it that an earlier request computed, the cache holds those blocks once, and when blocks
run short the least recently used unreferenced prefixes are evicted before anything is
preempted. SGLang (``mixed_prefill`` off) runs a prefill-only step whenever a prefill batch
can be formed; the decodes wait for it.

The step lasts ``StepModel.seconds(...)`` for exactly that batch. A request's first token
comes at the end of the step that completes its prompt; it finishes when it has its output
tokens. The per-request state lives in ``batch.Batch``; this module is the loop that
composes the policies, the arrivals (open or closed loop) and the step records.
Deterministic: no clock, no global RNG, no I/O; callable any number of times.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from gpusizer.estimate.roofline import StepModel, window_pairs
from gpusizer.simulate.admission import AdmissionReserve, admit_waiting
from gpusizer.simulate.batch import Batch
from gpusizer.simulate.preemption import fit_decodes, new_blocks
from gpusizer.simulate.prefix_cache import PrefixCache
from gpusizer.simulate.workload import Requests

__all__ = ["MAX_STEPS", "EngineLimits", "SimTrace", "StopReason", "run_engine"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# A run stops after this many engine steps even if requests remain (a bound on run time:
# ~5 M steps is minutes of CPU). Requests unfinished then are reported, never silently lost.
MAX_STEPS = 5_000_000
# Why a run ended with requests unfinished: the step limit, or a request whose first
# prompt chunk needs more KV blocks than the whole pool holds (it can never be admitted).
StopReason = Literal["max_steps", "kv_pool_too_small"]


@dataclass(frozen=True, kw_only=True)
class EngineLimits:
    max_num_batched_tokens: int
    max_num_seqs: int
    block_size: int
    kv_blocks: int  # KV pool size in blocks (from the memory estimate)
    prefix_caching: bool = False
    reserve_init: float = 0.0
    reserve_min: float = 0.0
    reserve_decay_steps: int = 600
    reserve_clip: int = 4096
    # vLLM V1 mixes prefill chunks and decodes in one step; SGLang (enable_mixed_chunk off by
    # default) runs a prefill batch whenever one can be formed and the decodes wait for it.
    mixed_prefill: bool = True
    # speculative decoding: drafted tokens each decode verifies (they take token budget) and
    # the mean tokens it keeps per step (Deployment.spec_tokens / spec_accept)
    spec_tokens: int = 0
    accept_length: float = 1.0


@dataclass(frozen=True, kw_only=True)
class SimTrace:
    """Per-request and per-step records of one run (seconds)."""

    arrival_s: FloatArray
    first_token_s: FloatArray
    finish_s: FloatArray
    output_tokens: npt.NDArray[np.int64]
    step_end_s: FloatArray  # end time of each step
    step_dt_s: FloatArray  # duration of each step
    step_decoding: npt.NDArray[np.int64]  # sequences that emitted a token in the step
    step_running: npt.NDArray[np.int64]
    step_waiting: npt.NDArray[np.int64]
    step_kv_used: FloatArray  # share of KV blocks in use
    preemptions: int
    prefix_hit_tokens: int = 0  # prompt tokens served from the prefix cache (admissions)
    stopped: StopReason | None = None  # set when the run ended before every request finished
    steps: int = 0  # engine steps run

    @property
    def unfinished(self) -> int:
        """Requests without a finish time (counted as missed by goodput)."""
        return int(np.count_nonzero(np.isnan(self.finish_s)))


class _Arrivals:
    """When requests reach the waiting queue. Open loop: at their own arrival times, in
    order. Closed loop: ``closed_users`` requests at t = 0, then each finished request issues
    the next one, a think time later (``arrival_s`` records those times)."""

    __slots__ = ("_closed", "_n", "_next", "_order", "_pending", "_think", "arrival_s", "issued")

    def __init__(self, arrival_s: FloatArray, closed_users: int | None, think_time_s: float) -> None:
        n = len(arrival_s)
        self._n = n
        self._closed = closed_users is not None
        self._think = think_time_s
        self.arrival_s = arrival_s.copy()
        if closed_users is not None:  # the first wave arrives at t = 0, the rest on completions
            self.arrival_s[:] = np.inf
            self.arrival_s[: min(closed_users, n)] = 0.0
        self._next = 0  # open loop: index of the next request to arrive (arrivals sorted)
        self._order = np.argsort(self.arrival_s, kind="stable") if closed_users is None else np.arange(n)
        self.issued = min(closed_users, n) if closed_users is not None else n
        # closed loop: (arrival time, request) of requests issued but not yet arrived
        self._pending: list[tuple[float, int]] = (
            [(0.0, i) for i in range(self.issued)] if closed_users else []
        )

    def arrive(self, t: float, waiting: deque[int]) -> None:
        """Queue every request that has arrived by ``t``."""
        if not self._closed:
            arrival, order, n = self.arrival_s, self._order, self._n
            while self._next < n and arrival[order[self._next]] <= t:
                waiting.append(int(order[self._next]))
                self._next += 1
        elif self._pending:
            pending = self._pending
            pending.sort()
            while pending and pending[0][0] <= t:
                waiting.append(pending.pop(0)[1])

    def next_time(self) -> float | None:
        """The next arrival time (None: no request will arrive any more)."""
        if not self._closed:
            return float(self.arrival_s[self._order[self._next]]) if self._next < self._n else None
        return float(min(p[0] for p in self._pending)) if self._pending else None

    def finished(self, count: int, t: float) -> None:
        """``count`` requests finished at ``t`` (closed loop: their users send the next ones)."""
        if not self._closed:
            return
        for _ in range(count):
            if self.issued >= self._n:
                break
            self._pending.append((t + self._think, self.issued))
            self.arrival_s[self.issued] = t + self._think
            self.issued += 1


class _StepLog:
    """The per-step records of a run."""

    __slots__ = ("decoding", "dt", "end", "kv_used", "running", "waiting")

    def __init__(self) -> None:
        self.end: list[float] = []
        self.dt: list[float] = []
        self.decoding: list[int] = []
        self.running: list[int] = []
        self.waiting: list[int] = []
        self.kv_used: list[float] = []

    def record(self, t: float, dt: float, decoding: int, batch: Batch, kv_blocks: int) -> None:
        self.end.append(t)
        self.dt.append(dt)
        self.decoding.append(decoding)
        self.running.append(len(batch.running))
        self.waiting.append(len(batch.waiting))
        self.kv_used.append(1 - batch.free_blocks / kv_blocks if kv_blocks else 1.0)

    def trace(
        self,
        arrival_s: FloatArray,
        batch: Batch,
        cache: PrefixCache,
        *,
        preemptions: int,
        stopped: StopReason | None,
        steps: int,
    ) -> SimTrace:
        """The run's trace: its requests' times and tokens, and these step records."""
        return SimTrace(
            arrival_s=arrival_s,
            first_token_s=batch.first,
            finish_s=batch.finish,
            output_tokens=np.minimum(batch.generated, batch.out),
            step_end_s=np.asarray(self.end),
            step_dt_s=np.asarray(self.dt),
            step_decoding=np.asarray(self.decoding, dtype=np.int64),
            step_running=np.asarray(self.running, dtype=np.int64),
            step_waiting=np.asarray(self.waiting, dtype=np.int64),
            step_kv_used=np.asarray(self.kv_used),
            preemptions=preemptions,
            prefix_hit_tokens=cache.hit_tokens,
            stopped=stopped,
            steps=steps,
        )


def _admission_reserve(limits: EngineLimits) -> AdmissionReserve:
    """The admission reserve ``limits`` configure (none, a ratio of 0, unless SGLang's)."""
    return AdmissionReserve(
        init=limits.reserve_init,
        floor=limits.reserve_min,
        decay_steps=limits.reserve_decay_steps,
        clip=limits.reserve_clip,
        block=limits.block_size,
    )


def _decode_phase(
    batch: Batch, cache: PrefixCache, *, skip: bool, window: int = 0
) -> tuple[IntArray, int, int, int]:
    """1. One decode token (with speculative decoding, the tokens it keeps) for every running
    request past its prompt (none if ``skip``), with block growth and, when blocks run out,
    preemption. Returns the decoding requests, their summed context, that sum with each
    context capped at ``window`` (sparse attention; 0: uncapped) and the number of requests
    preempted."""
    dec = batch.decoders()
    if skip or not len(dec):
        return dec[:0], 0, 0, 0
    dec, ctx, preempted = fit_decodes(batch, cache, dec)
    if not len(dec):
        return dec, 0, 0, preempted
    grow = new_blocks(batch, dec, ctx)
    batch.blocks[dec] += grow
    batch.free_blocks -= int(grow.sum())
    total = int(np.sum(ctx))
    return dec, total, int(np.minimum(ctx, window).sum()) if window else total, preempted


def _continue_prefills(batch: Batch, cache: PrefixCache, chunks: list[tuple[int, int]], budget: int) -> int:
    """2. The next prompt chunk of each running request in prefill, oldest first, while the
    token budget and the free blocks allow; returns the budget left."""
    b = batch.block
    inp, done_prompt, blocks = batch.inp, batch.done_prompt, batch.blocks
    prefilling = batch.prefilling
    for r in [x for x in batch.running if x in prefilling]:
        if budget <= 0:
            break
        if done_prompt[r] < inp[r]:
            k = int(min(inp[r] - done_prompt[r], budget))
            need_b = math.ceil((done_prompt[r] + k) / b) - cache.held_blocks(r) - int(blocks[r])
            if need_b > batch.free_blocks:
                batch.free_blocks += cache.evict(need_b - batch.free_blocks, batch.running)
            if need_b > batch.free_blocks:
                continue
            blocks[r] += need_b
            batch.free_blocks -= need_b
            chunks.append((r, k))
            budget -= k
    return budget


def _step_seconds(
    model: StepModel,
    batch: Batch,
    n_dec: int,
    decode_ctx: float,
    chunks: list[tuple[int, int]],
    window_ctx: float,
) -> float:
    """The duration of the step: its decodes and prompt chunks, through the step model."""
    done_prompt = batch.done_prompt
    prefill_tokens = sum(k for _, k in chunks)
    prefill_kv = float(sum(done_prompt[r] + k for r, k in chunks))
    prefill_work = float(sum(k * (done_prompt[r] + (k + 1) / 2) for r, k in chunks))
    win = model.attn_window
    return model.seconds(
        n_dec + prefill_tokens,
        n_dec + len(chunks),
        decode_ctx,
        prefill_kv,
        prefill_work,
        len(chunks),
        window_ctx if win else None,
        float(sum(window_pairs(k, int(done_prompt[r]), win) for r, k in chunks)) if win else None,
    )


def _apply_step(
    batch: Batch,
    cache: PrefixCache,
    dec: IntArray,
    chunks: list[tuple[int, int]],
    t: float,
    step: int,
) -> tuple[IntArray, int]:
    """The step ended at ``t``: decodes add their token, chunks their prompt tokens (the
    step that completes a prompt samples the first token), finished requests leave and free
    their blocks. Returns the finished requests and the requests that emitted a token."""
    inp, done_prompt, generated, blocks = batch.inp, batch.done_prompt, batch.generated, batch.blocks
    n_dec = len(dec)
    if n_dec and batch.accept == 1.0:
        generated[dec] += 1
    elif n_dec:  # speculative decoding: the tokens each kept; the fraction carries over
        keep = batch.emissions(dec)
        batch.credit[dec] += batch.accept - keep
        generated[dec] += keep
    for r, k in chunks:
        done_prompt[r] += k
        nb = cache.adopt(r, int(done_prompt[r]), step)
        if nb:  # the first request to compute its group's prefix hands those blocks to the cache
            blocks[r] -= nb
        if done_prompt[r] >= inp[r]:
            generated[r] = 1  # the step that completes the prompt samples the first token
            batch.first[r] = t
            batch.prefilling.discard(r)
    run_arr = np.asarray(batch.running, dtype=np.int64)
    done_mask = (generated[run_arr] >= batch.out[run_arr]) & (done_prompt[run_arr] >= inp[run_arr])
    gone = run_arr[done_mask]
    if len(gone):
        batch.free_blocks += int(blocks[gone].sum())
        blocks[gone] = 0
        batch.running = run_arr[~done_mask].tolist()
    return gone, n_dec + sum(1 for r, _ in chunks if done_prompt[r] >= inp[r])


def run_engine(
    model: StepModel,
    req: Requests,
    limits: EngineLimits,
    *,
    closed_users: int | None = None,
    think_time_s: float = 0.0,
    max_steps: int = MAX_STEPS,
) -> SimTrace:
    """Run ``req`` through the engine, one step at a time, until every request finished,
    ``max_steps`` ran out, or nothing can be admitted and nothing will arrive."""
    n = len(req.input_len)
    batch = Batch(req, kv_blocks=limits.kv_blocks, block=limits.block_size, accept=limits.accept_length)
    cache = PrefixCache(req, limits.block_size, enabled=limits.prefix_caching)
    reserve = _admission_reserve(limits)
    arrivals = _Arrivals(req.arrival_s, closed_users, think_time_s)
    log = _StepLog()
    t = 0.0
    step_no = preemptions = finished = 0
    force_decode = False
    stopped: StopReason | None = None
    for _ in range(max_steps):
        arrivals.arrive(t, batch.waiting)
        # prefill-only step (SGLang): a prefill batch can be formed, so the decodes wait
        prefill_only = (
            not limits.mixed_prefill
            and not force_decode
            and (bool(batch.prefilling) or (bool(batch.waiting) and len(batch.running) < limits.max_num_seqs))
        )
        force_decode = False
        dec, decode_ctx, window_ctx, preempted = _decode_phase(
            batch, cache, skip=prefill_only, window=model.attn_window
        )
        if preempted:
            preemptions += preempted
            reserve.reset()
        n_dec = len(dec)
        chunks: list[tuple[int, int]] = []  # (request, tokens this step)
        budget = _continue_prefills(
            batch, cache, chunks, limits.max_num_batched_tokens - n_dec * (1 + limits.spec_tokens)
        )
        admit_waiting(
            batch, cache, reserve, chunks, budget=budget, max_seqs=limits.max_num_seqs, step=step_no
        )
        if not n_dec and not chunks:
            if prefill_only and batch.running:
                force_decode = True  # no prefill could be formed after all: decode this step
                continue
            upcoming = arrivals.next_time()  # idle: jump to the next arrival, or stop
            if upcoming is None:
                if batch.waiting:  # cannot admit even one request: KV pool too small
                    stopped = "kv_pool_too_small"
                break
            t = max(t, upcoming)
            continue
        dt = _step_seconds(model, batch, n_dec, float(decode_ctx), chunks, float(window_ctx))
        t += dt
        gone, emitted = _apply_step(batch, cache, dec, chunks, t, step_no)
        if len(gone):
            batch.finish[gone] = t
            finished += len(gone)
            arrivals.finished(len(gone), t)
        step_no += 1
        reserve.decay()
        log.record(t, dt, emitted, batch, limits.kv_blocks)
        if finished >= n:
            break
    else:  # the step limit ran out before every request finished
        stopped = "max_steps" if finished < n else None
    return log.trace(
        arrivals.arrival_s, batch, cache, preemptions=preemptions, stopped=stopped, steps=step_no
    )
