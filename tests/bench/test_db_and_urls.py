"""Bad runs files and bad URLs get one line and exit 2, never a traceback, never a run left
``running``; reading commands never change a SQLite file that is not gpusizer's, nor
gpusizer's own when there is nothing to repair (issue 15)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from gpusizer.cli.app import app
from gpusizer.store.runs import RequestRecord, RunStore

BENCH = ["--model", "m", "--concurrency", "1", "--requests", "1", "--warmup", "0"]


def _one_line(r: Result, *needles: str) -> str:
    """The result is exit 2 with one ``error:`` line on stderr and no traceback."""
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.output
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _foreign(tmp_path: Path) -> Path:
    db = tmp_path / "app.sqlite"
    with sqlite3.connect(db) as c:
        c.executescript(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'ada');"
        )
    c.close()
    return db


@pytest.mark.parametrize(
    "url, needle",
    [
        ("http://[::1", "not a valid URL"),
        ("http://127.0.0.1:99999", "not a valid URL"),
        ("ftp://127.0.0.1:8000", "not an http(s) URL"),
        ("127.0.0.1:8000", "not an http(s) URL"),
        ("http://", "names no host"),
        ("http://127.0.0.1:0", "port 0"),
        ("http://127.0.0.1:8000/v1?x=1", "query"),
    ],
)
def test_a_bad_url_is_one_line_and_stores_nothing(tmp_path: Path, url: str, needle: str) -> None:
    db = tmp_path / "runs.sqlite"
    _one_line(CliRunner().invoke(app, ["bench", url, *BENCH, "--db", str(db)]), "URL", needle)
    assert not db.exists()  # refused before the runs file was opened: no run left `running`


def test_diagnose_refuses_a_bad_live_url_in_one_line() -> None:
    _one_line(CliRunner().invoke(app, ["diagnose", "http://[::1"]), "TARGET")
    _one_line(CliRunner().invoke(app, ["diagnose", "1", "--metrics-url", "http://h:99999"]), "--metrics-url")


def test_a_folder_a_file_as_folder_and_a_pipe_are_refused_as_db(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    plain = tmp_path / "notes.txt"
    plain.write_text("mine")
    for cmd in (["bench", "http://127.0.0.1:9", *BENCH], ["runs"], ["diagnose", "1"], ["compare", "1"]):
        _one_line(CliRunner().invoke(app, [*cmd, "--db", str(tmp_path)]), "--db", "is a folder")
        _one_line(CliRunner().invoke(app, [*cmd, "--db", str(fifo)]), "--db", "not a regular file")  # no hang
        _one_line(CliRunner().invoke(app, [*cmd, "--db", str(plain / "runs.sqlite")]), "--db")
    assert plain.read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the permissions say")
def test_unreadable_and_unwritable_runs_files_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    RunStore(db).close()
    db.chmod(0o000)
    for cmd in (["bench", "http://127.0.0.1:9", *BENCH], ["runs"]):
        _one_line(CliRunner().invoke(app, [*cmd, "--db", str(db)]), "cannot be read")
    db.chmod(0o444)
    _one_line(
        CliRunner().invoke(app, ["bench", "http://127.0.0.1:9", *BENCH, "--db", str(db)]), "cannot be written"
    )
    assert CliRunner().invoke(app, ["runs", "--db", str(db)]).exit_code == 0  # reading needs no write
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    _one_line(
        CliRunner().invoke(app, ["bench", "http://127.0.0.1:9", *BENCH, "--db", str(folder / "r.sqlite")]),
        "not writable",
    )


def test_an_unwritable_db_is_one_line_whatever_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same refusals where the test cannot take permissions away (root): the OS's answer
    # to access() is faked, the path logic and the message are gpusizer's.
    db = tmp_path / "r.sqlite"
    RunStore(db).close()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode & os.W_OK else real(p, mode))
    _one_line(
        CliRunner().invoke(app, ["bench", "http://127.0.0.1:9", *BENCH, "--db", str(db)]), "cannot be written"
    )
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    _one_line(CliRunner().invoke(app, ["runs", "--db", str(db)]), "cannot be read")


@pytest.mark.parametrize(
    "cmd",
    [["runs"], ["runs", "1"], ["diagnose", "1"], ["compare", "1"], ["bench", "http://127.0.0.1:9", *BENCH]],
    ids=lambda c: c[0] + ("" if len(c) == 1 else "-" + c[1][:4]),
)
def test_a_sqlite_file_that_is_not_gpusizers_is_refused_untouched(tmp_path: Path, cmd: list[str]) -> None:
    db = _foreign(tmp_path)
    before = db.read_bytes()
    _one_line(CliRunner().invoke(app, [*cmd, "--db", str(db)]), "not gpusizer's", "users")
    assert db.read_bytes() == before  # no table added, no WAL switch (that is in the header)
    assert not Path(f"{db}-wal").exists()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        assert c.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["users"]


def test_reading_a_gpusizer_file_with_nothing_to_repair_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    s = RunStore(db)
    rec = RequestRecord(0, False, 0.0, 0.05, 0.5, 10, 8, [0.05] * 7)
    s.add_run(
        started_at="2026-12-01T00:00:00+00:00",
        url="http://x",
        model="m",
        api="completions",
        load="concurrency=1",
        settings={"concurrency": 1},
        records=[rec],
        summary={"completed": 1},
    )
    s.close()  # the last connection: SQLite folds the WAL into the file
    before = db.read_bytes()
    for cmd in (["runs"], ["runs", "1", "--json"], ["diagnose", "1"]):
        r = CliRunner().invoke(app, [*cmd, "--db", str(db)])
        assert r.exit_code == 0, r.output
    assert db.read_bytes() == before


def test_an_empty_file_is_not_read_as_runs(tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite"
    db.write_bytes(b"")
    _one_line(CliRunner().invoke(app, ["runs", "--db", str(db)]), "is empty")
    assert db.read_bytes() == b""
