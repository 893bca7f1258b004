"""Every command a plan prints runs as printed: each flag (and each environment variable) is
one the engine documents (data/engine_options.yaml, with its source and version), on every
engine and platform — NVIDIA CUDA, AMD ROCm, Apple — and in docker, compose, Kubernetes and
LeaderWorkerSet form. Issue #14: an SGLang plan printed `vllm serve … --gpu-memory-utilization`
and TensorRT-LLM plans printed nothing."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from gpusizer.api import PlanResult, plan
from gpusizer.catalog.load import checkpoints, engine_options

# docker options that take a separate value; the image is the first other bare word
_DOCKER_VALUED = {"--gpus", "-p", "--publish", "-v", "--volume", "--device", "--group-add", "--shm-size",
                  "--security-opt", "--cap-add", "-e", "--env", "--entrypoint", "--name", "--network"}  # fmt: skip
# images whose entrypoint is the engine (arguments follow the image)
_ENTRYPOINT = {"vllm/vllm-openai": "vllm", "ghcr.io/ggml-org/llama.cpp": "llamacpp"}
_ENV = re.compile(r"^([A-Z_][A-Z0-9_]*)=")


def _engine_of(tokens: list[str]) -> tuple[str | None, list[str]]:
    """(engine, its arguments) of one simple command."""
    if tokens[:2] == ["vllm", "serve"]:
        return "vllm", tokens[2:]
    if tokens[:3] == ["python3", "-m", "sglang.launch_server"]:
        return "sglang", tokens[3:]
    if tokens[:1] == ["trtllm-serve"]:
        return "tensorrt-llm", tokens[1:]
    if tokens[:1] == ["llama-server"]:
        return "llamacpp", tokens[1:]
    if tokens[:1] == ["ollama"]:
        return "ollama", tokens[2:]
    if tokens[:2] == ["ray", "start"]:
        return "ray", tokens[2:]
    if tokens[:2] == ["docker", "run"]:
        return "docker", tokens[2:]
    if tokens[:1] in (["sleep"], ["sh"], ["echo"]):
        return None, []
    raise AssertionError(f"unknown command: {shlex.join(tokens)}")


def _check_flags(engine: str, args: list[str], where: str) -> None:
    known = set(engine_options()[engine].options)
    for tok in args:
        if tok.startswith("-") and not re.fullmatch(r"-?\d+(\.\d+)?", tok):
            name = tok.split("=", 1)[0]
            assert name in known, f"{where}: {engine} has no option {name} (data/engine_options.yaml)"


def _check_docker(args: list[str], where: str) -> None:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        _check_flags("docker", [args[i]], where)
        i += 2 if args[i] in _DOCKER_VALUED else 1
    image, rest = args[i], args[i + 1 :]
    base = image.split(":")[0]
    if base in _ENTRYPOINT:
        _check_flags(_ENTRYPOINT[base], rest, where)
    else:
        check_line(shlex.join(rest), where)


def check_line(line: str, where: str) -> None:
    """Check one shell line: `A=1 cmd … & cmd … && cmd …  # comment`."""
    code = line.split("  #", 1)[0]
    whole = shlex.split(code)
    if whole[:2] == ["sh", "-c"]:  # a container's shell line: check what it runs
        check_line(whole[2], where)
        return
    segments: list[list[str]] = [[]]
    for tok in whole:  # split at the shell's separators, never inside a quoted argument
        if tok in ("&&", "&", ";"):
            segments.append([])
        else:
            segments[-1].append(tok)
    for tokens in segments:
        if tokens[:1] == ["echo"]:  # the options file the command writes: it must be YAML
            assert tokens[-2] == ">" and isinstance(yaml.safe_load(tokens[1]), dict), f"{where}: {tokens}"
        envs = []
        while tokens and _ENV.match(tokens[0]):
            envs.append(_ENV.match(tokens.pop(0)).group(1))  # type: ignore[union-attr]
        if not tokens:
            continue
        engine, args = _engine_of(tokens)
        if engine is None:
            continue
        for e in envs:
            assert e in engine_options()[engine].env, f"{where}: {engine} documents no {e}"
        if engine == "docker":
            _check_docker(args, where)
        else:
            _check_flags(engine, args, where)


def _container_lines(spec: dict[str, Any], image: str) -> Iterator[str]:
    command = list(spec.get("command") or [])
    args = list(spec.get("args") or [])
    if command[:2] == ["sh", "-c"]:
        yield command[2]
        return
    base = image.split(":")[0]
    if not command and base in _ENTRYPOINT:
        head = {"vllm": ["vllm", "serve"], "llamacpp": ["llama-server"]}[_ENTRYPOINT[base]]
        yield shlex.join([*head, *args])
    else:
        yield shlex.join([*command, *args])


def check_plan(res: PlanResult) -> None:
    assert res.launch, "a feasible plan prints commands"
    for name, text in res.launch.items():
        where = f"{res.model.name}: {name}"
        if name == "compose":
            doc = yaml.safe_load(text)
            for svc, spec in doc["services"].items():
                if svc == "router":
                    continue
                cmd = spec["command"]
                parts = {"command": cmd} if isinstance(cmd, list) else {"args": shlex.split(cmd)}
                for line in _container_lines(parts, spec["image"]):
                    check_line(line, f"{where}/{svc}")
        elif name == "kubernetes":
            for doc in yaml.safe_load_all(text):
                if doc["kind"] == "Deployment":
                    pods = [doc["spec"]["template"]["spec"]]
                    assert {"name": "dshm", "mountPath": "/dev/shm"} in pods[0]["containers"][0][
                        "volumeMounts"
                    ]
                elif doc["kind"] == "LeaderWorkerSet":
                    t = doc["spec"]["leaderWorkerTemplate"]
                    pods = [t["leaderTemplate"]["spec"], t["workerTemplate"]["spec"]]
                else:
                    continue
                for pod in pods:
                    for c in pod["containers"]:
                        for line in _container_lines(c, c["image"]):
                            check_line(line, f"{where}/{c['name']}")
        else:
            check_line(text, where)


def test_main_job_commands_are_vllm_on_cuda_with_a_real_checkpoint() -> None:
    res = plan("deepseek-r1-distill-qwen-32b", context=32768, users=10, ttft_ms=1000, tpot_ms=1000 / 30)
    check_plan(res)
    assert "vllm" in res.launch and "<" not in res.launch["vllm"]  # no placeholder checkpoint
    repo = res.launch["vllm"].split()[2]
    assert repo in {c.repo for c in checkpoints()} | {"deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"}
    assert "nvidia.com/gpu" in res.launch["kubernetes"] and "/dev/shm" in res.launch["kubernetes"]


def test_sglang_plan_prints_sglang_flags_not_vllms() -> None:
    res = plan(
        "deepseek-r1-distill-qwen-14b", context=8192, users=4, gpus=["l40s"], engine="sglang", verify=False
    )
    check_plan(res)
    cmd = res.launch["sglang"]
    assert cmd.startswith("python3 -m sglang.launch_server --model-path ") and "--tp-size" in cmd
    assert (
        "--mem-fraction-static" in cmd and "--gpu-memory-utilization" not in cmd and "vllm" not in res.launch
    )


def test_tensorrt_llm_plan_prints_trtllm_serve() -> None:
    res = plan(
        "deepseek-r1-distill-qwen-14b",
        context=8192,
        users=4,
        gpus=["h100-sxm"],
        engine="tensorrt-llm",
        kv_dtype="fp8",
        verify=False,
    )
    check_plan(res)
    cmd = res.launch["trtllm-serve"]
    assert (
        cmd.partition(" && ")[2].startswith("trtllm-serve ")
        and "--tp_size" in cmd
        and "--kv_cache_free_gpu_memory_fraction" in cmd
    )
    # the FP8 KV setting and CUDA graphs for every batch up to the users go in the LLM API
    # options file, which the command writes before it starts the server
    written, _, serve = cmd.partition(" && ")
    argv = shlex.split(serve)
    path = argv[argv.index("--extra_llm_api_options") + 1]
    batch = int(argv[argv.index("--max_batch_size") + 1])  # graphs for every batch the engine runs
    echo = shlex.split(written)
    assert echo[0] == "echo" and echo[-2:] == [">", path]
    assert yaml.safe_load(echo[1]) == {
        "kv_cache_config": {"dtype": "fp8"},
        "cuda_graph_config": {"enable_padding": True, "max_batch_size": batch},
    }
    for form in ("docker", "kubernetes"):
        assert "--extra_llm_api_options" in res.launch[form] and "cuda_graph_config" in res.launch[form]


def test_amd_plans_get_rocm_images_and_amd_gpus() -> None:
    res = plan("deepseek-r1", context=32768, users=16, gpus=["mi300x"], quants=["fp8-block"], verify=False)
    check_plan(res)
    assert "rocm/vllm" in res.launch["docker"] and "/dev/kfd" in res.launch["docker"]
    # one engine of 8, or replicas of 4 on the 8-GPU platform: AMD's device plugin either way
    assert re.search(r"amd\.com/gpu: [1-8]\b", res.launch["kubernetes"])
    assert "nvidia.com/gpu" not in res.launch["kubernetes"]
    assert "awq_marlin" not in " ".join(res.launch.values())


@pytest.mark.parametrize("quant", ["awq", "gptq"])
def test_amd_pre_quantized_formats_use_rocm_kernels(quant: str) -> None:
    from gpusizer.api import fit
    from gpusizer.plan.launch import launch_commands

    dep = fit("deepseek-r1-distill-qwen-7b", "radeon-pro-w7900", quant=quant, max_model_len=8192).deployment
    cmd = launch_commands(dep, "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 0.9, checkpoints=checkpoints())[
        "vllm"
    ]
    assert f"--quantization {quant} " in cmd + " " and "marlin" not in cmd


def test_mac_plans_print_llama_server_and_ollama() -> None:
    res = plan("deepseek-r1-distill-qwen-32b", context=8192, users=2, classes=["apple"], verify=False)
    check_plan(res)
    assert res.launch["llama-server"].startswith(
        "llama-server -hf bartowski/DeepSeek-R1-Distill-Qwen-32B-GGUF:"
    )
    assert "ollama run deepseek-r1:32b" in res.launch["ollama"]
    assert "docker" not in res.launch  # no GPU containers on macOS


def test_engines_spanning_nodes_get_a_leaderworkerset_with_ray() -> None:
    res = plan(
        "deepseek-r1",
        context=32768,
        users=16,
        gpus=["h100-sxm"],
        quants=["fp8-block"],
        max_gpus=16,
        verify=False,
    )
    check_plan(res)
    c = res.picks.cheapest
    assert c is not None and c.placement is not None and c.placement.boxes == 2
    assert c.placement.network_name == "infiniband-ndr" and "infiniband-ndr" in c.cost_basis
    k8s = res.launch["kubernetes"]
    assert "kind: LeaderWorkerSet" in k8s and "size: 2" in k8s and "ray start --head" in k8s
    assert "--distributed-executor-backend ray" in res.launch["vllm"]


def test_llamacpp_replicas_on_a_cuda_box_get_compose() -> None:
    res = plan(
        "deepseek-r1-distill-qwen-7b",
        context=16384,
        users=10,
        gpus=["rtx-4090"],
        engine="llamacpp",
        tpot_ms=20,
        max_gpus=2,
        verify=False,
    )
    check_plan(res)


def test_a_format_without_a_published_checkpoint_says_so() -> None:
    from gpusizer.api import fit
    from gpusizer.plan.launch import launch_commands

    dep = fit("deepseek-llm-7b-chat", "RTX 4090", quant="awq", max_model_len=4096).deployment
    cmd = launch_commands(dep, "deepseek-ai/deepseek-llm-7b-chat", 0.92, checkpoints=checkpoints())["vllm"]
    assert (
        "<AWQ-checkpoint-of-deepseek-ai/deepseek-llm-7b-chat>" in cmd and "no published AWQ checkpoint" in cmd
    )
    check_line(cmd, "placeholder")


def test_engines_spread_over_several_boxes_get_one_compose_per_box() -> None:
    from gpusizer.api import fit
    from gpusizer.plan.launch import launch_commands

    dep = fit("deepseek-r1-distill-qwen-7b", "RTX 4090", max_model_len=8192, users=2).deployment
    cmds = launch_commands(dep, "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 0.92, replicas=4, boxes=2)
    compose = cmds["compose"]
    assert compose.startswith("# run this on each of the 2 boxes")
    assert "engine-1:" in compose and "engine-2:" not in compose  # two engines per box
    assert "replicas: 4" in cmds["kubernetes"]
