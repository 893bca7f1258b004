"""Published vLLM latency measurements (tests/golden/perf_cases_vllm.jsonl) against the
simulator at the same concurrency and lengths: TPOT (and TTFT where printed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gpusizer.api import simulate
from gpusizer.simulate.workload import LengthDist

CASES = Path(__file__).with_name("perf_cases_vllm.jsonl")


@dataclass(frozen=True)
class VllmCheck:
    case_id: str
    metric: str
    measured_ms: float
    predicted_ms: float

    @property
    def error(self) -> float:
        return (self.predicted_ms - self.measured_ms) / self.measured_ms


def run(efficiency_file: str | None = None) -> list[VllmCheck]:
    checks = []
    for line in CASES.read_text().splitlines():
        r = json.loads(line)
        res = simulate(
            r["model"],
            r["gpu"],
            users=(int(r["concurrency"]),),
            input_len=LengthDist(mean=r["input_tokens"]),
            output_len=LengthDist(mean=r["output_tokens"]),
            requests=int(r.get("requests") or 20 * r["concurrency"]),
            quant=r["quant"],
            engine="vllm",
            efficiency_file=efficiency_file,
        )
        s = res.points[0].stats
        checks.append(VllmCheck(r["case_id"], "TPOT p50", r["tpot_ms_median"], s.tpot.p50 * 1e3))
        if r.get("ttft_ms_median"):
            checks.append(VllmCheck(r["case_id"], "TTFT p50", r["ttft_ms_median"], s.ttft.p50 * 1e3))
    return checks
