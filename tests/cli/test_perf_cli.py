"""gpusizer perf as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gpusizer.cli.app import app

runner = CliRunner()


def test_perf_json_has_the_promised_fields() -> None:
    r = runner.invoke(
        app,
        [
            "perf",
            "deepseek-r1-distill-qwen-7b",
            "--gpu",
            "RTX 4090",
            "--batch",
            "1,8",
            "--input-len",
            "1k",
            "--output-len",
            "128",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [row["batch"] for row in data["rows"]] == [1, 8]
    for row in data["rows"]:
        assert {
            "ttft_ms",
            "tpot_ms",
            "prefill_tokens_per_s",
            "decode_tokens_per_s",
            "output_tokens_per_s",
            "bound",
        } <= row.keys()
    one, eight = data["rows"]
    assert eight["output_tokens_per_s"] > one["output_tokens_per_s"]
    assert one["bound"] == "memory"  # batch-1 decode of a dense 7B model reads weights


def test_perf_writes_a_roofline_svg(tmp_path: Path) -> None:
    target = tmp_path / "roof.svg"
    r = runner.invoke(
        app,
        [
            "perf",
            "llama-2-7b",
            "--gpu",
            "RTX 3090",
            "--engine",
            "llamacpp",
            "--quant",
            "q4_0",
            "--plot",
            str(target),
        ],
    )
    assert r.exit_code == 0, r.output
    svg = target.read_text()
    assert svg.startswith("<svg") and "ridge" in svg and "B=1" in svg
    assert "±" in r.output  # a fitted engine × GPU class carries its uncertainty band


def test_perf_bad_input() -> None:
    r = runner.invoke(app, ["perf", "llama-2-7b", "--gpu", "RTX 3090", "--batch", "one"])
    assert r.exit_code == 2 and "batch: cannot read 'one'" in r.output
    r = runner.invoke(app, ["perf", "llama-2-7b", "--gpu", "RTX 3090", "--link", "carrier-pigeon"])
    assert r.exit_code == 2 and "link: unknown link 'carrier-pigeon'" in r.output
