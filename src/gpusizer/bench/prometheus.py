"""Read a serving engine's Prometheus ``/metrics`` and reduce it to the few numbers the
decision rules need, whichever engine it is (vLLM, SGLang, llama.cpp server).

Metric names by engine (as each exports them):
  vLLM:      vllm:num_requests_running, vllm:num_requests_waiting,
             vllm:kv_cache_usage_perc (older: vllm:gpu_cache_usage_perc), vllm:num_preemptions_total,
             vllm:time_to_first_token_seconds, vllm:inter_token_latency_seconds
             (older: vllm:time_per_output_token_seconds), vllm:request_queue_time_seconds histograms
  SGLang:    sglang:num_running_reqs, sglang:num_queue_reqs, sglang:token_usage,
             sglang:time_to_first_token_seconds, sglang:inter_token_latency_seconds,
             sglang:queue_time_seconds
  llama.cpp: llamacpp:requests_processing, llamacpp:requests_deferred, llamacpp:kv_cache_usage_ratio

Sources for the histogram names: vLLM's Prometheus logger (vllm/v1/metrics/loggers.py, which
registers vllm:time_to_first_token_seconds and vllm:inter_token_latency_seconds) and SGLang's
metrics collector (python/sglang/srt/metrics/collector.py; docs/references/production_metrics.md).
Histograms are summed over label sets (one per engine core or data-parallel rank), so their
means stay right.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from gpusizer.engines import engine_for_metrics

__all__ = ["ServerSnapshot", "parse_metrics"]


@dataclass(frozen=True, kw_only=True)
class ServerSnapshot:
    engine: str | None
    running: float | None
    waiting: float | None
    kv_usage: float | None  # 0..1
    preemptions: float | None
    ttft_mean_s: float | None  # since the server started
    itl_mean_s: float | None
    ttft_sum_s: float | None = None  # the histograms' running totals, for means over a window
    ttft_count: float | None = None
    itl_sum_s: float | None = None
    itl_count: float | None = None
    queue_sum_s: float | None = None  # time requests waited before the scheduler took them
    queue_count: float | None = None


_RUNNING = ("vllm:num_requests_running", "sglang:num_running_reqs", "llamacpp:requests_processing")
_WAITING = ("vllm:num_requests_waiting", "sglang:num_queue_reqs", "llamacpp:requests_deferred")
_KV = (
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "sglang:token_usage",
    "llamacpp:kv_cache_usage_ratio",
)
_PREEMPT = ("vllm:num_preemptions", "vllm:num_preemptions_total")
_TTFT = ("vllm:time_to_first_token_seconds", "sglang:time_to_first_token_seconds")
_QUEUE = ("vllm:request_queue_time_seconds", "sglang:queue_time_seconds")
_ITL = (
    "vllm:inter_token_latency_seconds",
    "vllm:time_per_output_token_seconds",
    "sglang:inter_token_latency_seconds",
)


def parse_metrics(text: str) -> ServerSnapshot:
    """Sum gauges/counters over label sets; histogram means from their _sum/_count."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[s.name] = values.get(s.name, 0.0) + float(s.value)

    def first(names: tuple[str, ...], suffix: str = "") -> float | None:
        for n in names:
            if n + suffix in values:
                return values[n + suffix]
        return None

    def mean(names: tuple[str, ...]) -> float | None:
        total, count = first(names, "_sum"), first(names, "_count")
        return total / count if total is not None and count else None

    engine = engine_for_metrics(values)
    return ServerSnapshot(
        engine=engine,
        running=first(_RUNNING),
        waiting=first(_WAITING),
        kv_usage=first(_KV),
        preemptions=first(_PREEMPT),
        ttft_mean_s=mean(_TTFT),
        itl_mean_s=mean(_ITL),
        ttft_sum_s=first(_TTFT, "_sum"),
        ttft_count=first(_TTFT, "_count"),
        itl_sum_s=first(_ITL, "_sum"),
        itl_count=first(_ITL, "_count"),
        queue_sum_s=first(_QUEUE, "_sum"),
        queue_count=first(_QUEUE, "_count"),
    )
