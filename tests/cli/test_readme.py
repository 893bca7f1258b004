"""The README's two set-up commands stay true: the test command is the one CI runs, and
the main-job command's gpusizer invocation works on the built-in catalogue."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpusizer.cli.app import app

ROOT = Path(__file__).resolve().parents[2]


def _bash_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = next(b for b in _bash_blocks() if "pytest" in b)
    assert test_cmd.strip() in ci


def test_readme_main_command_runs() -> None:
    main = _bash_blocks()[0].strip()
    invocation = main.split(".venv/bin/gpusizer ", 1)[1]
    result = CliRunner().invoke(app, shlex.split(invocation))
    assert result.exit_code in (0, 1), result.output  # a verdict, not an error
    assert "Top picks" in result.output or "No feasible plan" in result.output


# --- Every gpusizer command in a fenced README block is either run by a test or skipped
# here with the reason (issue 14). A new README command that is neither fails
# test_every_readme_command_is_run_or_skipped_with_a_reason.

# Commands that need something a unit test cannot have: the reason says where it is covered.
SKIPPED = {
    r"^gpusizer bench http": "needs a live OpenAI-compatible server; tests/bench/test_bench_llamacpp.py runs "
    "bench against a real llama.cpp server",
    r"^gpusizer diagnose http": "needs a live server's /metrics; tests/bench/test_bench_llamacpp.py runs it",
    r"^gpusizer (compare 3|diagnose 3 4 5)": "needs stored bench runs 3-5; tests/bench/test_runs_cli.py and "
    "test_bench_llamacpp.py run compare/diagnose on runs they record",
    r"^gpusizer calibrate --profile": "needs stored bench runs to fit; tests/bench/test_bench_llamacpp.py "
    "runs calibrate --profile on its own runs",
    r"^gpusizer runs$": "needs a runs file: on a fresh machine `runs` exits 2 and says to run `bench` first; "
    "tests/bench/test_runs_cli.py lists, shows and exports runs it recorded",
    r"--profile h100-vllm": "needs the profile that `calibrate --profile h100-vllm` writes from stored runs",
}


def _all_commands() -> list[str]:
    """Every gpusizer command line in any fenced block (```bash or plain), continuation
    lines joined, trailing comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)\n```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if ".venv/bin/gpusizer " in line:
                line = "gpusizer " + line.split(".venv/bin/gpusizer ", 1)[1]
            if line.startswith("gpusizer "):
                out.append(_norm(line))
    return out


def _norm(line: str) -> str:
    return shlex.join(shlex.split(line, comments=True))


def _covered_by_tour(line: str) -> bool:
    from tests.cli.test_readme_tour import TOUR

    return line in {_norm(t) for t in TOUR}


def _skip_reason(line: str) -> str | None:
    return next((why for pattern, why in SKIPPED.items() if re.search(pattern, line)), None)


COMMANDS = _all_commands()
RUN_HERE = [c for c in COMMANDS if not _covered_by_tour(c) and _skip_reason(c) is None]


def test_every_readme_command_is_run_or_skipped_with_a_reason() -> None:
    assert len(COMMANDS) >= 20  # the parser found the tour, the runs block and the set-up lines
    for line in COMMANDS:
        covered = _covered_by_tour(line) or line in RUN_HERE or _skip_reason(line)
        assert covered, line
    for pattern in SKIPPED:  # a skip that matches nothing is stale
        assert any(re.search(pattern, c) for c in COMMANDS), pattern


def _fixtures(where: Path) -> None:
    """The local files the README's examples name, built small: a model folder with a
    config.json, two GGUF files, a request trace."""
    import json

    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter

    from gpusizer.catalog.load import model_catalogue, model_config

    entry = next(e for e in model_catalogue() if e.id == "Qwen/Qwen2.5-0.5B")
    (where / "my-model").mkdir()
    (where / "my-model" / "config.json").write_text(json.dumps(model_config(entry)))
    for name in ("model.Q4_K_M.gguf", "model.Q4_0.gguf"):
        w = GGUFWriter(str(where / name), "llama")
        w.add_block_count(2)
        w.add_embedding_length(64)
        w.add_feed_forward_length(128)
        w.add_head_count(4)
        w.add_head_count_kv(2)
        w.add_context_length(2048)
        w.add_vocab_size(100)
        w.add_tensor(
            "token_embd.weight", np.zeros((100, 64), dtype=np.float16), raw_dtype=GGMLQuantizationType.F16
        )
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    rows = [{"arrival_s": i * 0.5, "input_tokens": 512, "output_tokens": 64} for i in range(40)]
    (where / "requests.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.mark.parametrize("line", RUN_HERE)
def test_readme_command_runs_as_written(line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = shlex.split(line)[1:]
    r = CliRunner().invoke(app, args)
    assert r.exit_code in (0, 1), f"{line}\n{r.output}"  # a verdict, never bad input
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    if "--plot" in args:
        assert list((tmp_path / "plots").glob("*.svg"))
