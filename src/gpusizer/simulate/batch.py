"""The scheduler's state during one run: each request's progress (prompt tokens computed,
tokens generated, KV blocks it holds, first-token and finish times), the waiting queue, the
running batch in admission order, the running requests still in prefill, and the free blocks
of the KV pool. The engine loop owns it; the admission, preemption and prefix-cache policies
read and change it. Pure: no I/O, clock or RNG.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from gpusizer.simulate.workload import Requests

__all__ = ["Batch"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class Batch:
    """Per-request progress, the queues and the KV pool of one run (request = index into
    the workload's ``Requests``)."""

    __slots__ = (
        "accept",
        "block",
        "blocks",
        "credit",
        "done_prompt",
        "finish",
        "first",
        "free_blocks",
        "generated",
        "inp",
        "out",
        "prefilling",
        "running",
        "waiting",
    )

    def __init__(self, req: Requests, *, kv_blocks: int, block: int, accept: float = 1.0) -> None:
        n = len(req.input_len)
        self.inp: IntArray = req.input_len.astype(np.int64)
        self.out: IntArray = req.output_len.astype(np.int64)
        self.done_prompt: IntArray = np.zeros(n, dtype=np.int64)  # prompt tokens computed
        self.generated: IntArray = np.zeros(n, dtype=np.int64)
        self.blocks: IntArray = np.zeros(n, dtype=np.int64)  # KV blocks held by the request itself
        self.first: FloatArray = np.full(n, np.nan)  # first-token time
        self.finish: FloatArray = np.full(n, np.nan)  # finish time
        self.waiting: deque[int] = deque()
        self.running: list[int] = []  # admission order
        self.prefilling: set[int] = set()  # running requests whose prompt is not complete
        self.free_blocks = kv_blocks
        self.block = block
        # speculative decoding: each decode step keeps ``accept`` tokens per sequence on
        # average; ``credit`` carries the fraction over, so a sequence keeps floor or ceil
        self.accept = accept
        self.credit: FloatArray = np.zeros(n)

    def emissions(self, dec: IntArray) -> IntArray:
        """Tokens each of ``dec`` keeps this decode step (1 without speculative decoding)."""
        if self.accept == 1.0:
            return np.ones(len(dec), dtype=np.int64)
        return np.floor(self.credit[dec] + self.accept + 1e-9).astype(np.int64)

    def decoders(self) -> IntArray:
        """The running requests that have finished their prompt (they decode), in admission order."""
        running = self.running
        run_arr = np.asarray(running, dtype=np.int64)
        return run_arr[self.done_prompt[run_arr] >= self.inp[run_arr]] if running else run_arr
