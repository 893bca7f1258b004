"""bench → runs → compare against the scripted stub server: datasets, --duration, prompts
sized with /tokenize, and the stored runs listed, shown, exported and compared."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import numpy as np
from typer.testing import CliRunner

from gpusizer.bench.prompts import load_dataset, size_synthetic_prompt
from gpusizer.bench.stub import StubConfig
from gpusizer.cli.app import app
from gpusizer.store.runs import RunStore
from tests.bench.stubserver import running_stub


def _bench(url: str, db: Path, *extra: str) -> dict[str, object]:
    r = CliRunner().invoke(
        app,
        [
            "bench",
            url,
            "--model",
            "stub",
            "--warmup",
            "0",
            "--output-len",
            "8",
            "--db",
            str(db),
            "--json",
            *extra,
        ],
    )
    assert r.exit_code == 0, r.output
    return json.loads(r.output)  # type: ignore[no-any-return]


def test_dataset_prompts_are_sent_and_bad_lines_named(tmp_path: Path) -> None:
    ds = tmp_path / "prompts.jsonl"
    ds.write_text(
        json.dumps({"prompt": "Request 0. one two three four", "output_len": 5})
        + "\n\n"
        + json.dumps({"messages": [{"role": "user", "content": "Request 1. five six"}]})
        + "\n"
        + json.dumps(
            {"conversations": [{"from": "human", "value": "Request 2. seven"}, {"from": "gpt", "value": "x"}]}
        )
        + "\n"
    )
    prompts = load_dataset(ds)
    assert [p.output_len for p in prompts] == [5, None, None] and prompts[1].messages
    db = tmp_path / "r.sqlite"
    with running_stub(StubConfig()) as url:
        out = _bench(url, db, "--api", "chat", "--dataset", str(ds), "--concurrency", "1", "--requests", "3")
    assert out["points"][0]["completed"] == 3  # type: ignore[index]
    recs = RunStore(db).requests(1)
    assert [r.output_tokens for r in recs] == [5, 8, 8]  # the dataset's own output length wins
    assert [r.prompt_tokens for r in recs] == [6, 4, 3]  # the stub counts words

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"nothing": 1}\n')
    r = CliRunner().invoke(
        app, ["bench", "http://127.0.0.1:9", "-m", "x", "--concurrency", "1", "--dataset", str(bad)]
    )
    assert r.exit_code == 2 and "--dataset" in r.output and "line 2" in r.output


def test_duration_bounds_a_point(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with running_stub(StubConfig(itl_s=0.01)) as url:  # 8 tokens: ≈ 70 ms a request
        out = _bench(url, db, "--concurrency", "2", "--duration", "0.5")
    done = out["points"][0]["completed"]  # type: ignore[index]
    assert 6 <= done <= 20  # ≈ 2 × 0.5 s / 70 ms; new requests stop at 0.5 s


def test_burstiness_shapes_the_open_loop_arrivals(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with running_stub(StubConfig()) as url:
        for k in ("1", "0.25"):
            _bench(url, db, "--rate", "150", "--requests", "300", "--burstiness", k, "--output-len", "2")
        bad = CliRunner().invoke(app, ["bench", url, "--model", "stub", "--rate", "5", "--burstiness", "0"])
    assert bad.exit_code == 2 and "--burstiness" in bad.output and "Traceback" not in bad.output
    store = RunStore(db)
    cv = []
    for run in store.runs():
        starts = np.array(sorted(r.start_s for r in store.requests(run["id"])))
        gaps = np.diff(starts)
        assert 150 * 0.7 < 1 / gaps.mean() < 150 * 1.3  # the asked-for rate, on average
        cv.append(gaps.std() / gaps.mean())
    store.close()
    # gamma gaps of shape k have a coefficient of variation 1/sqrt(k): 1 for Poisson, 2 here
    assert 0.75 < cv[0] < 1.3 and cv[1] > 1.5, cv


def test_prompt_sized_to_exact_tokens_with_tokenize() -> None:
    with running_stub(StubConfig()) as url:
        sizing = size_synthetic_prompt(url, "stub", 300)
    assert sizing.tokens == 300 and sizing.source == "tokenizer endpoint"

    # a server without /tokenize: the length is an estimate, and says so
    def no_tokenize(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    est = size_synthetic_prompt("http://x", "m", 300, transport=httpx.MockTransport(no_tokenize))
    assert est.tokens is None and est.source.startswith("estimated")


def test_runs_list_show_export_and_compare(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with running_stub(StubConfig(itl_s=0.002, faults={3: "http500"})) as url:
        _bench(url, db, "--concurrency", "1,2", "--requests", "5")
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["runs", "--db", str(db), "--json"]).output)["runs"]
    assert [r["load"] for r in listed] == ["concurrency=1", "concurrency=2"]
    assert all(r["status"] == "complete" and r["completed"] == 4 for r in listed)
    table = runner.invoke(app, ["runs", "--db", str(db)])
    assert table.exit_code == 0 and "concurrency=2" in table.output

    rows = list(
        csv.DictReader(io.StringIO(runner.invoke(app, ["runs", "2", "--db", str(db), "--csv"]).output))
    )
    assert len(rows) == 5 and rows[3]["error"].startswith("HTTP 500") and float(rows[0]["ttft_s"]) > 0
    shown = json.loads(runner.invoke(app, ["runs", "2", "--db", str(db), "--json"]).output)
    assert shown["settings"]["concurrency"] == 2 and "api_key" not in shown["settings"]
    assert shown["server_metrics"] and shown["summary"]["failures"] == {"HTTP 500": 1}

    missing = runner.invoke(app, ["runs", "9", "--db", str(db)])
    assert missing.exit_code == 2 and "RUN" in missing.output and "1..2" in missing.output
    no_pred = runner.invoke(app, ["compare", "1", "--db", str(db)])
    assert no_pred.exit_code == 2 and "--predict-model" in no_pred.output

    cmp = runner.invoke(
        app,
        [
            "compare",
            "1",
            "2",
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
    comps = json.loads(cmp.output)["comparisons"]
    assert [c["run_id"] for c in comps] == [1, 2]
    tpot = next(r for r in comps[0]["rows"] if r["metric"] == "TPOT p50 ms")
    assert tpot["predicted"] > 0 and tpot["error_pct"] is not None
    # the prediction is now stored with the run, for `calibrate`
    again = runner.invoke(app, ["compare", "1", "--db", str(db), "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["comparisons"][0]["rows"] == comps[0]["rows"]


def test_bench_writes_an_html_report(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    out = tmp_path / "bench.html"
    with running_stub(StubConfig(itl_s=0.002, faults={2: "http500"})) as url:
        _bench(url, db, "--concurrency", "1,2", "--requests", "4", "--report", str(out))
    html = out.read_text()
    assert "gpusizer bench" in html and "concurrency=2" in html and "HTTP 500" in html
    assert "<svg" in html and "<script src" not in html and "<link" not in html  # self-contained
    notes = tmp_path / "notes.html"
    notes.write_text("mine")
    with running_stub(StubConfig()) as url:
        r = CliRunner().invoke(
            app,
            [
                "bench",
                url,
                "-m",
                "stub",
                "--concurrency",
                "1",
                "--requests",
                "1",
                "--db",
                str(db),
                "--report",
                str(notes),
            ],
        )
    assert r.exit_code == 2 and "--report" in r.output and notes.read_text() == "mine"


def test_a_damaged_runs_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "damaged.sqlite"
    with sqlite3.connect(db) as c:  # a runs table, but a requests table that lost its columns
        c.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '3');"
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, url TEXT NOT NULL,"
            " model TEXT NOT NULL, api TEXT NOT NULL, load TEXT NOT NULL, settings TEXT NOT NULL, summary TEXT,"
            " status TEXT, finished_at TEXT);"
            "INSERT INTO runs VALUES (1, 't', 'http://x', 'm', 'chat', 'rate=1', '{}', '{}', 'complete', NULL);"
            "CREATE TABLE requests (idx INTEGER);"
        )
    r = CliRunner().invoke(app, ["runs", "1", "--db", str(db)])
    assert r.exit_code == 2 and "--db" in r.output and "Traceback" not in r.output
    with sqlite3.connect(db) as c:  # the run the user had is still there
        assert c.execute("SELECT url FROM runs").fetchall() == [("http://x",)]
