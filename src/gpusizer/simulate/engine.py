"""Continuous batching, step by step (vLLM V1 semantics by default).

Each step the scheduler, under a token budget (``max_num_batched_tokens``) and a sequence
cap (``max_num_seqs``):

1. gives every running request that has finished its prompt one decode token, allocating a
   new KV block when its context crosses a block boundary — if blocks run out it preempts
   the most recently admitted request (recompute: its blocks are freed and it re-queues at
   the front with its progress lost);
2. continues chunked prefills of running requests, oldest first;
3. admits waiting requests (FIFO) while the budget, the sequence cap and free blocks allow,
   with their first prompt chunk.

Admission reserve (SGLang's policy; vLLM has none): a request is admitted only if the free
blocks also cover ``ratio × min(remaining output, clip)`` tokens of every running request.
The ratio starts at ``reserve_init``, decays linearly to ``reserve_min`` over
``reserve_decay_steps`` steps, and jumps back to ``reserve_init`` whenever a request is
preempted (SGLang calls it a retraction) — fewer preemptions, more queueing.

Prefix caching (vLLM's automatic prefix caching, on by default in V1; SGLang's radix cache):
requests that share a prompt prefix (``Requests.prefix_id``) skip the full blocks of it that
an earlier request computed — their prefill starts after the hit, at least one prompt token
is always computed, and the hit blocks are held once, by the cache, not per request. A
prefix is cached when the first request of its group has computed it, and stays until blocks
run short: then the least recently used prefixes that no running request reads are evicted
before anything is preempted (vLLM's LRU eviction of unreferenced blocks).

The step lasts ``StepModel.seconds(...)`` for exactly that batch. A request's first token
comes at the end of the step that completes its prompt; it finishes when it has its output
tokens. Deterministic: no clock, no global RNG, no I/O; callable any number of times.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from gpusizer.estimate.roofline import StepModel
from gpusizer.simulate.workload import Requests

__all__ = ["MAX_STEPS", "EngineLimits", "SimTrace", "StopReason", "run_engine"]

FloatArray = npt.NDArray[np.float64]

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


def _evict(
    cached: dict[int, int],
    last_use: dict[int, int],
    want: int,
    running: list[int],
    pid: npt.NDArray[np.int64],
    shared: npt.NDArray[np.int64],
    block: int,
) -> int:
    """Drop least recently used cached prefixes that no running request reads until ``want``
    blocks are freed (or none is left to drop); returns the blocks freed."""
    in_use = {int(pid[x]) for x in running if shared[x] > 0}
    freed = 0
    for g in sorted(cached, key=lambda g: last_use.get(g, -1)):
        if freed >= want:
            break
        if g in in_use:
            continue
        freed += cached.pop(g) // block
        last_use.pop(g, None)
    return freed


def run_engine(
    model: StepModel,
    req: Requests,
    limits: EngineLimits,
    *,
    closed_users: int | None = None,
    think_time_s: float = 0.0,
    max_steps: int = MAX_STEPS,
) -> SimTrace:
    n = len(req.input_len)
    inp = req.input_len.astype(np.int64)
    out = req.output_len.astype(np.int64)
    arrival = req.arrival_s.copy()
    if closed_users is not None:  # the first wave arrives at t = 0, the rest on completions
        arrival[:] = np.inf
        arrival[: min(closed_users, n)] = 0.0
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    done_prompt = np.zeros(n, dtype=np.int64)  # prompt tokens computed
    generated = np.zeros(n, dtype=np.int64)
    blocks = np.zeros(n, dtype=np.int64)  # KV blocks held by the request itself
    B = limits.block_size
    caching = limits.prefix_caching and req.prefix_id is not None and req.prefix_len is not None
    pid = req.prefix_id if req.prefix_id is not None else np.full(n, -1, dtype=np.int64)
    # full blocks of each request's shared prefix (0: nothing to share)
    pfull = (
        (req.prefix_len // B) * B if caching and req.prefix_len is not None else np.zeros(n, dtype=np.int64)
    )
    cached: dict[int, int] = {}  # prefix group → tokens held by the cache
    last_use: dict[int, int] = {}  # prefix group → step of its last hit (LRU order)
    step_no = 0
    shared = np.zeros(n, dtype=np.int64)  # tokens of the request covered by cache blocks
    hit_tokens = 0
    ratio = limits.reserve_init
    decay = (limits.reserve_init - limits.reserve_min) / max(1, limits.reserve_decay_steps)
    free_blocks = limits.kv_blocks
    next_arrival = 0  # open loop: index of the next request to arrive (arrivals sorted)
    order = np.argsort(arrival, kind="stable") if closed_users is None else np.arange(n)
    waiting: deque[int] = deque()
    running: list[int] = []  # admission order
    prefilling: set[int] = set()  # running requests whose prompt is not complete
    issued = min(closed_users, n) if closed_users is not None else n
    t = 0.0
    steps_end: list[float] = []
    steps_dt: list[float] = []
    steps_dec: list[int] = []
    steps_run: list[int] = []
    steps_wait: list[int] = []
    steps_kv: list[float] = []
    preemptions = 0
    finished = 0
    # closed loop: (arrival time, request) of requests issued but not yet arrived
    pending_closed: list[tuple[float, int]] = [(0.0, i) for i in range(issued)] if closed_users else []
    budget_cap = limits.max_num_batched_tokens
    force_decode = False
    stopped: StopReason | None = None
    for _ in range(max_steps):
        # arrivals up to now
        if closed_users is None:
            while next_arrival < n and arrival[order[next_arrival]] <= t:
                waiting.append(int(order[next_arrival]))
                next_arrival += 1
        elif pending_closed:
            pending_closed.sort()
            while pending_closed and pending_closed[0][0] <= t:
                waiting.append(pending_closed.pop(0)[1])
        budget = budget_cap
        # prefill-only step (SGLang): a prefill batch can be formed, so the decodes wait
        prefill_only = (
            not limits.mixed_prefill
            and not force_decode
            and (bool(prefilling) or (bool(waiting) and len(running) < limits.max_num_seqs))
        )
        force_decode = False
        # 1. decodes (with block growth and preemption)
        run_arr = np.asarray(running, dtype=np.int64)
        dec = run_arr[done_prompt[run_arr] >= inp[run_arr]] if running else run_arr
        if prefill_only:
            dec = dec[:0]
        decoders = dec.tolist()
        if decoders:
            ctx = inp[dec] + generated[dec]
            need = int(np.count_nonzero(ctx % B == 0))
            if need > free_blocks and cached:
                free_blocks += _evict(cached, last_use, need - free_blocks, running, pid, shared, B)
            while need > free_blocks and running:
                victim = running.pop()  # the most recently admitted
                prefilling.discard(victim)
                free_blocks += int(blocks[victim])
                blocks[victim] = 0
                shared[victim] = 0
                done_prompt[victim] = 0
                generated[victim] = 0
                first[victim] = np.nan
                waiting.appendleft(victim)
                preemptions += 1
                ratio = limits.reserve_init
                run_arr = np.asarray(running, dtype=np.int64)
                dec = run_arr[done_prompt[run_arr] >= inp[run_arr]] if running else run_arr
                decoders = dec.tolist()
                ctx = inp[dec] + generated[dec]
                need = int(np.count_nonzero(ctx % B == 0))
            if decoders:
                grow = dec[ctx % B == 0]
                blocks[grow] += 1
                free_blocks -= len(grow)
                budget -= len(decoders)
        n_dec = len(decoders)
        decode_ctx = float(np.sum(inp[dec] + generated[dec])) if n_dec else 0.0
        # 2. continue chunked prefills, then 3. admit new requests
        chunks: list[tuple[int, int]] = []  # (request, tokens this step)
        for r in [x for x in running if x in prefilling]:
            if budget <= 0:
                break
            if done_prompt[r] < inp[r]:
                k = int(min(inp[r] - done_prompt[r], budget))
                need_b = math.ceil((done_prompt[r] + k) / B) - int(shared[r]) // B - int(blocks[r])
                if need_b > free_blocks and cached:
                    free_blocks += _evict(cached, last_use, need_b - free_blocks, running, pid, shared, B)
                if need_b > free_blocks:
                    continue
                blocks[r] += need_b
                free_blocks -= need_b
                chunks.append((r, k))
                budget -= k
        reserve = 0.0  # blocks held back for the running requests' future tokens
        if ratio > 0 and running:
            run_now = np.asarray(running, dtype=np.int64)
            left = np.minimum(out[run_now] - generated[run_now], limits.reserve_clip)
            reserve = ratio * float(left.sum()) / B
        while waiting and budget > 0 and len(running) < limits.max_num_seqs:
            r = waiting[0]
            hit = 0
            if caching and pfull[r]:  # full cached blocks, leaving at least one token to compute
                hit = min(cached.get(int(pid[r]), 0), int(pfull[r]), ((int(inp[r]) - 1) // B) * B)
            k = int(min(inp[r] - hit, budget))
            need_b = math.ceil(k / B)
            if need_b > free_blocks and cached:
                free_blocks += _evict(cached, last_use, need_b - free_blocks, running, pid, shared, B)
                if hit and int(pid[r]) not in cached:  # its own prefix was evicted: compute it all
                    hit = 0
                    k = int(min(inp[r], budget))
                    need_b = math.ceil(k / B)
            if need_b + reserve > free_blocks:
                break
            waiting.popleft()
            running.append(r)
            if ratio > 0:
                reserve += ratio * min(int(out[r]), limits.reserve_clip) / B
            prefilling.add(r)
            done_prompt[r] = hit
            shared[r] = hit
            hit_tokens += hit
            if hit:
                last_use[int(pid[r])] = step_no
            blocks[r] = need_b
            free_blocks -= need_b
            chunks.append((r, k))
            budget -= k
        if not n_dec and not chunks and prefill_only and running:
            force_decode = True  # no prefill could be formed after all: decode this step
            continue
        if not n_dec and not chunks:
            # idle: jump to the next arrival, or stop
            upcoming = []
            if closed_users is None and next_arrival < n:
                upcoming.append(arrival[order[next_arrival]])
            if closed_users is not None and pending_closed:
                upcoming.append(min(p[0] for p in pending_closed))
            if not upcoming:
                if waiting:  # cannot admit even one request: KV pool too small
                    stopped = "kv_pool_too_small"
                break
            t = max(t, float(min(upcoming)))
            continue
        prefill_tokens = sum(k for _, k in chunks)
        prefill_kv = float(sum(done_prompt[r] + k for r, k in chunks))
        prefill_work = float(sum(k * (done_prompt[r] + (k + 1) / 2) for r, k in chunks))
        dt = model.seconds(
            n_dec + prefill_tokens, n_dec + len(chunks), decode_ctx, prefill_kv, prefill_work, len(chunks)
        )
        t += dt
        # apply the step
        if n_dec:
            generated[dec] += 1
        for r, k in chunks:
            done_prompt[r] += k
            g = int(pid[r])
            if (
                caching and pfull[r] and shared[r] == 0 and done_prompt[r] >= pfull[r] and g not in cached
            ):  # the first request to compute its group's prefix hands those blocks to the cache
                nb = int(pfull[r]) // B
                blocks[r] -= nb
                shared[r] = pfull[r]
                cached[g] = int(pfull[r])
                last_use[g] = step_no
            if done_prompt[r] >= inp[r]:
                generated[r] = 1  # the step that completes the prompt samples the first token
                first[r] = t
                prefilling.discard(r)
        run_arr = np.asarray(running, dtype=np.int64)
        done_mask = (generated[run_arr] >= out[run_arr]) & (done_prompt[run_arr] >= inp[run_arr])
        if done_mask.any():
            gone = run_arr[done_mask]
            finish[gone] = t
            free_blocks += int(blocks[gone].sum())
            blocks[gone] = 0
            finished += len(gone)
            if closed_users is not None:
                for _ in range(len(gone)):
                    if issued >= n:
                        break
                    pending_closed.append((t + think_time_s, issued))
                    arrival[issued] = t + think_time_s
                    issued += 1
            running = run_arr[~done_mask].tolist()
        step_no += 1
        ratio = max(limits.reserve_min, ratio - decay)
        steps_end.append(t)
        steps_dt.append(dt)
        steps_dec.append(n_dec + sum(1 for r, _ in chunks if done_prompt[r] >= inp[r]))
        steps_run.append(len(running))
        steps_wait.append(len(waiting))
        steps_kv.append(1 - free_blocks / limits.kv_blocks if limits.kv_blocks else 1.0)
        if finished >= n:
            break
    else:  # the step limit ran out before every request finished
        stopped = "max_steps" if finished < n else None
    return SimTrace(
        arrival_s=arrival,
        first_token_s=first,
        finish_s=finish,
        output_tokens=np.minimum(generated, out),
        step_end_s=np.asarray(steps_end),
        step_dt_s=np.asarray(steps_dt),
        step_decoding=np.asarray(steps_dec, dtype=np.int64),
        step_running=np.asarray(steps_run, dtype=np.int64),
        step_waiting=np.asarray(steps_wait, dtype=np.int64),
        step_kv_used=np.asarray(steps_kv),
        preemptions=preemptions,
        prefix_hit_tokens=hit_tokens,
        stopped=stopped,
        steps=step_no,
    )
