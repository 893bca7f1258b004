"""Faults a real server can throw at the client, over real sockets: each is recorded on its
own request with its cause, the run goes on, and no failure counts as a latency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpusizer.bench.client import BenchSettings, run_load
from gpusizer.bench.metrics import bench_metrics
from gpusizer.bench.stub import StubConfig
from gpusizer.cli.app import app
from gpusizer.store.runs import MetricsSample, RunStore
from tests.bench.stubserver import running_stub

FAULTS = {1: "http500", 2: "drop", 3: "malformed", 4: "stall", 5: "nodone"}


def test_each_fault_is_recorded_with_its_cause() -> None:
    cfg = StubConfig(itl_s=0.002, faults=FAULTS)  # type: ignore[arg-type]
    with running_stub(cfg) as url:
        s = BenchSettings(
            url=url, model="stub", requests=8, warmup=0, concurrency=3, output_len=8, timeout_s=1.5
        )
        recs = run_load(s)
    assert [r.idx for r in recs] == list(range(8))
    by = {r.idx: r for r in recs}
    assert by[1].error and by[1].error.startswith("HTTP 500")
    assert by[2].error and ("RemoteProtocolError" in by[2].error or "ReadError" in by[2].error)
    assert by[3].error and by[3].error.startswith("malformed SSE")
    assert by[4].error and "Timeout" in by[4].error
    assert by[5].error and "before [DONE]" in by[5].error
    for i in (0, 6, 7):  # the healthy requests around the faults are untouched
        assert by[i].error is None and by[i].output_tokens == 8 and len(by[i].itl_s) == 7
    m = bench_metrics(recs)
    assert m.completed == 3 and m.failed == 5
    assert m.failures is not None and sum(m.failures.values()) == 5 and m.failures["HTTP 500"] == 1
    # failures never count as latencies: the stalled request's 1.5 s is not in E2E
    assert m.e2e.p99 < 1.0


def test_reasoning_tokens_give_a_separate_time_to_first_answer() -> None:
    cfg = StubConfig(ttft_s=0.01, itl_s=0.005, reasoning_tokens=20)
    with running_stub(cfg) as url:
        recs = run_load(
            BenchSettings(
                url=url, model="stub", api="chat", requests=3, warmup=0, concurrency=1, output_len=4
            )
        )
    m = bench_metrics(recs)
    assert m.ttfat is not None and m.completed == 3
    # 20 reasoning tokens at ≥ 5 ms each come before the first answer token
    assert m.ttfat.p50 - m.ttft.p50 >= 20 * 0.005 * 0.9
    assert "time_to_first_answer_token_ms" in m.as_dict()


def test_ttft_is_timed_from_the_wire_and_tokens_by_their_arrival() -> None:
    # The stub holds the first token 40 ms, then writes 4 tokens per write, 15 ms apart.
    cfg = StubConfig(ttft_s=0.04, itl_s=0.015, burst=4)
    with running_stub(cfg) as url:
        recs = run_load(
            BenchSettings(url=url, model="stub", requests=6, warmup=1, concurrency=2, output_len=8)
        )
    for r in recs:
        assert r.error is None and r.sent_s is not None and r.first_token_s is not None
        assert r.start_s <= r.sent_s < r.first_token_s
        # the server cannot answer before it was asked; the client stamps "sent" just after the
        # socket took the last byte, a fraction of a millisecond after the server may have it
        assert r.first_token_s - r.sent_s >= 0.04 - 0.002
        # two writes of 4 events: the events of one write arrive together, the writes 15 ms apart
        assert len(r.itl_s) == 7 and sum(g >= 0.012 for g in r.itl_s) == 1
    m = bench_metrics(recs)
    assert m.send is not None and 0 < m.send.p50 < m.ttft.p50  # reported apart, not inside TTFT
    assert m.ttft.p50 < 0.04 + 0.03  # from the wire: 40 ms plus the stub's own overhead
    assert "client_send_ms" in m.as_dict()


def test_metrics_are_scraped_while_the_run_goes(tmp_path: Path) -> None:
    cfg = StubConfig(itl_s=0.01)
    with running_stub(cfg) as url:
        samples: list[MetricsSample] = []
        s = BenchSettings(
            url=url, model="stub", requests=8, warmup=0, concurrency=4, output_len=20, metrics_interval_s=0.05
        )
        run_load(s, on_metrics=samples.append)
    assert len(samples) >= 3
    assert max(x.running or 0 for x in samples) >= 2  # the server was seen busy with our requests
    assert all(0 <= (x.kv_usage or 0) <= 1 for x in samples)


def test_bench_cli_stores_a_run_with_faults_and_metrics(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    with running_stub(StubConfig(itl_s=0.005, faults={2: "http500"})) as url:
        r = CliRunner().invoke(
            app,
            [
                "bench",
                url,
                "--model",
                "stub",
                "--concurrency",
                "2",
                "--requests",
                "6",
                "--warmup",
                "0",
                "--output-len",
                "10",
                "--db",
                str(db),
                "--json",
            ],
        )
    assert r.exit_code == 0, r.output
    point = json.loads(r.output)["points"][0]
    assert point["completed"] == 5 and point["failed"] == 1 and point["failures"] == {"HTTP 500": 1}
    store = RunStore(db)
    (run,) = store.runs()
    assert run["status"] == "complete"
    assert len(store.requests(run["id"])) == 6
    assert store.metrics(run["id"])  # at least the opening sample
    store.close()


def test_a_point_where_every_request_failed_exits_1_and_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    with running_stub(StubConfig(faults={0: "http500", 1: "http500", 2: "http500"})) as url:
        args = ["bench", url, "--model", "stub", "--requests", "3", "--warmup", "0", "--db", str(db)]
        failed = CliRunner().invoke(app, [*args, "--concurrency", "1"])
        zero = CliRunner().invoke(app, [*args, "--concurrency", "0"])
    assert failed.exit_code == 1 and "no request succeeded at concurrency=1" in failed.output
    store = RunStore(db)
    assert [r.error is not None for r in store.requests(1)] == [True, True, True]  # kept for the record
    store.close()
    assert zero.exit_code == 2 and "--concurrency" in zero.output and "Traceback" not in zero.output


def test_counts_without_the_servers_usage_are_said_to_be_estimates() -> None:
    with running_stub(StubConfig(usage=False, burst=2)) as url:
        recs = run_load(
            BenchSettings(url=url, model="stub", requests=4, warmup=0, concurrency=2, output_len=6)
        )
    d = bench_metrics(recs).as_dict()
    assert d["completed"] == 4 and all(r.output_tokens == 6 for r in recs)  # one event per token here
    assert d["token_counts"].startswith("estimated from streamed chunks for 4 of 4")
    with running_stub(StubConfig()) as url:
        recs = run_load(
            BenchSettings(url=url, model="stub", requests=2, warmup=0, concurrency=1, output_len=6)
        )
    assert bench_metrics(recs).as_dict()["token_counts"] == "server usage"


def test_the_servers_histograms_are_read_over_the_run_beside_the_client(tmp_path: Path) -> None:
    # The stub times itself and exports vLLM's TTFT and inter-token-latency histograms; the
    # bench reads their change over the run and puts the means beside its own.
    db = tmp_path / "runs.sqlite"
    with running_stub(StubConfig(ttft_s=0.04, itl_s=0.01)) as url:
        args = ["bench", url, "--model", "stub", "--concurrency", "2", "--requests", "8", "--warmup", "0"]
        r = CliRunner().invoke(
            app, [*args, "--output-len", "12", "--metrics-interval", "0.1", "--db", str(db)]
        )
        j = CliRunner().invoke(app, [*args, "--output-len", "12", "--db", str(db), "--json"])
    assert r.exit_code == 0 and "/metrics histograms, mean" in r.output, r.output
    point = json.loads(j.output)["points"][0]
    srv = point["server"]
    # the server's clock starts when it has the request, the client's when it sent it
    assert abs(srv["ttft_mean_ms"] - point["ttft_ms"]["mean"]) < 5.0, (srv, point["ttft_ms"])
    assert srv["itl_mean_ms"] == pytest.approx(point["tpot_ms"]["mean"], rel=0.1)
    assert srv["ttft_mean_ms"] >= 40.0 and srv["itl_mean_ms"] >= 10.0  # what the stub was told to wait


def test_a_server_that_queues_is_named_from_its_own_clock(tmp_path: Path) -> None:
    # Two slots for eight concurrent requests: six wait. The stub's queue-time histogram says
    # so, and diagnose reads it from the stored run.
    db = tmp_path / "runs.sqlite"
    with running_stub(StubConfig(ttft_s=0.02, itl_s=0.005, slots=2)) as url:
        load = ["--concurrency", "8", "--requests", "24", "--warmup", "0", "--output-len", "10"]
        r = CliRunner().invoke(
            app,
            ["bench", url, "--model", "stub", *load, "--metrics-interval", "0.05", "--db", str(db), "--json"],
        )
    assert r.exit_code == 0, r.output
    srv = json.loads(r.output)["points"][0]["server"]
    assert srv["max_waiting"] >= 4 and srv["max_running"] == 2
    assert srv["queue_mean_ms"] > 0.5 * srv["ttft_mean_ms"]  # 3 of 4 rounds wait for a slot
    d = CliRunner().invoke(app, ["diagnose", "1", "--db", str(db)])
    assert d.exit_code == 0, d.output
    assert "queue-bound" in d.output and "batch-capped" in d.output
