"""gpusizer plan: the main job, as a user runs it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gpusizer.api import plan
from gpusizer.cli.app import app

runner = CliRunner()


def test_issue_example_gives_plans_that_fit_and_meet_the_slos() -> None:
    # issue #5: "DeepSeek-R1-Distill-Qwen-32B to 10 users at 32K context with TTFT under 1 s
    # and 30 tokens/s each"
    r = runner.invoke(
        app,
        [
            "plan",
            "deepseek-r1-distill-qwen-32b",
            "--context",
            "32k",
            "--users",
            "10",
            "--ttft-ms",
            "1000",
            "--tokens-per-s-per-user",
            "30",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["schema_version"] == 1
    cheapest = data["picks"]["cheapest"]
    assert cheapest["ttft_ms"] <= 1000 and cheapest["tokens_per_s_per_user"] >= 30
    assert cheapest["max_concurrency"] >= 10
    assert cheapest["per_gpu_gib"]["free"] >= 0
    assert data["rejections"] and data["findings"] and "vllm" in data["launch"]
    sim = cheapest["simulated"]  # the pick was verified by simulating the 10 users
    assert sim is not None and sim["ttft_ms"]["p95"] <= 1000 and sim["tpot_ms"]["p95"] <= 1000 / 30


def test_every_printed_plan_fits_and_meets_its_targets() -> None:
    res = plan(
        "deepseek-r1-distill-qwen-7b",
        context=16384,
        users=8,
        ttft_ms=800,
        tpot_ms=40,
        classes=["consumer", "workstation"],
        max_gpus=2,
    )
    assert res.accepted
    for a in res.accepted:
        # every replica holds its share of the users at full context; the shares cover all 8
        assert a.memory.fits and a.memory.max_concurrency >= a.dep.users
        assert a.replicas * a.dep.users >= 8
        assert all(r.free_bytes >= 0 for r in a.memory.ranks)
        assert a.perf.ttft_s <= 0.8 and a.perf.tpot_s <= 0.040
    cheapest = res.picks.cheapest
    assert cheapest is not None and cheapest.sim is not None  # every pick is simulated
    # everything cheaper passed the analytic filter but missed in simulation
    missed = {r.label for r in res.rejected if r.stage == "slo"}
    assert all(a.label in missed for a in res.accepted if a.usd_per_hour < cheapest.usd_per_hour)


def test_impossible_targets_exit_1_with_reasons() -> None:
    r = runner.invoke(
        app,
        [
            "plan",
            "deepseek-r1",
            "--context",
            "128k",
            "--users",
            "64",
            "--class",
            "consumer",
            "--max-gpus",
            "2",
        ],
    )
    assert r.exit_code == 1
    assert "No feasible plan" in r.output and "does not fit" in r.output


def test_bad_plan_input_is_one_line() -> None:
    r = runner.invoke(app, ["plan", "deepseek-r1", "--class", "gaming"])
    assert r.exit_code == 2 and "classes: unknown value 'gaming'" in r.output and "Traceback" not in r.output


def test_launch_command_names_the_checkpoint_the_plan_needs() -> None:
    from gpusizer.api import fit
    from gpusizer.plan.launch import launch_commands

    r1 = fit("deepseek-r1", "H200", gpus=8, quant="awq", max_model_len=32768, users=4).deployment
    cmd = launch_commands(r1, "deepseek-ai/DeepSeek-R1", 0.92, native_quant="fp8-block")["vllm"]
    assert "<AWQ-checkpoint-of-deepseek-ai/DeepSeek-R1>" in cmd and "--tensor-parallel-size 8" in cmd
    native = fit("deepseek-r1", "H200", gpus=8, max_model_len=32768, users=4).deployment
    cmd = launch_commands(native, "deepseek-ai/DeepSeek-R1", 0.92, native_quant="fp8-block")["vllm"]
    assert cmd.startswith("vllm serve deepseek-ai/DeepSeek-R1 ") and "--quantization" not in cmd
    dense = fit("deepseek-r1-distill-qwen-7b", "H100", quant="fp8", max_model_len=8192).deployment
    cmd = launch_commands(dense, "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 0.92)["vllm"]
    assert "--quantization fp8" in cmd  # online FP8 of a 16-bit checkpoint


def test_replicated_plans_get_a_compose_file_and_k8s_replicas() -> None:
    from gpusizer.api import fit
    from gpusizer.plan.launch import launch_commands

    dep = fit("deepseek-r1-distill-qwen-7b", "RTX 4090", max_model_len=8192, users=4).deployment
    cmds = launch_commands(dep, "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 0.92, replicas=2)
    assert (
        "engine-0:" in cmds["compose"] and "engine-1:" in cmds["compose"] and "upstream v" in cmds["compose"]
    )
    assert 'device_ids: ["1"]' in cmds["compose"]
    assert "replicas: 2" in cmds["kubernetes"] and "nvidia.com/gpu: 1" in cmds["kubernetes"]


def test_markdown_report_has_picks_reasons_rules_and_launch() -> None:
    r = runner.invoke(
        app,
        [
            "plan",
            "deepseek-r1-distill-qwen-7b",
            "--context",
            "8k",
            "--users",
            "4",
            "--ttft-ms",
            "1000",
            "--tpot-ms",
            "50",
            "--class",
            "consumer",
            "--max-gpus",
            "2",
            "--markdown",
        ],
    )
    assert r.exit_code == 0, r.output
    md = r.output
    for heading in ("# Plan:", "## Top picks", "## Why the others lost", "## The guide's rules", "## Launch"):
        assert heading in md
    assert "| cheapest |" in md and "```bash" in md


def test_capex_engine_search_and_gguf_for_llamacpp() -> None:
    args = [
        "plan",
        "deepseek-r1-distill-qwen-14b",
        "--context",
        "8k",
        "--users",
        "10",
        "--tpot-ms",
        "40",
        "--class",
        "consumer",
        "--json",
    ]
    one = json.loads(runner.invoke(app, args).output)
    auto = json.loads(runner.invoke(app, [*args, "--engine", "auto"]).output)
    assert auto["searched"] > one["searched"]  # vLLM and llama.cpp on every consumer card
    engines = {p["engine"] for p in auto["pareto"]}
    assert "llamacpp" in engines or "vllm" in engines
    assert all(p["quant"].startswith("q") for p in auto["pareto"] if p["engine"] == "llamacpp")  # GGUF
    assert not any("does not run on llamacpp" in r["reason"] for r in auto["rejections"])
    capped = json.loads(runner.invoke(app, [*args, "--capex", "1600"]).output)
    assert any(
        r["reason"].startswith("budget: over the hardware (capex) budget") for r in capped["rejections"]
    )
    for p in capped["pareto"]:  # everything kept costs at most the capex to buy
        assert p["capex_usd"] is not None and p["capex_usd"] <= 1600
    bad = runner.invoke(app, [*args, "--engine", "tgi"])
    assert bad.exit_code == 2 and "engines: unknown engine" in bad.output and "auto" in bad.output
