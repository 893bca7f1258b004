"""Workloads: who sends what, when. Open loop (Poisson, or bursty gamma inter-arrivals at a
rate) or closed loop (N users, each sending its next request a think time after the last
one finished); input/output lengths fixed, uniform, normal or lognormal with bounds, or
an empirical sample; optionally a shared prompt prefix (a system prompt) per group. Sampling takes a ``numpy.random.Generator`` — no global state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from gpusizer.domain.options import DEFAULT_JITTER
from gpusizer.errors import BadInputError

__all__ = ["DEFAULT_JITTER", "LengthDist", "Requests", "Workload", "requests_from_trace", "sample_requests"]

# Fixed lengths in a closed loop put every user in lockstep: each wave arrives in the same
# step, queues behind the others' prefills and finishes in the same step, for ever. A real
# benchmark client with fixed lengths (ignore_eos) keeps part of those waves — requests that
# finish in one step send their successors together — but timing noise splits them a few
# steps apart each round. We model that noise as a small spread of the fixed lengths: each
# is drawn within ±0.2 % (at least ±1 token), which splits a wave into sub-waves a few steps
# apart. Of the spreads tried (0.2, 1 and 5 %), 0.2 % best matches the TTFT growth with
# concurrency of NVIDIA's
# fixed-length runs (aiconfigurator silicon_sample.csv: Llama-3.1-70B FP8 on H200 with vLLM
# and DeepSeek-V3 with SGLang; ±1 % and ±5 % desynchronise too fast and under-predict the
# queueing; jitter 0 over-predicts it: DeepSeek-V3 on SGLang at 64 users, 1.5 s against 0.42 s
# measured). Jitter 0 is the exact lockstep.
# (DEFAULT_JITTER = 0.002, defined with the other option defaults in domain/options.py)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class LengthDist:
    """Token-length distribution. ``fixed``: mean; ``uniform``: [low, high]; ``normal`` /
    ``lognormal``: mean and std, clipped to [low, high]; ``empirical``: resample ``values``."""

    kind: Literal["fixed", "uniform", "normal", "lognormal", "empirical"] = "fixed"
    mean: float = 1024
    std: float = 0.0
    low: int = 1
    high: int = 1 << 20
    values: tuple[int, ...] = ()
    weights: tuple[float, ...] = ()  # empirical: a histogram's counts for ``values`` (empty: equal)

    def sample(self, rng: np.random.Generator, n: int) -> IntArray:
        if self.kind == "fixed":
            out = np.full(n, self.mean)
        elif self.kind == "uniform":
            out = rng.integers(self.low, self.high + 1, size=n)
        elif self.kind == "normal":
            out = rng.normal(self.mean, self.std, size=n)
        elif self.kind == "lognormal":
            if self.mean <= 0:
                raise BadInputError("length", "lognormal needs a positive mean")
            var = self.std**2
            sigma2 = np.log1p(var / self.mean**2)
            mu = np.log(self.mean) - sigma2 / 2
            out = rng.lognormal(mu, np.sqrt(sigma2), size=n)
        else:
            if not self.values:
                raise BadInputError("length", "empirical distribution has no values")
            if self.weights:
                if len(self.weights) != len(self.values) or min(self.weights) < 0 or sum(self.weights) <= 0:
                    raise BadInputError("length", "histogram counts must be ≥ 0, one per length, not all 0")
                p = np.asarray(self.weights, dtype=np.float64)
                out = rng.choice(np.asarray(self.values), size=n, p=p / p.sum())
            else:
                out = rng.choice(np.asarray(self.values), size=n)
        clipped: IntArray = np.clip(np.rint(out), max(1, self.low), self.high).astype(np.int64)
        return clipped


@dataclass(frozen=True, kw_only=True)
class Workload:
    """``rate`` (requests/s, open loop) or ``users`` (closed loop), not both."""

    input_len: LengthDist
    output_len: LengthDist
    rate: float | None = None
    users: int | None = None
    think_time_s: float = 0.0
    burstiness: float = 1.0  # gamma shape k: 1 = Poisson, < 1 burstier
    requests: int = 1000
    prefix_tokens: int = 0  # the first tokens of every prompt are shared within its group
    prefix_groups: int = 1  # distinct shared prefixes (system prompts), requests spread evenly
    jitter: float = DEFAULT_JITTER  # fixed lengths drawn within ±jitter, ≥ ±1 token (0: exact, lockstep)

    def __post_init__(self) -> None:
        if (self.rate is None) == (self.users is None):
            raise BadInputError("rate/users", "give exactly one of a request rate or a number of users")
        if self.rate is not None and not 0 < self.rate <= 1e6:
            raise BadInputError("rate", f"must be in (0, 1e6] requests/s, got {self.rate}")
        if self.users is not None and not 1 <= self.users <= 100_000:
            raise BadInputError("users", f"must be 1..100000, got {self.users}")
        if not 1 <= self.requests <= 2_000_000:
            raise BadInputError("requests", f"must be 1..2000000, got {self.requests}")
        if self.burstiness <= 0:
            raise BadInputError("burstiness", "must be positive")
        if not 0 <= self.prefix_tokens <= 1 << 21:
            raise BadInputError("prefix_tokens", f"must be 0..{1 << 21}, got {self.prefix_tokens}")
        if not 0 <= self.jitter <= 0.5:
            raise BadInputError("jitter", f"must be 0..0.5, got {self.jitter}")
        if not 1 <= self.prefix_groups <= 1_000_000:
            raise BadInputError("prefix_groups", f"must be 1..1000000, got {self.prefix_groups}")


@dataclass(frozen=True, kw_only=True)
class Requests:
    """Sampled requests: arrival times (open loop; NaN in closed loop) and lengths; when
    prompts share prefixes, each request's group and the length of its shared prefix."""

    arrival_s: FloatArray
    input_len: IntArray
    output_len: IntArray
    prefix_id: IntArray | None = None
    prefix_len: IntArray | None = None


def _jittered(d: LengthDist, jitter: float) -> LengthDist:
    """A fixed length as a uniform spread of ±``jitter`` (at least ±1 token) around it;
    other kinds as given."""
    if d.kind != "fixed" or jitter <= 0 or d.mean < 2:
        return d
    half = max(1, round(d.mean * jitter))
    lo, hi = max(1, round(d.mean) - half), round(d.mean) + half
    return LengthDist(kind="uniform", low=max(lo, d.low), high=min(hi, d.high))


def sample_requests(w: Workload, rng: np.random.Generator) -> Requests:
    n = w.requests
    inp = _jittered(w.input_len, w.jitter).sample(rng, n)
    out = _jittered(w.output_len, w.jitter).sample(rng, n)
    if w.rate is not None:
        k = w.burstiness
        gaps = rng.gamma(k, 1.0 / (k * w.rate), size=n)
        arrivals = np.cumsum(gaps) - gaps[0]
    else:
        arrivals = np.full(n, np.nan)
    pid = plen = None
    if w.prefix_tokens:  # drawn last, so the arrivals and lengths of a seed stay as they were
        pid = rng.integers(0, w.prefix_groups, size=n).astype(np.int64)
        plen = np.minimum(w.prefix_tokens, inp - 1).astype(np.int64)
    return Requests(
        arrival_s=arrivals.astype(np.float64), input_len=inp, output_len=out, prefix_id=pid, prefix_len=plen
    )


def requests_from_trace(rows: list[dict[str, float]]) -> Requests:
    """A recorded trace: rows with ``arrival_s`` (or ``timestamp``), ``input_tokens`` and
    ``output_tokens``; arrivals are re-based to start at 0 and sorted."""
    if not rows:
        raise BadInputError("trace", "the trace has no requests")
    try:
        arr = np.array([float(r.get("arrival_s", r.get("timestamp", 0.0))) for r in rows])
        inp = np.array([int(r["input_tokens"]) for r in rows], dtype=np.int64)
        out = np.array([int(r["output_tokens"]) for r in rows], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError("trace", "each line needs arrival_s, input_tokens and output_tokens") from exc
    if (inp < 1).any() or (out < 1).any() or not np.isfinite(arr).all():
        raise BadInputError("trace", "token counts must be ≥ 1 and arrival times finite")
    order = np.argsort(arr, kind="stable")
    arr = arr[order] - arr[order][0]
    return Requests(arrival_s=arr.astype(np.float64), input_len=inp[order], output_len=out[order])
