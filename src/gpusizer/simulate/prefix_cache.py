"""Prefix caching (vLLM's automatic prefix caching, on by default in V1; SGLang's radix cache).

Requests that share a prompt prefix (``Requests.prefix_id``) skip the full blocks of it that
an earlier request computed: their prefill starts after the hit, at least one prompt token
is always computed, and the hit blocks are held once, by the cache, not per request. A
prefix is cached when the first request of its group has computed it (that request hands
its blocks to the cache), and stays until blocks run short: then the least recently used
prefixes that no running request reads are evicted, before anything is preempted (vLLM's
LRU eviction of unreferenced blocks).

Only whole blocks are shared. With caching off (or no prefixes in the workload) nothing is
ever cached: every lookup misses and eviction frees nothing. Pure: no I/O, clock or RNG.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gpusizer.simulate.workload import Requests

__all__ = ["PrefixCache"]

IntArray = npt.NDArray[np.int64]


class PrefixCache:
    """The cached prefixes of one run (prefix group → tokens held) and, per request, the
    tokens of its prompt that cache blocks cover (``shared``)."""

    __slots__ = ("_block", "_cached", "_enabled", "_full", "_last_use", "_pid", "hit_tokens", "shared")

    def __init__(self, req: Requests, block: int, *, enabled: bool) -> None:
        n = len(req.input_len)
        self._block = block
        self._enabled = enabled and req.prefix_id is not None and req.prefix_len is not None
        self._pid: IntArray = req.prefix_id if req.prefix_id is not None else np.full(n, -1, dtype=np.int64)
        # full blocks of each request's shared prefix (0: nothing to share)
        self._full: IntArray = (
            (req.prefix_len // block) * block
            if self._enabled and req.prefix_len is not None
            else np.zeros(n, dtype=np.int64)
        )
        self._cached: dict[int, int] = {}  # prefix group → tokens held by the cache
        self._last_use: dict[int, int] = {}  # prefix group → step of its last hit (LRU order)
        self.shared: IntArray = np.zeros(n, dtype=np.int64)  # tokens of the request covered by cache blocks
        self.hit_tokens = 0  # prompt tokens served from the cache (admissions)

    def lookup(self, r: int, input_len: int) -> int:
        """Prompt tokens of request ``r`` the cache holds now: full cached blocks of its
        prefix, leaving at least one token to compute (0 on a miss)."""
        if not (self._enabled and self._full[r]):
            return 0
        b = self._block
        return min(self._cached.get(int(self._pid[r]), 0), int(self._full[r]), ((input_len - 1) // b) * b)

    def holds(self, r: int) -> bool:
        """Whether the prefix of request ``r``'s group is cached."""
        return int(self._pid[r]) in self._cached

    def admitted(self, r: int, hit: int, step: int) -> None:
        """Request ``r`` was admitted with ``hit`` tokens from the cache (a hit refreshes its
        prefix's place in the LRU order)."""
        self.shared[r] = hit
        self.hit_tokens += hit
        if hit:
            self._last_use[int(self._pid[r])] = step

    def adopt(self, r: int, done_prompt: int, step: int) -> int:
        """After request ``r`` computed its prompt up to ``done_prompt``: if it is the first of
        its group to have computed the group's prefix, the cache takes over those blocks.
        Returns the blocks taken from the request (0 if none)."""
        if not self._enabled:
            return 0
        full = int(self._full[r])
        g = int(self._pid[r])
        if full and self.shared[r] == 0 and done_prompt >= full and g not in self._cached:
            self.shared[r] = full
            self._cached[g] = full
            self._last_use[g] = step
            return full // self._block
        return 0

    def held_blocks(self, r: int) -> int:
        """Blocks of request ``r``'s prompt that the cache holds for it."""
        return int(self.shared[r]) // self._block

    def release(self, r: int) -> None:
        """Request ``r`` was preempted: it no longer reads any cached prefix."""
        self.shared[r] = 0

    def evict(self, want: int, running: list[int]) -> int:
        """Drop least recently used cached prefixes that no running request reads until
        ``want`` blocks are freed (or none is left to drop); returns the blocks freed."""
        cached = self._cached
        if not cached:
            return 0
        last_use = self._last_use
        pid, shared = self._pid, self.shared
        in_use = {int(pid[x]) for x in running if shared[x] > 0}
        freed = 0
        for g in sorted(cached, key=lambda g: last_use.get(g, -1)):
            if freed >= want:
                break
            if g in in_use:
                continue
            freed += cached.pop(g) // self._block
            last_use.pop(g, None)
        return freed
