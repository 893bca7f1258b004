"""What a runs file stores per request and per scrape of the server's metrics: the records
the bench writes and the readers get back, and the columns each is stored in."""

from __future__ import annotations

import json
from dataclasses import asdict, astuple, dataclass
from typing import Any

__all__ = [
    "METRICS_COLS",
    "REQUEST_COLS",
    "MetricsSample",
    "RequestRecord",
    "marks",
    "metrics_values",
    "record_dict",
    "request_from_row",
    "request_values",
]

REQUEST_COLS = (
    "idx, warmup, start_s, first_token_s, end_s, prompt_tokens, output_tokens, itl_s, error, first_answer_s, "
    "sent_s, server_prefill_s, server_tpot_s, cancelled"
)
METRICS_COLS = (
    "t_s, running, waiting, kv_usage, preemptions, ttft_sum_s, ttft_count, itl_sum_s, itl_count, "
    "queue_sum_s, queue_count"
)


@dataclass
class RequestRecord:
    idx: int
    warmup: bool
    start_s: float
    first_token_s: float | None
    end_s: float | None
    prompt_tokens: int | None
    output_tokens: int | None
    itl_s: list[float]
    error: str | None = None
    first_answer_s: float | None = None  # first non-reasoning token (DeepSeek-R1's reasoning_content)
    sent_s: float | None = None  # the request's last byte handed to the socket; None: not traced
    server_prefill_s: float | None = None  # the server's own prompt-processing time (llama.cpp)
    server_tpot_s: float | None = None  # the server's own time per output token (llama.cpp)
    cancelled: bool = False  # cut off by an interrupt: neither a success nor a failure

    @property
    def origin_s(self) -> float:
        """Where the server's latencies are timed from: the request on the wire when that was
        traced, else the moment the client took it up (older runs, other transports)."""
        return self.start_s if self.sent_s is None else self.sent_s

    @property
    def send_delay_s(self) -> float | None:
        """The client's own time before the request was on the wire: building it, waiting for
        a pooled connection, opening a new one."""
        return None if self.sent_s is None else self.sent_s - self.start_s


@dataclass(frozen=True)
class MetricsSample:
    t_s: float
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None
    preemptions: float | None = None
    ttft_sum_s: float | None = None
    ttft_count: float | None = None
    itl_sum_s: float | None = None
    itl_count: float | None = None
    queue_sum_s: float | None = None
    queue_count: float | None = None


def marks(cols: str) -> str:
    """Placeholders for ``run_id`` and each of ``cols``."""
    return ", ".join("?" * (1 + len(cols.split(","))))


def request_values(run_id: int, r: RequestRecord) -> tuple[Any, ...]:
    """``run_id`` and the request, in the order of ``REQUEST_COLS``."""
    return (
        run_id,
        r.idx,
        int(r.warmup),
        r.start_s,
        r.first_token_s,
        r.end_s,
        r.prompt_tokens,
        r.output_tokens,
        json.dumps(r.itl_s),
        r.error,
        r.first_answer_s,
        r.sent_s,
        r.server_prefill_s,
        r.server_tpot_s,
        int(r.cancelled),
    )


def request_from_row(r: tuple[Any, ...]) -> RequestRecord:
    """A request read back from its ``REQUEST_COLS``."""
    return RequestRecord(
        idx=r[0],
        warmup=bool(r[1]),
        start_s=r[2],
        first_token_s=r[3],
        end_s=r[4],
        prompt_tokens=r[5],
        output_tokens=r[6],
        itl_s=json.loads(r[7] or "[]"),
        error=r[8],
        first_answer_s=r[9],
        sent_s=r[10],
        server_prefill_s=r[11],
        server_tpot_s=r[12],
        cancelled=bool(r[13]),
    )


def metrics_values(run_id: int, m: MetricsSample) -> tuple[Any, ...]:
    """``run_id`` and the sample, in the order of ``METRICS_COLS``."""
    return (run_id, *astuple(m))


def record_dict(r: RequestRecord) -> dict[str, Any]:
    return asdict(r)
