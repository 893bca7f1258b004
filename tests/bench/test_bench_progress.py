"""bench shows rich progress on stderr for a sweep, naming each point's place in it, and
none with --json or when stderr is not a terminal (issue 14)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import gpusizer.cli.bench as bench_cli
from gpusizer.bench.stub import StubConfig
from gpusizer.cli.app import app
from tests.bench.stubserver import running_stub

ARGS = ["--model", "stub", "--warmup", "0", "--output-len", "8", "--requests", "3", "--concurrency", "1,2"]


def _run(url: str, db: Path, stderr: io.StringIO, *, terminal: bool, extra: tuple[str, ...] = ()) -> str:
    console = Console(file=stderr, force_terminal=terminal, width=100)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench_cli, "err_console", console)
        r = CliRunner().invoke(app, ["bench", url, *ARGS, "--db", str(db), *extra])
    assert r.exit_code == 0, r.output
    return stderr.getvalue()


def test_sweep_progress_on_a_terminal_and_none_otherwise(tmp_path: Path) -> None:
    with running_stub(StubConfig(itl_s=0.002)) as url:
        shown = _run(url, tmp_path / "a.sqlite", io.StringIO(), terminal=True)
        assert "point 1/2 · concurrency=1" in shown
        assert "point 2/2 · concurrency=2" in shown
        as_json = _run(url, tmp_path / "b.sqlite", io.StringIO(), terminal=True, extra=("--json",))
        assert "point 1/2" not in as_json
        piped = _run(url, tmp_path / "c.sqlite", io.StringIO(), terminal=False)
        assert "point 1/2" not in piped
