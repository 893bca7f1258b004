"""gpusizer simulate as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gpusizer.cli.app import app

runner = CliRunner()


def test_simulate_json_has_the_promised_fields() -> None:
    r = runner.invoke(
        app,
        [
            "simulate",
            "deepseek-r1-distill-qwen-7b",
            "--gpu",
            "H100",
            "--rate",
            "2",
            "--requests",
            "100",
            "--output-len",
            "64",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        assert {"mean", "p50", "p90", "p95", "p99"} <= data[key].keys()
    assert {"output_tokens_per_s", "requests_per_s", "goodput", "preemptions"} <= data.keys()
    assert data["completed"] == 100


def test_sweep_finds_the_knee() -> None:
    r = runner.invoke(
        app,
        [
            "simulate",
            "deepseek-r1-distill-qwen-7b",
            "--gpu",
            "RTX 4090",
            "--rate",
            "0.5,50",
            "--requests",
            "200",
            "--output-len",
            "64",
            "--slo-ttft-ms",
            "600",  # a 1k-token prefill of a 7B model on a 4090 alone is ~0.2 s; 50 req/s queues far past it
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert len(data["points"]) == 2
    low, high = data["points"]
    assert high["ttft_ms"]["p95"] > low["ttft_ms"]["p95"]
    assert data["knee"] == {"rate": 50.0, "users": None}


def test_bad_simulate_input() -> None:
    r = runner.invoke(app, ["simulate", "deepseek-r1-distill-qwen-7b", "--gpu", "H100"])
    assert r.exit_code == 2 and "rates/users: give request rates or user counts" in r.output
    r = runner.invoke(
        app,
        [
            "simulate",
            "deepseek-r1-distill-qwen-7b",
            "--gpu",
            "H100",
            "--rate",
            "1",
            "--input-len",
            "zipf:1:2",
        ],
    )
    assert r.exit_code == 2 and "input_len: unknown distribution" in r.output


def test_plot_writes_time_series_and_cdfs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plots"
    r = runner.invoke(
        app,
        [
            "simulate",
            "deepseek-r1-distill-qwen-7b",
            "--gpu",
            "H100",
            "--rate",
            "4",
            "--requests",
            "60",
            "--output-len",
            "32",
            "--plot",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    ts = (out / "timeseries_rate4.svg").read_text()
    cdf = (out / "latency_cdf_rate4.svg").read_text()
    assert ts.startswith("<svg") and "running" in ts and "<polyline" in ts
    assert "TTFT" in cdf and "TPOT" in cdf


def test_trace_file_replays_its_own_arrivals(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "trace.jsonl"
    rows = [{"arrival_s": 100 + 0.5 * i, "input_tokens": 256 + i, "output_tokens": 16 + i} for i in range(30)]
    trace.write_text("\n".join(json.dumps(r) for r in rows))
    r = runner.invoke(
        app, ["simulate", "deepseek-r1-distill-qwen-7b", "--gpu", "H100", "--trace", str(trace), "--json"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["completed"] == 30 and data["rate"] is None and data["users"] is None
    trace.write_text('{"arrival_s": 0, "input_tokens": 5}\n')
    r = runner.invoke(
        app, ["simulate", "deepseek-r1-distill-qwen-7b", "--gpu", "H100", "--trace", str(trace)]
    )
    assert r.exit_code == 2 and "trace: " in r.output


def test_prefix_caching_and_duration_flags() -> None:
    base = [
        "simulate",
        "deepseek-r1-distill-qwen-7b",
        "--gpu",
        "H100",
        "--rate",
        "4",
        "--input-len",
        "2304",
        "--output-len",
        "64",
        "--prefix-tokens",
        "2048",
        "--duration",
        "30",
        "--json",
    ]
    on = json.loads(CliRunner().invoke(app, base).output)
    off = json.loads(CliRunner().invoke(app, [*base, "--no-prefix-caching"]).output)
    assert on["requests"] == off["requests"] == 120  # 4/s × 30 s
    assert on["prefix_cache_hit_tokens"] > 100 * 2048 and off["prefix_cache_hit_tokens"] == 0
    # cached prompts skip most of the prefill; the API server's share of each TTFT stays
    from gpusizer.api import efficiency_of, fit

    api_ms = efficiency_of(fit("deepseek-r1-distill-qwen-7b", "H100").deployment)[0].request_overhead_s * 1e3
    assert on["ttft_ms"]["p50"] - api_ms < 0.5 * (off["ttft_ms"]["p50"] - api_ms)
    closed = CliRunner().invoke(
        app, ["simulate", "deepseek-r1-distill-qwen-7b", "--gpu", "H100", "--users", "4", "--duration", "30"]
    )
    assert closed.exit_code == 2 and "--duration" in closed.output


def test_length_histogram_file(tmp_path: Path) -> None:
    import numpy as np

    from gpusizer.cli.simulate import parse_length

    hist = tmp_path / "lengths.txt"
    hist.write_text("# tokens count\n128 3\n2048, 1\n")
    dist = parse_length("--input-len", f"hist:{hist}")
    draws = dist.sample(np.random.default_rng(0), 20_000)
    assert set(np.unique(draws)) == {128, 2048}
    assert abs((draws == 2048).mean() - 0.25) < 0.02  # the counts are the weights
    r = CliRunner().invoke(
        app,
        [
            "simulate",
            "deepseek-r1-distill-qwen-7b",
            "--gpu",
            "H100",
            "--rate",
            "2",
            "--requests",
            "100",
            "--input-len",
            f"hist:{hist}",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    bad = tmp_path / "bad.txt"
    bad.write_text("128 3\nlots\n")
    r = CliRunner().invoke(
        app,
        [
            "simulate",
            "deepseek-r1-distill-qwen-7b",
            "--gpu",
            "H100",
            "--rate",
            "2",
            "--input-len",
            f"hist:{bad}",
        ],
    )
    assert r.exit_code == 2 and "input_len: " in r.output and "line 2" in r.output
