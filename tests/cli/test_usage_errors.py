"""click's own parse errors through the console script: one line naming the option and
where to look, exit 2 — not a usage box (issue 15)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    (["fit", "qwen3-8b", "--tpp", "2"], "No such option: --tpp"),
    (["fit", "qwen3-8b", "--gpu"], "'--gpu' requires an argument"),
    (["plan", "qwen3-8b", "--ttft-ms", "nan"], "ttft_ms: must be a finite number"),
    (["plan", "qwen3-8b", "--headroom", "inf"], "headroom: must be a finite number"),
    (["simulate"], "Missing argument"),
]


@pytest.mark.parametrize(("args", "expect"), CASES)
def test_usage_errors_are_one_line(args: list[str], expect: str) -> None:
    code = "import sys; from gpusizer.cli.app import main; sys.argv = ['gpusizer', *sys.argv[1:]]; main()"
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr and "Usage:" not in r.stderr
