"""Hypothesis over the options of ``bench``, ``runs``, ``diagnose`` and ``compare`` (issue 15):
whatever a careless or hostile user types, the command exits 0, 1 or 2, an error is one
``error:`` line (or click's own usage message where click cannot parse the command line at
all: an unknown option, one without its value), there is no traceback and no hang.

Fast by construction: the servers are the scripted stub (in this process) and a closed port
(connection refused at once); valid loads are a few requests of a few tokens; arrival rates
are high. 200 generated cases per command."""

from __future__ import annotations

import faulthandler
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.main import get_command

from gpusizer.bench.stub import StubConfig
from gpusizer.cli.app import app
from gpusizer.store.runs import RequestRecord, RunStore
from tests.bench.stubserver import running_stub

CASES = settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every CI run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CASE_LIMIT_S = 30.0  # one case taking longer is a hang
DEAD = "http://127.0.0.1:9"
COMMAND = get_command(
    app
)  # built once: typer rebuilds the click command on every invoke (~0.1 s)  # the discard port: nothing listens, connecting fails at once


class World:
    """The files and servers the generated options point at."""

    def __init__(self, root: Path, stub: str) -> None:
        self.stub = stub
        self.root = root
        self.db = root / "runs.sqlite"
        store = RunStore(self.db)
        rec = RequestRecord(0, False, 0.0, 0.05, 0.5, 10, 8, [0.05] * 7)
        kw = {"url": stub, "model": "stub", "api": "completions", "load": "concurrency=1"}
        settings_ = {"concurrency": 1, "output_len": 8, "input_len": 10}
        store.add_run(
            started_at="2026-12-01T00:00:00+00:00", settings=settings_, records=[rec], summary={}, **kw
        )
        dead = store.start_run(started_at="2026-12-01T00:00:00+00:00", settings=settings_, **kw)
        store.add_request(dead, rec)
        store.db.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (dead,))  # a bench killed -9
        store.db.commit()
        store.close()
        self.foreign = root / "app.sqlite"
        with sqlite3.connect(self.foreign) as c:
            c.execute("CREATE TABLE users (id INTEGER)")
        c.close()
        self.fifo = root / "pipe"
        os.mkfifo(self.fifo)
        self.text = root / "notes.txt"
        self.text.write_text("not a database\n" * 10)
        self.dataset = root / "prompts.jsonl"
        self.dataset.write_text('{"prompt": "hello there", "output_len": 2}\n{"prompt": "hi"}\n')
        self.bad_dataset = root / "bad.jsonl"
        self.bad_dataset.write_text("{not json\n")
        self.deep_dataset = root / "deep.jsonl"
        self.deep_dataset.write_text("[" * 100_000 + "]" * 100_000 + "\n")
        self.foreign_before = self.foreign.read_bytes()

    def dbs(self) -> st.SearchStrategy[str]:
        r = self.root
        return st.sampled_from(
            [
                *(
                    str(self.db),
                    str(self.foreign),
                    str(r),
                    str(self.fifo),
                    str(self.text),
                    str(r / "new.sqlite"),
                ),
                *(str(self.text / "x.sqlite"), "", str(r / "missing" / "deeper" / "r.sqlite")),
            ]
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("fuzz")
    with running_stub(StubConfig()) as url, pytest.MonkeyPatch.context() as mp:
        # without --db (or with an empty one) the commands use the default file: here, never the user's
        import gpusizer.cli.bench
        import gpusizer.cli.diagnose
        import gpusizer.cli.runs

        for module in (gpusizer.cli.bench, gpusizer.cli.runs, gpusizer.cli.diagnose):
            mp.setattr(module, "DEFAULT_DB", root / "default" / "runs.sqlite")
        yield World(root, url)


def _check(argv: list[str]) -> Result:
    faulthandler.dump_traceback_later(CASE_LIMIT_S * 4, exit=True)  # a real hang ends the run, loudly
    t = time.monotonic()
    try:
        r = CliRunner().invoke(COMMAND, argv)
    finally:
        faulthandler.cancel_dump_traceback_later()
    took = time.monotonic() - t
    assert took < CASE_LIMIT_S, (argv, took)
    assert r.exception is None or isinstance(r.exception, SystemExit), (argv, repr(r.exception))
    assert r.exit_code in (0, 1, 2), (argv, r.exit_code, r.output)
    assert "Traceback" not in r.output, (argv, r.output)
    event(f"{argv[0]} exit {r.exit_code}" + (" (usage)" if "Usage:" in r.stderr else ""))
    if os.environ.get("FUZZ_WHY"):
        event(f"{argv[0]}: " + (r.stderr.strip().splitlines() or [""])[-1][:50])
    if r.exit_code == 2:
        err = [ln for ln in r.stderr.splitlines() if ln.strip()]
        if err and err[0].startswith("Usage:"):
            # click's own parse errors (an option it does not know, one missing its value); every
            # value gpusizer reads, numbers included, is refused in one line of its own
            assert any(m in r.stderr for m in ("No such option", "requires an argument", "Missing")), r.stderr
            assert sum("Error" in ln for ln in err) == 1, (argv, r.stderr)
        else:
            assert len(err) == 1 and err[0].startswith("error: "), (argv, r.stderr)
    return r


Table = list[tuple[str, list[str], list[str]]]  # option, values that are fine, values that are not


def _options(data: st.DataObject, table: Table) -> list[str]:
    """Most options fine or left out, one or two of them (sometimes none) broken: so both the
    refusals and the measurements are reached."""
    how_many = [0, 0, 0, 0, 1, 1, 1, 2][data.draw(st.integers(0, 7), "how many broken")]
    names = [name for name, _, _ in table]
    broken = {names[data.draw(st.integers(0, len(names) - 1), "broken")] for _ in range(how_many)}
    argv: list[str] = []
    for name, good, bad in table:
        if name in broken and bad:
            argv += [name, data.draw(st.sampled_from(bad), name)]
        elif good and data.draw(st.booleans(), f"use {name}"):
            value = data.draw(st.sampled_from(good), name)
            argv += [name] if value == "" and name.startswith("--") and not good[0] else [name, value]
    return argv


def _flag(name: str) -> st.SearchStrategy[list[str]]:
    return st.sampled_from([[], [name]])


NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1e309", "abc", "", " ", "0x10", "1,2"]


def _pick(
    data: st.DataObject,
    label: str,
    good: st.SearchStrategy[str],
    bad: st.SearchStrategy[str],
    bad_in: int = 4,
) -> str:
    """``bad`` one time in ``bad_in``, else ``good``."""
    return data.draw(bad if data.draw(st.integers(1, bad_in), label) == bad_in else good, label)


def _url(data: st.DataObject, w: World) -> str:
    good = st.sampled_from([w.stub, w.stub, w.stub + "/v1", w.stub + "/v1/", DEAD])
    bad = st.one_of(
        st.sampled_from(["http://[::1", "http://127.0.0.1:99999", "http://:80", "ftp://x", "localhost:8000"]),
        st.sampled_from(["http://h:0", "http://127.0.0.1:8000/v1?x=1", "http://exa mple", "http://\x00"]),
        st.text(max_size=12),
    )
    return _pick(data, "url", good, bad)


def _db(data: st.DataObject, w: World, *, new_ok: bool = False) -> list[str]:
    good = [str(w.db)] + [str(w.root / "new.sqlite")] * new_ok
    r = w.root
    bad = [
        str(w.foreign),
        str(r),
        str(w.fifo),
        str(w.text),
        str(w.text / "x.sqlite"),
        "",
        str(r / "no" / "r.sqlite"),
    ]
    return ["--db", _pick(data, "--db", st.sampled_from(good), st.sampled_from(bad))]


@given(data=st.data())
@CASES
def test_bench_options(world: World, data: st.DataObject) -> None:
    w = world
    argv = [
        "bench",
        _url(data, w),
        "--model",
        _pick(data, "--model", st.just("stub"), st.sampled_from(["", "m/x"])),
    ]
    load = _pick(
        data,
        "load",
        st.one_of(
            st.lists(st.integers(1, 3), min_size=1, max_size=2).map(
                lambda c: "--concurrency=" + ",".join(map(str, c))
            ),
            st.sampled_from(["--rate=200", "--rate=500,1000"]),
        ),
        st.sampled_from(["", "--concurrency=1 --rate=100", "--concurrency=", "--concurrency=0,-1"])
        | st.sampled_from(["nan", "inf", "0", "-3", "1e7", "x"]).map(lambda v: "--rate=" + v),
    )
    argv += load.split()
    table: Table = [
        ("--requests", ["1", "2", "3"], ["0", "-1", "x", "10000001"]),
        ("--api", ["completions", "chat"], ["CHAT", "x", ""]),
        ("--burstiness", ["1", "0.5", "50"], ["0", "nan", "-1", "200", "inf"]),
        ("--input-len", ["1", "4", "16"], ["0", "-5", "1.5", "32x", "nan", "9" * 30, ""]),
        ("--output-len", ["1", "4"], ["0", "-1", "nan", "x"]),
        ("--warmup", ["0", "1"], ["-1", "10001", "x"]),
        ("--duration", ["0.5", "5"], ["0", "-1", "nan", "inf", "1e9", "x"]),
        ("--timeout-s", ["5", "2"], ["0", "nan", "inf", "-1", "4000"]),
        ("--metrics-interval", ["0", "0.1"], ["nan", "-1", "1e9"]),
        ("--slo-ttft-ms", ["500"], NUMBERS),
        ("--slo-tpot-ms", ["50"], ["nan", "-1", "0", "inf"]),
        ("--api-key-env", ["HOME"], ["GPUSIZER_FUZZ_UNSET_VAR", ""]),
        (
            "--dataset",
            [str(w.dataset)],
            [str(w.bad_dataset), str(w.deep_dataset), str(w.fifo), str(w.root), "/nope"],
        ),
        ("--predict-model", [], ["no-such-model", str(w.text)]),
        ("--gpus", [], ["0", "-1", "x", "5000"]),
    ]
    argv += _options(data, table)
    if "--requests" not in argv:
        argv += ["--requests", "2"]  # bounded: a fuzz case is a few requests at most
    argv += _db(data, w, new_ok=True) + data.draw(_flag("--json"))
    r = _check(argv)
    if r.exit_code in (0, 1) and "--json" in argv:
        json.loads(r.stdout)  # a measurement's JSON stays parseable, the error lines go to stderr
    assert w.foreign.read_bytes() == w.foreign_before


RUN_IDS_GOOD = ["1", "2"]
RUN_IDS_BAD = ["0", "-1", "99", "9" * 25, "x", "", "1.5"]


@given(data=st.data())
@CASES
def test_runs_options(world: World, data: st.DataObject) -> None:
    w = world
    argv = ["runs"]
    argv += data.draw(
        st.one_of(
            st.just([]),
            st.sampled_from(RUN_IDS_GOOD).map(lambda v: [v]),
            st.sampled_from(RUN_IDS_BAD).map(lambda v: [v]),
        )
    )
    argv += _db(data, w) + data.draw(_flag("--json")) + data.draw(_flag("--csv"))
    r = _check(argv)
    if r.exit_code == 0 and "--json" in argv:
        json.loads(r.stdout)
    assert w.foreign.read_bytes() == w.foreign_before


@given(data=st.data())
@CASES
def test_diagnose_options(world: World, data: st.DataObject) -> None:
    w = world
    target = st.one_of(
        st.lists(st.sampled_from(RUN_IDS_GOOD), min_size=1, max_size=2),
        st.lists(st.sampled_from(RUN_IDS_GOOD + RUN_IDS_BAD), min_size=1, max_size=3),
        st.sampled_from([w.stub, w.stub + "/v1", DEAD, "http://[::1", "http://h:99999", "ftp://x"]).map(
            lambda u: [u]
        ),
    )
    argv = ["diagnose", *data.draw(target, "targets")]
    table: Table = [
        ("--metrics-url", [w.stub], [DEAD, "http://[::1", "x"]),
        ("--slo-ttft-ms", ["100", "0.5"], NUMBERS),
        ("--slo-tpot-ms", ["100", "0.5"], NUMBERS),
        ("--timeout-s", ["1", "2"], ["0", "nan", "301", "x"]),
    ]
    argv += _options(data, table) + _db(data, w) + data.draw(_flag("--json"))
    r = _check(argv)
    if r.exit_code == 0 and "--json" in argv:
        json.loads(r.stdout)
    assert w.foreign.read_bytes() == w.foreign_before


@given(data=st.data())
@CASES
def test_compare_options(world: World, data: st.DataObject) -> None:
    w = world
    runs = data.draw(
        st.one_of(
            st.lists(st.sampled_from(RUN_IDS_GOOD), min_size=1, max_size=2),
            st.lists(st.sampled_from(RUN_IDS_BAD), max_size=2),
        ),
        "runs",
    )
    argv = ["compare", *runs]
    table: Table = [
        ("--predict-model", ["deepseek-r1-distill-qwen-7b"], ["nope", str(w.text), str(w.fifo), ""]),
        ("--gpu", ["H100", "RTX 4090"], ["nope", ""]),
        ("--gpus", ["1", "2"], ["0", "-1", "x", "5000"]),
        ("--engine", ["vllm", "sglang", "llamacpp"], ["nope", ""]),
    ]
    argv += _options(data, table) + _db(data, w) + data.draw(_flag("--json"))
    r = _check(argv)
    if r.exit_code == 0 and "--json" in argv:
        json.loads(r.stdout)
    assert w.foreign.read_bytes() == w.foreign_before
