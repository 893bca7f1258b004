"""Bad input to fit, perf and simulate is one line on stderr and exit status 2 — never a
traceback or click's usage box (issue 15), and the names users type resolve (issue 14)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gpusizer.cli.app import app

runner = CliRunner()
SMALL = ["qwen2.5-0.5b-instruct", "--gpu", "H100"]


def _one_line_error(args: list[str]) -> str:
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output and "Usage:" not in r.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["simulate", *SMALL, "--rate", "1", "--slo-ttft-ms", "nan"],
            "ttft_ms: must be a finite number",
        ),
        (["simulate", *SMALL, "--rate", "1", "--slo-ttft-ms", "-5"], "ttft_ms: must be in (0"),
        (["simulate", *SMALL, "--rate", "1", "--slo-tpot-ms", "inf"], "tpot_ms: must be a finite"),
        (["simulate", *SMALL, "--rate", "1", "--seed", "-1"], "seed: must be 0..4294967295"),
        (["simulate", *SMALL, "--rate", "nan"], "rate: must be a finite number"),
        (["perf", *SMALL, "--spec-tokens", "2", "--spec-accept", "3.5"], "spec_accept: must be 1..3"),
        (["simulate", *SMALL, "--rate", "1", "--spec-accept", "2"], "spec_accept: needs spec_tokens"),
        (["perf", *SMALL, "--spec-tokens", "40"], "spec_tokens: must be"),
        (["simulate", *SMALL, "--rate", "inf", "--duration", "10"], "rate: must be a finite"),
        (["simulate", *SMALL, "--rate", "1", "--burstiness", "0"], "burstiness: must be in (0"),
        (["simulate", *SMALL, "--rate", "1", "--think-time-s", "-1"], "think_time_s: must be in [0"),
        (["simulate", *SMALL, "--rate", "1", "--requests", "0"], "requests: must be 1..2000000"),
        (["fit", *SMALL, "--gpu-memory-utilization", "nan"], "gpu_memory_utilization: must be a finite"),
        (
            ["fit", *SMALL, "--gpu-memory-utilization", "1.5"],
            "gpu_memory_utilization: must be in [0.05, 1]",
        ),
        (["fit", *SMALL, "--users", "0"], "users: must be 1..1000000"),
        (["fit", *SMALL, "--users", "many"], "users: cannot read 'many' as a whole number"),
        (["fit", *SMALL, "--gpu-memory-gib", "-inf"], "gpu_memory_gib: must be a finite"),
        (["fit", *SMALL, "--tp", "1024"], "tp: 1024 GPUs in one tensor-parallel group"),
        (["fit", *SMALL, "--tp", "2000"], "tp: must be 1..1024"),
        (
            ["fit", "qwen2.5-14b-instruct", "--gpu", "H100", "--tp", "5"],
            "error: tp: 5 neither divides the 8 KV heads",
        ),
        (["fit", *SMALL, "--context", "64k"], "maximum of 32,768 (max_position_embeddings)"),
        (["fit", *SMALL, "--context", "nan"], "max_model_len: cannot read 'nan'"),
        (["fit", *SMALL, "--gpus-per-node", "0"], "gpus_per_node: must be 1..72"),
        (["perf", *SMALL, "--users", "99999"], "batch: must be 1..4096"),
        (["perf", *SMALL, "--input-len", "1e9"], "input_len: cannot read"),
        (["perf", *SMALL, "--input-len", "64k"], "maximum of 32,768"),
        (["fit", *SMALL, "--kv-dtype", "q8_0"], "q8_0 is not a vllm KV cache type (it is for llamacpp)"),
    ],
)
def test_bad_input_is_one_line(args: list[str], needle: str) -> None:
    assert needle in _one_line_error(args)


def test_long_context_with_explicit_consent_is_a_verdict_with_a_note() -> None:
    r = runner.invoke(app, ["fit", *SMALL, "--context", "64k", "--allow-long-context", "--json"])
    assert r.exit_code in (0, 1), r.output
    assert any("RoPE scaling" in n for n in json.loads(r.stdout)["notes"])


def test_readme_tour_model_fits() -> None:
    args = ["fit", "qwen2.5-72b-instruct", "--gpu", "NVIDIA A100-SXM4-80GB", "--tp", "4", "--kv-dtype", "fp8"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "Qwen/Qwen2.5-72B-Instruct" in r.output


def test_llamacpp_q8_0_kv_cache_in_fit_and_plan() -> None:
    r = runner.invoke(
        app,
        ["fit", "llama-3.1-8b-instruct", "--gpu", "RTX 4090", "--engine", "llamacpp", "--kv-dtype", "q8_0"],
    )
    assert r.exit_code == 0, r.output
    assert "1.0625 B" in r.output
    r = runner.invoke(app, ["plan", "llama-3.1-8b-instruct", "--engine", "llamacpp", "--kv-dtype", "q8_0"])
    assert r.exit_code == 0, r.output
    assert "Top picks" in r.output and "llama.cpp cache type" not in r.output


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("NVIDIA H20-3e", "h20-3e"),
        ("NVIDIA H20", "h20"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA RTX A6000", "rtx-a6000"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm-80gb"),
        ("Tesla T4", "t4"),
        ("H100 SXM", "h100-sxm"),
        ("RTX 6000 Ada", "rtx-6000-ada"),
    ],
)
def test_nvidia_smi_and_marketing_gpu_names(name: str, key: str) -> None:
    r = runner.invoke(app, ["fit", *SMALL[:1], "--gpu", name, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["gpu"] == key


@pytest.mark.parametrize(
    ("name", "key", "engine"),
    [
        ("Q4_K_M", "q4_k_m", "llamacpp"),  # a GGUF type picks llama.cpp when no engine is named
        ("IQ4_NL", "iq4_nl", "llamacpp"),
        ("F16", "f16-gguf", "llamacpp"),
        ("BF16", "bf16", "vllm"),
        ("F16 --engine vllm", "fp16", "vllm"),  # llama.cpp's name for 16-bit on a GPU engine
    ],
)
def test_llamacpp_type_names_as_quant(name: str, key: str, engine: str) -> None:
    r = runner.invoke(app, ["fit", *SMALL, "--quant", *name.split(), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["quant"], d["engine"]) == (key, engine)


def test_simulate_warns_when_the_run_is_cut_short(monkeypatch: pytest.MonkeyPatch) -> None:
    from functools import partial

    import gpusizer.simulate.run as sim_run
    from gpusizer.simulate import engine as sim_engine

    monkeypatch.setattr(sim_run, "run_engine", partial(sim_engine.run_engine, max_steps=30))
    r = runner.invoke(app, ["simulate", *SMALL, "--rate", "50", "--requests", "100", "--json"])
    assert r.exit_code == 0, r.output
    assert "warning: at 50 req/s the simulation stopped after 30 engine steps" in r.stderr
    assert json.loads(r.stdout)["warnings"]


def test_a_million_users_is_answered_quickly() -> None:
    """The 'try --users N' suggestion bisects instead of walking down one user at a time
    (100,000 users took 27 s); the suggestion is the largest count that fits."""
    import time

    t0 = time.perf_counter()
    r = runner.invoke(
        app, ["fit", "qwen2.5-0.5b-instruct", "--gpu", "T4", "--users", "1000000", "--context", "32k"]
    )
    assert r.exit_code == 1, r.output
    assert time.perf_counter() - t0 < 5
    n = int(r.output.split("try: --users ")[1].split()[0])
    ok = runner.invoke(
        app, ["fit", "qwen2.5-0.5b-instruct", "--gpu", "T4", "--users", str(n), "--context", "32k"]
    )
    over = runner.invoke(
        app, ["fit", "qwen2.5-0.5b-instruct", "--gpu", "T4", "--users", str(n + 1), "--context", "32k"]
    )
    assert (ok.exit_code, over.exit_code) == (0, 1)
