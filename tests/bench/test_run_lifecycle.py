"""A bench run always ends in a final state (issue 15), tested with real processes, real
signals and a real SQLite file: kill -9 leaves a run that the next reader closes as
``abandoned`` with its summary, and ``runs``, ``diagnose`` and ``compare`` all read it;
SIGTERM and Ctrl-C are handled alike, the requests in flight are stored as ``cancelled``
(not as failures); a second Ctrl-C ends the process at once; a signal is never ignored."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpusizer.bench.lifecycle import open_runs
from gpusizer.bench.stub import StubConfig
from gpusizer.cli.app import app
from gpusizer.errors import BadInputError
from gpusizer.store.runs import STALE_AFTER_S, RequestRecord, RunStore
from tests.bench.stubserver import running_stub

# Each request streams 40 tokens 20 ms apart: about 0.8 s, so several are always in flight.
SLOW = StubConfig(itl_s=0.02)


@pytest.fixture(scope="module")
def slow_stub() -> Iterator[str]:
    with running_stub(SLOW) as url:
        yield url


def _bench(url: str, db: Path, *load: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-c", "from gpusizer.cli.app import main; main()", "bench", url, "--model", "stub"]
    cmd += ["--warmup", "0", "--output-len", "40", "--metrics-interval", "0.2", "--db", str(db), *load]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stored(db: Path) -> int:
    """Requests in the file, read with a plain read-only connection (no gpusizer code)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            return int(c.execute("SELECT COUNT(*) FROM requests").fetchone()[0])
    except sqlite3.Error:
        return 0


def _wait_for(db: Path, n: int, proc: subprocess.Popen[str], within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while _stored(db) < n:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"fewer than {n} requests stored in {within_s} s"
        time.sleep(0.05)


def _raw_run(db: Path) -> tuple[str, str | None]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        status, summary = c.execute("SELECT status, summary FROM runs WHERE id = 1").fetchone()
    return status, summary


def test_kill_9_leaves_a_run_that_runs_diagnose_and_compare_all_read(slow_stub: str, tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    proc = _bench(slow_stub, db, "--concurrency", "4", "--requests", "1000")
    _wait_for(db, 6, proc)
    proc.kill()  # SIGKILL: no handler runs, nothing is closed
    proc.wait(timeout=30)
    assert _raw_run(db) == ("running", None)  # what the killed process left behind

    runner = CliRunner()
    shown = runner.invoke(app, ["runs", "1", "--db", str(db), "--json"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    ok = sum(r["error"] is None for r in doc["requests"])
    assert doc["status"] == "abandoned" and doc["finished_at"]
    assert doc["summary"]["completed"] == ok >= 6 and doc["summary"]["failed"] == 0
    assert _raw_run(db)[0] == "abandoned"  # closed in the file, once, for every later reader

    table = runner.invoke(app, ["runs", "1", "--db", str(db)])
    assert table.exit_code == 0 and "abandoned" in table.output and "KeyError" not in table.output
    listed = runner.invoke(app, ["runs", "--db", str(db)])
    assert listed.exit_code == 0 and "abandoned" in listed.output

    diag = runner.invoke(app, ["diagnose", "1", "--db", str(db), "--json"])
    assert diag.exit_code == 0, diag.output
    verdicts = [d["verdict"] for d in json.loads(diag.stdout)["diagnosis"]]
    assert "run-abandoned" in verdicts and "healthy" not in verdicts

    cmp = runner.invoke(
        app,
        [
            "compare",
            "1",
            "--db",
            str(db),
            "--predict-model",
            "deepseek-r1-distill-qwen-7b",
            "--gpu",
            "H100",
            "--json",
        ],
    )
    assert cmp.exit_code == 0, cmp.output
    assert [c["run_id"] for c in json.loads(cmp.stdout)["comparisons"]] == [1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_in_rate_mode_stores_the_requests_in_flight_as_cancelled(
    slow_stub: str, tmp_path: Path, sig: signal.Signals
) -> None:
    db = tmp_path / "runs.sqlite"
    proc = _bench(slow_stub, db, "--rate", "20", "--requests", "1000")
    _wait_for(db, 5, proc)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, out
    assert "interrupted" in out and "Traceback" not in out
    assert "cancelled" in out and "not counted as failures" in out  # the table's column, the note
    store = RunStore(db)
    (run,) = store.runs()
    recs = store.requests(1)
    store.close()
    assert run["status"] == "interrupted"
    cut = [r for r in recs if r.cancelled]
    assert cut, "at 20 requests/s of 0.8 s each, some were in flight"
    assert all(r.error and r.error.startswith("cancelled") for r in cut)
    assert not [r.error for r in recs if not r.cancelled and r.error]  # no ReadError "failures"
    summary = json.loads(run["summary"])
    assert summary["failed"] == 0 and summary["failures"] == {}
    assert summary["cancelled"] == len(cut) and summary["completed"] == len(recs) - len(cut)
    assert summary["goodput"] == 1.0  # the cut-off requests are not held against the server


def test_a_second_ctrl_c_ends_the_process_at_once_and_the_run_is_closed(
    slow_stub: str, tmp_path: Path
) -> None:
    db = tmp_path / "runs.sqlite"
    proc = _bench(slow_stub, db, "--concurrency", "8", "--requests", "1000")
    _wait_for(db, 4, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    t = time.monotonic()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert time.monotonic() - t < 15 and "Traceback" not in out
    store = open_runs(db, write=False)  # the next reader sums up what the handler had no time for
    (run,) = store.runs()
    stored_ok = sum(r.error is None for r in store.requests(1))
    store.close()
    assert run["status"] == "interrupted"
    assert json.loads(run["summary"])["completed"] == stored_ok >= 4


@pytest.mark.parametrize("delay_s", [0.0, 0.15, 0.4, 0.9])
def test_ctrl_c_is_never_ignored(slow_stub: str, tmp_path: Path, delay_s: float) -> None:
    # From the moment the runs file exists (store open, prompt sizing, the first requests…)
    # one Ctrl-C ends the bench with 130 and leaves no run `running`.
    db = tmp_path / "runs.sqlite"
    proc = _bench(slow_stub, db, "--concurrency", "2", "--requests", "1000")
    deadline = time.monotonic() + 60
    while not db.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    try:
        store = open_runs(db, write=False)
    except BadInputError as exc:  # stopped before it had created its tables: nothing to close
        assert "is empty" in exc.message
        return
    assert all(r["status"] != "running" for r in store.runs())
    store.close()


def test_sigterm_while_another_process_holds_the_write_lock_still_closes_the_run(
    slow_stub: str, tmp_path: Path
) -> None:
    db = tmp_path / "runs.sqlite"
    proc = _bench(slow_stub, db, "--concurrency", "4", "--requests", "1000")
    _wait_for(db, 4, proc)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a reader-writer elsewhere holds the lock for 2 s
    proc.send_signal(signal.SIGTERM)
    time.sleep(2.0)
    holder.execute("COMMIT")
    holder.close()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    assert _raw_run(db)[0] == "interrupted"


# --- recognising a dead run, without processes -------------------------------------------


def _rec(i: int) -> RequestRecord:
    return RequestRecord(i, False, i * 0.1, i * 0.1 + 0.05, i * 0.1 + 0.5, 10, 8, [0.05] * 7)


def test_a_run_is_stale_by_its_dead_pid_or_its_old_heartbeat(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    s = RunStore(db)
    kw = {"url": "http://x", "model": "m", "api": "completions", "load": "concurrency=1", "settings": {}}
    mine = s.start_run(started_at="2026-01-01T00:00:00+00:00", **kw)  # this process: alive
    dead = s.start_run(started_at="2026-01-01T00:00:00+00:00", **kw)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    s.db.execute("UPDATE runs SET pid = ? WHERE id = ?", (int(gone.stdout), dead))
    elsewhere = s.start_run(started_at="2026-01-01T00:00:00+00:00", **kw)
    s.db.execute(
        "UPDATE runs SET host = 'another-host', heartbeat_at = ? WHERE id = ?", (time.time() - 60, elsewhere)
    )
    silent = s.start_run(started_at="2026-01-01T00:00:00+00:00", **kw)
    s.db.execute(
        "UPDATE runs SET host = 'another-host', heartbeat_at = ? WHERE id = ?",
        (time.time() - STALE_AFTER_S - 5, silent),
    )
    busy = s.start_run(started_at="2026-01-01T00:00:00+00:00", **kw)  # alive here, quiet for 10 min
    s.db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time() - 600, busy))
    reused = s.start_run(
        started_at="2026-01-01T00:00:00+00:00", **kw
    )  # "alive", silent for 2 h: a reused pid
    s.db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time() - 7200, reused))
    legacy = s.start_run(started_at="2026-01-01T00:00:00+00:00", **kw)  # a run from before the heartbeat
    s.db.execute("UPDATE runs SET pid = NULL, host = NULL, heartbeat_at = NULL WHERE id = ?", (legacy,))
    fresh_legacy = s.start_run(started_at=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), **kw)
    s.db.execute("UPDATE runs SET pid = NULL, host = NULL, heartbeat_at = NULL WHERE id = ?", (fresh_legacy,))
    s.db.commit()
    s.add_request(dead, _rec(0))
    s.db.execute(
        "UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), dead)
    )  # a fresh beat: the pid decides
    s.db.commit()
    assert sorted(s.stale_runs()) == [dead, silent, reused, legacy]
    s.close()

    reader = open_runs(db, write=False)  # closes them, with their summaries
    status = {r["id"]: r["status"] for r in reader.runs()}
    assert [status[i] for i in (mine, dead, elsewhere, silent, busy, reused, legacy, fresh_legacy)] == [
        "running",
        "abandoned",
        "running",
        "abandoned",
        "running",
        "abandoned",
        "abandoned",
        "running",
    ]
    assert json.loads(reader.run(dead)["summary"])["completed"] == 1  # type: ignore[index]
    reader.close()


def test_a_read_only_file_gets_abandoned_runs_closed_in_memory_only(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may write a read-only file")
    db = tmp_path / "r.sqlite"
    s = RunStore(db)
    run = s.start_run(started_at="t", url="http://x", model="m", api="completions", load="c=1", settings={})
    s.db.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (run,))
    s.db.commit()
    s.close()
    db.chmod(0o444)
    before = db.read_bytes()
    reader = open_runs(db, write=False)
    assert reader.run(run)["status"] == "abandoned"  # type: ignore[index]
    reader.close()
    assert db.read_bytes() == before


def test_an_interrupted_command_exits_130_with_its_output_even_if_another_ctrl_c_comes() -> None:
    # the race behind a flaky second-Ctrl-C run: the first Ctrl-C was handled and the
    # command was exiting when the second landed in Python's shutdown, which had reset the
    # handlers to the default (exit -2, not 130)
    code = (
        "import os, signal\n"
        "from gpusizer.bench.interrupt import Interrupt\n"
        "i = Interrupt()\n"
        "with i.installed():\n"
        "    i.handle(signal.SIGINT)\n"
        "    print('summary table')\n"
        "    i.exit_now()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout == "summary table\n"
