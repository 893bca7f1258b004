"""The fit command as a user meets it: exit codes, one-line errors, JSON keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpusizer.cli.app import app
from tests.conftest import R1_QWEN_7B

runner = CliRunner()
REQUIRED_JSON = {
    "fits",
    "weights_gib",
    "kv_bytes_per_token",
    "kv_cache_gib",
    "kv_cache_tokens",
    "max_concurrency",
    "activation_gib",
    "non_torch_gib",
    "rule_of_thumb_gib",
}


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    p = tmp_path / "config.json"
    p.write_text(json.dumps(R1_QWEN_7B))
    return str(p)


def test_fits_exit_0_and_json(cfg: str) -> None:
    r = runner.invoke(
        app, ["fit", cfg, "--gpu-memory-gib", "80", "--context", "8k", "--users", "4", "--json"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data.keys() >= REQUIRED_JSON
    assert data["fits"] is True
    assert data["kv_bytes_per_token"] == 57344
    assert data["max_concurrency"] >= 4


def test_does_not_fit_exit_1(cfg: str) -> None:
    r = runner.invoke(app, ["fit", cfg, "--gpu-memory-gib", "16", "--context", "128k", "--users", "8"])
    assert r.exit_code == 1
    assert "DOES NOT FIT" in r.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tp", "3"], "tp"),
        (["--context", "lots"], "max_model_len"),
        (["--kv-dtype", "fp7"], "kv_dtype"),
        (["--quant", "awq5"], "quant"),
        (["--engine", "vllmx"], "engine"),
        (["--users", "0"], "users"),
        (["--gpu-memory-gib", "-3"], "gpu_memory_gib"),
    ],
)
def test_bad_input_exit_2_one_line(cfg: str, args: list[str], needle: str) -> None:
    base = ["fit", cfg] + ([] if "--gpu-memory-gib" in args else ["--gpu-memory-gib", "80"])
    r = runner.invoke(app, base + args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert "Traceback" not in r.output


def test_missing_gpu_is_bad_input(cfg: str) -> None:
    r = runner.invoke(app, ["fit", cfg])
    assert r.exit_code == 2
    assert "--gpu" in r.output


def test_fp8_on_ampere_is_refused_for_tensorrt_llm_and_noted_for_vllm() -> None:
    r = runner.invoke(
        app,
        ["fit", "deepseek-r1-distill-qwen-7b", "--gpu", "A100", "--quant", "fp8", "--engine", "tensorrt-llm"],
    )
    assert r.exit_code == 2
    assert "FP8 tensor cores" in r.output and "awq" in r.output
    r = runner.invoke(
        app, ["fit", "deepseek-r1-distill-qwen-7b", "--gpu", "A100", "--quant", "fp8", "--json"]
    )
    assert r.exit_code in (0, 1)
    assert any("weight-only" in n for n in json.loads(r.output)["notes"])


def test_tp_that_does_not_divide_heads_lists_valid_choices() -> None:
    r = runner.invoke(app, ["fit", "deepseek-r1", "--gpu", "H100", "--tp", "3"])
    assert r.exit_code == 2
    assert "accepted: 1, 2, 4, 8" in r.output
