"""The final states a bench run can end in, and the heartbeat that tells a live run from a
dead one (issue 15), without subprocesses: a run whose store stops taking writes ends
``failed`` with one error line; the heartbeat moves with every request and between them;
``diagnose`` never calls an unfinished run healthy."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gpusizer.bench.client as client_module
from gpusizer.bench.client import BenchSettings, run_load
from gpusizer.bench.stub import StubConfig
from gpusizer.cli.app import app
from gpusizer.plan.diagnosis import RunEvidence, diagnose_runs
from gpusizer.store.runs import RequestRecord, RunStore
from tests.bench.stubserver import running_stub


def test_a_store_that_stops_taking_writes_ends_the_run_failed_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "r.sqlite"
    real = RunStore.add_request
    calls = {"n": 0}

    def flaky(self: RunStore, run_id: int, r: RequestRecord) -> None:
        calls["n"] += 1
        if calls["n"] > 3:  # the disk filled up, or another process held the lock too long
            raise sqlite3.OperationalError("database is locked")
        real(self, run_id, r)

    monkeypatch.setattr(RunStore, "add_request", flaky)
    with running_stub(StubConfig(itl_s=0.005)) as url:
        args = ["bench", url, "--model", "stub", "--concurrency", "2", "--requests", "50", "--warmup", "0"]
        r = CliRunner().invoke(app, [*args, "--output-len", "8", "--db", str(db)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert [ln for ln in r.stderr.splitlines() if ln.strip()] == [
        "error: --db: the runs file could not be read or written (database is locked)"
    ]
    monkeypatch.setattr(RunStore, "add_request", real)
    store = RunStore(db)
    (run,) = store.runs()
    assert run["status"] == "failed"  # not left `running`
    assert json.loads(run["summary"])["completed"] == len(store.requests(1)) == 3
    store.close()


def test_the_heartbeat_moves_with_each_request(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r.sqlite")
    run = store.start_run(
        started_at="t", url="http://x", model="m", api="completions", load="c=1", settings={}
    )

    def beat() -> float:
        return float(store.db.execute("SELECT heartbeat_at FROM runs WHERE id = ?", (run,)).fetchone()[0])

    first = beat()
    assert abs(first - time.time()) < 60
    store.db.execute("UPDATE runs SET heartbeat_at = 0 WHERE id = ?", (run,))
    store.db.commit()
    store.add_request(run, RequestRecord(0, False, 0.0, 0.1, 0.2, 3, 2, [0.1]))
    assert beat() >= first
    store.db.execute("UPDATE runs SET heartbeat_at = 0 WHERE id = ?", (run,))
    store.db.commit()
    store.heartbeat(run)
    assert beat() >= first
    store.close()


def test_a_long_point_beats_between_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "HEARTBEAT_S", 0.05)
    beats: list[float] = []
    with running_stub(StubConfig(ttft_s=0.4)) as url:  # one request, quiet for 0.4 s
        run_load(
            BenchSettings(url=url, model="stub", requests=1, warmup=0, concurrency=1, output_len=2),
            heartbeat=lambda: beats.append(time.monotonic()),
        )
    assert len(beats) >= 3  # alive while no request completed


def _evidence(status: str, completed: int = 20, failed: int = 0, cancelled: int = 0) -> RunEvidence:
    return RunEvidence(
        run_id=7,
        concurrency=4,
        rate=None,
        completed=completed,
        failed=failed,
        failures={},
        requests_per_s=2.0,
        output_tokens_per_s=100.0,
        ttft_p50_s=0.05,
        ttft_p95_s=0.06,
        tpot_p50_s=0.01,
        tpot_p95_s=0.011,
        status=status,
        cancelled=cancelled,
    )


@pytest.mark.parametrize("status", ["abandoned", "interrupted", "failed", "running"])
def test_diagnose_never_calls_an_unfinished_run_healthy(status: str) -> None:
    found = diagnose_runs([_evidence(status, cancelled=3)])
    verdicts = [d.verdict for d in found]
    assert f"run-{status}" in verdicts and "healthy" not in verdicts
    assert "3 cut off" in found[0].evidence if status == "interrupted" else True


def test_diagnose_says_when_nothing_was_measured() -> None:
    assert [d.verdict for d in diagnose_runs([_evidence("complete", completed=0)])] == ["no-data"]
    assert [d.verdict for d in diagnose_runs([_evidence("complete")])] == ["healthy"]
