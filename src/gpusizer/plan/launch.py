"""Ready-to-run launch commands for a chosen plan, in the engine the plan was sized for and
for the platform it runs on:

    engine (vLLM · SGLang · TensorRT-LLM · llama.cpp) × vendor (NVIDIA CUDA · AMD ROCm · Apple Metal)
      → the engine's own command with its own flags (data/engine_options.yaml lists them;
        a test parses every printed command against that list)
      → the checkpoint: the model's own, or a published quantized one (data/checkpoints.yaml);
        a clear note where none is catalogued
      → docker (CUDA or ROCm devices), compose with an nginx router for replicas, Kubernetes
        (nvidia.com/gpu or amd.com/gpu, /dev/shm), LeaderWorkerSet + Ray for engines spanning
        nodes (as vLLM's multi-node docs do); llama.cpp and Ollama on a Mac.

Pure: values in, strings out (the checkpoint catalogue is passed in).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from gpusizer.catalog.specs import Checkpoint
from gpusizer.domain.scenario import Deployment

__all__ = ["IMAGES", "checkpoint_for", "launch_commands"]

# vLLM's --quantization value for a pre-quantized checkpoint, per vendor (Marlin kernels are
# CUDA-only; ROCm runs AWQ/GPTQ through its Triton/exllama kernels).
_VLLM_QUANT = {
    "nvidia": {"awq": "awq_marlin", "gptq": "gptq_marlin", "fp8": "fp8", "bnb-nf4": "bitsandbytes"},
    "amd": {"awq": "awq", "gptq": "gptq", "fp8": "fp8"},
}
_ONLINE = ("fp8",)  # formats an engine makes from a 16-bit checkpoint at load time
_PRE_QUANTIZED = ("awq", "gptq", "mxfp4", "nvfp4", "bnb-nf4")

# Container images: vLLM's CUDA image runs `vllm serve` as its entrypoint (args follow the
# image); AMD's ROCm image and the others take the full command.
IMAGES = {
    ("vllm", "nvidia"): "vllm/vllm-openai:latest",
    ("vllm", "amd"): "rocm/vllm:latest",
    ("sglang", "nvidia"): "lmsysorg/sglang:latest",
    ("tensorrt-llm", "nvidia"): "nvcr.io/nvidia/tensorrt-llm/release:1.0.0",
    ("llamacpp", "nvidia"): "ghcr.io/ggml-org/llama.cpp:server-cuda",
}
_GPU_RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
_DOCKER_DEVICES = {
    "nvidia": ["--gpus", "all"],
    "amd": [
        "--device=/dev/kfd",
        "--device=/dev/dri",
        "--group-add",
        "video",
        "--security-opt",
        "seccomp=unconfined",
    ],
}


@dataclass(frozen=True, kw_only=True)
class _Model:
    repo: str  # what the engine loads
    note: str  # shown after the command ("" when the checkpoint is known)
    pre_quantized: bool  # the checkpoint is already in the plan's format
    gguf_tag: str | None = None
    ollama: str | None = None


def checkpoint_for(
    model_id: str, fmt: str, native_quant: str | None, catalogue: Sequence[Checkpoint]
) -> Checkpoint | None:
    """The catalogued checkpoint of ``model_id`` in ``fmt``, if any."""
    del native_quant
    return next((c for c in catalogue if c.model.lower() == model_id.lower() and c.format == fmt), None)


def _model(
    dep: Deployment, model_id: str, native_quant: str | None, catalogue: Sequence[Checkpoint]
) -> _Model:
    q = dep.quant.fmt.key
    if dep.engine == "llamacpp":
        ck = checkpoint_for(model_id, q, native_quant, catalogue)
        if ck is not None:
            return _Model(
                repo=ck.repo, note="", pre_quantized=True, gguf_tag=ck.file or q.upper(), ollama=ck.ollama
            )
        return _Model(
            repo=f"<{model_id.split('/')[-1]}-{q.upper()}.gguf>",
            note=f"  # no published {q.upper()} GGUF of {model_id} in data/checkpoints.yaml: convert with "
            "llama.cpp's convert_hf_to_gguf.py and llama-quantize",
            pre_quantized=True,
        )
    if q == (native_quant or "bf16") or q in ("bf16", "fp16"):
        return _Model(repo=model_id, note="", pre_quantized=q == native_quant and q not in ("bf16", "fp16"))
    if dep.engine == "tensorrt-llm":  # loads NVIDIA ModelOpt checkpoints, not AutoAWQ/GPTQ/compressed-tensors
        return _Model(
            repo=f"<{q.upper()}-ModelOpt-checkpoint-of-{model_id}>",
            note=f"  # TensorRT-LLM needs a ModelOpt-quantized {q.upper()} checkpoint: make one with NVIDIA "
            "TensorRT Model Optimizer (modelopt) and put its path here",
            pre_quantized=True,
        )
    ck = checkpoint_for(model_id, q, native_quant, catalogue)
    if ck is not None:
        return _Model(repo=ck.repo, note="", pre_quantized=True)
    if q in _ONLINE:
        return _Model(repo=model_id, note="", pre_quantized=False)
    note = (
        f"  # no published {q.upper()} checkpoint of {model_id} in data/checkpoints.yaml: quantize it "
        "first (AutoAWQ / llm-compressor) and put its path here"
        if q in _PRE_QUANTIZED
        else ""
    )
    return _Model(repo=f"<{q.upper()}-checkpoint-of-{model_id}>", note=note, pre_quantized=True)


def launch_commands(
    dep: Deployment,
    model_id: str,
    gpu_memory_utilization: float,
    native_quant: str | None = None,
    replicas: int = 1,
    *,
    checkpoints: Sequence[Checkpoint] = (),
    boxes_per_replica: int = 1,
    boxes: int = 1,
) -> dict[str, str]:
    """Commands for ``replicas`` engines of ``dep``. ``gpu_memory_utilization`` is the
    engine's memory-fraction setting (vLLM gpu_memory_utilization, SGLang
    mem_fraction_static, TensorRT-LLM kv_cache_free_gpu_memory_fraction)."""
    m = _model(dep, model_id, native_quant, checkpoints)
    vendor = dep.gpu.vendor
    if dep.engine == "llamacpp":
        return _llamacpp(dep, m, replicas, boxes)
    nodes = max(dep.layout.nodes, boxes_per_replica)
    if dep.engine == "sglang":
        argv = _sglang_args(dep, m, gpu_memory_utilization, vendor)
        cmd = shlex.join(["python3", "-m", "sglang.launch_server", *argv])
        name = "sglang"
    elif dep.engine == "tensorrt-llm":
        argv = _trtllm_args(dep, m, gpu_memory_utilization)
        cmd = shlex.join(["trtllm-serve", *argv])
        name = "trtllm-serve"
    else:
        argv = _vllm_args(dep, m, gpu_memory_utilization, vendor)
        cmd = shlex.join(["vllm", "serve", *argv])
        name = "vllm"
    out = {name: cmd + m.note + _kv_note(dep)}
    image = IMAGES.get((dep.engine, vendor))
    if image is not None:
        out["docker"] = _docker(dep.engine, vendor, image, cmd, argv)
        per_box = max(1, replicas // max(boxes, 1))  # engines on one box
        if per_box > 1 and nodes == 1:
            compose = _compose(dep.engine, vendor, image, cmd, argv, per_box, dep.layout.gpus)
            out["compose"] = (
                f"# run this on each of the {boxes} boxes and balance the users across them\n{compose}"
                if boxes > 1
                else compose
            )
        out["kubernetes"] = (
            _lws(dep.engine, vendor, image, cmd, nodes, dep.layout.gpus // nodes, replicas)
            if nodes > 1
            else _k8s(dep.engine, vendor, image, cmd, replicas, dep.layout.gpus)
        )
    return out


def _kv_note(dep: Deployment) -> str:
    if dep.engine == "tensorrt-llm" and dep.kv_dtype != "auto":
        return "  # extra.yaml: kv_cache_config: {dtype: fp8}"
    return ""


def _vllm_args(dep: Deployment, m: _Model, frac: float, vendor: str) -> list[str]:
    tp, pp = dep.layout.tp, dep.layout.pp
    # vLLM runs DP attention as data-parallel ranks sharing expert-parallel MoE layers
    args = (
        ["--data-parallel-size", str(tp), "--tensor-parallel-size", "1"]
        if dep.layout.attention_dp
        else ["--tensor-parallel-size", str(tp)]
    )
    if pp > 1:
        args += ["--pipeline-parallel-size", str(pp)]
    args += [
        "--max-model-len",
        str(dep.max_model_len),
        "--max-num-seqs",
        str(max(dep.users, 1)),
        "--gpu-memory-utilization",
        f"{frac:g}",
    ]
    q = dep.quant.fmt.key
    quant = _VLLM_QUANT.get(vendor, _VLLM_QUANT["nvidia"]).get(q)
    if quant and (not m.pre_quantized or q in _PRE_QUANTIZED):
        args += ["--quantization", quant]
    if dep.kv_dtype != "auto":
        args += ["--kv-cache-dtype", dep.kv_dtype]
    if dep.layout.ep or dep.layout.attention_dp:
        args += ["--enable-expert-parallel"]
    if dep.layout.nodes > 1:
        args += ["--distributed-executor-backend", "ray"]
    return [m.repo, *args]


def _sglang_args(dep: Deployment, m: _Model, frac: float, vendor: str) -> list[str]:
    tp, pp = dep.layout.tp, dep.layout.pp
    args = ["--model-path", m.repo, "--tp-size", str(tp)]
    if pp > 1:
        args += ["--pp-size", str(pp)]
    if dep.layout.attention_dp:
        args += ["--dp-size", str(tp), "--enable-dp-attention"]
    args += [
        "--context-length",
        str(dep.max_model_len),
        "--max-running-requests",
        str(max(dep.users, 1)),
        "--mem-fraction-static",
        f"{frac:g}",
    ]
    q = dep.quant.fmt.key
    if not m.pre_quantized and q in _ONLINE:
        args += ["--quantization", q]
    if dep.kv_dtype != "auto":
        args += ["--kv-cache-dtype", "fp8_e4m3" if dep.kv_dtype == "fp8" else dep.kv_dtype]
    del vendor
    return args


def _trtllm_args(dep: Deployment, m: _Model, frac: float) -> list[str]:
    args = [
        m.repo,
        "--backend",
        "pytorch",
        "--tp_size",
        str(dep.layout.tp),
        "--pp_size",
        str(dep.layout.pp),
        "--max_batch_size",
        str(max(dep.users, 1)),
        "--max_seq_len",
        str(dep.max_model_len),
        "--kv_cache_free_gpu_memory_fraction",
        f"{frac:g}",
    ]
    if dep.kv_dtype != "auto":
        args += ["--extra_llm_api_options", "extra.yaml"]
    return args


def _docker(engine: str, vendor: str, image: str, cmd: str, argv: list[str]) -> str:
    run = ["docker", "run", *_DOCKER_DEVICES[vendor], "--ipc=host", "--shm-size", "16g", "-p", "8000:8000"]
    cache = '-v "$HOME/.cache/huggingface:/root/.cache/huggingface"'  # double quotes: $HOME expands
    command, args = _container_args(engine, vendor, cmd)
    return f"{shlex.join(run)} {cache} {shlex.join([image, *command, *args])}"


def _container_args(engine: str, vendor: str, cmd: str) -> tuple[list[str], list[str]]:
    """(command, args) for a container spec: the image entrypoint is used where it serves."""
    parts = shlex.split(cmd)
    if engine == "vllm" and vendor == "nvidia":  # entrypoint `vllm serve` (older images: the API server)
        return [], ["--model", *parts[2:]]
    if engine == "llamacpp":  # the image's entrypoint is llama-server
        return [], [*parts[1:], "--host", "0.0.0.0", "--port", "8000"]
    return parts[:1], [*parts[1:], "--host", "0.0.0.0", "--port", "8000"]


def _compose(
    engine: str, vendor: str, image: str, cmd: str, argv: list[str], replicas: int, gpus_each: int
) -> str:
    """One engine per replica on its own GPUs, and an nginx round-robin router."""
    del argv
    lines = ["services:"]
    command, args = _container_args(engine, vendor, cmd)
    full = shlex.join([*command, *args])
    for i in range(replicas):
        ids = ", ".join(f'"{i * gpus_each + j}"' for j in range(gpus_each))
        lines += [
            f"  engine-{i}:",
            f"    image: {image}",
            "    ipc: host",
            "    shm_size: 16gb",
            f"    command: {full}",
            '    volumes: ["${HOME}/.cache/huggingface:/root/.cache/huggingface"]',
        ]
        if vendor == "nvidia":
            lines += [
                "    deploy:",
                "      resources:",
                "        reservations:",
                f"          devices: [{{driver: nvidia, device_ids: [{ids}], capabilities: [gpu]}}]",
            ]
        else:
            lines += [
                '    devices: ["/dev/kfd", "/dev/dri"]',
                "    group_add: [video]",
                f'    environment: ["HIP_VISIBLE_DEVICES={ids.replace(chr(34), "").replace(" ", "")}"]',
            ]
    upstream = " ".join(f"server engine-{i}:8000;" for i in range(replicas))
    conf = (
        f"events {{}} http {{ upstream v {{ {upstream} }} server {{ listen 8000; "
        "location / { proxy_pass http://v; proxy_buffering off; } } }"
    )
    lines += [
        "  router:",
        "    image: nginx:stable",
        '    ports: ["8000:8000"]',
        f'    command: ["/bin/sh", "-c", "echo \'{conf}\' > /etc/nginx/nginx.conf && nginx -g \'daemon off;\'"]',
        "    depends_on: [" + ", ".join(f"engine-{i}" for i in range(replicas)) + "]",
    ]
    return "\n".join(lines)


def _yaml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join('"' + a.replace('"', '\\"') + '"' for a in items) + "]"


def _shm() -> tuple[list[str], list[str]]:
    """A RAM-backed /dev/shm: NCCL and the engines' IPC need more than the 64 MiB default."""
    mounts = ["        volumeMounts: [{name: dshm, mountPath: /dev/shm}]"]
    volumes = ["      volumes: [{name: dshm, emptyDir: {medium: Memory, sizeLimit: 16Gi}}]"]
    return mounts, volumes


def _k8s(engine: str, vendor: str, image: str, cmd: str, replicas: int, gpus_each: int) -> str:
    """A Deployment of ``replicas`` pods, one engine each, behind a Service."""
    command, args = _container_args(engine, vendor, cmd)
    mounts, volumes = _shm()
    return "\n".join(
        [
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata: {name: llm}",
            "spec:",
            f"  replicas: {replicas}",
            "  selector: {matchLabels: {app: llm}}",
            "  template:",
            "    metadata: {labels: {app: llm}}",
            "    spec:",
            "      containers:",
            "      - name: engine",
            f"        image: {image}",
            *([f"        command: {_yaml_list(command)}"] if command else []),
            f"        args: {_yaml_list(args)}",
            "        ports: [{containerPort: 8000}]",
            f"        resources: {{limits: {{{_GPU_RESOURCE[vendor]}: {gpus_each}}}}}",
            *mounts,
            *volumes,
            "---",
            "apiVersion: v1",
            "kind: Service",
            "metadata: {name: llm}",
            "spec: {selector: {app: llm}, ports: [{port: 8000, targetPort: 8000}]}",
        ]
    )


def _lws(engine: str, vendor: str, image: str, cmd: str, nodes: int, gpus_each: int, replicas: int) -> str:
    """An engine spanning ``nodes`` nodes: a LeaderWorkerSet whose leader starts the Ray head
    and the engine, and whose workers join the Ray cluster (vLLM's LWS deployment recipe)."""
    mounts, volumes = _shm()
    leader = f"ray start --head --port=6379 && {cmd} --host 0.0.0.0 --port 8000"
    worker = "ray start --address=$(LWS_LEADER_ADDRESS):6379 --block"
    res = f"{{limits: {{{_GPU_RESOURCE[vendor]}: {gpus_each}}}}}"

    def pod(name: str, run: str, port: bool) -> list[str]:
        return [
            "      spec:",
            "        containers:",
            f"        - name: {name}",
            f"          image: {image}",
            f"          command: {_yaml_list(['sh', '-c', run])}",
            *(["          ports: [{containerPort: 8000}]"] if port else []),
            f"          resources: {res}",
            *("  " + m for m in mounts),
            *("  " + v for v in volumes),
        ]

    del engine
    return "\n".join(
        [
            "apiVersion: leaderworkerset.x-k8s.io/v1",
            "kind: LeaderWorkerSet",
            "metadata: {name: llm}",
            "spec:",
            f"  replicas: {replicas}",
            "  leaderWorkerTemplate:",
            f"    size: {nodes}",
            "    restartPolicy: RecreateGroupOnPodRestart",
            "    leaderTemplate:",
            "      metadata: {labels: {role: leader}}",
            *pod("leader", leader, True),
            "    workerTemplate:",
            *pod("worker", worker, False),
            "---",
            "apiVersion: v1",
            "kind: Service",
            "metadata: {name: llm-leader}",
            "spec: {selector: {leaderworkerset.sigs.k8s.io/name: llm, role: leader}, ports: [{port: 8000, targetPort: 8000}]}",
        ]
    )


def _llamacpp(dep: Deployment, m: _Model, replicas: int, boxes: int = 1) -> dict[str, str]:
    """llama-server (and Ollama where the model has a library tag): one slot per user, the
    context shared by the slots; the 8-bit KV cache needs flash attention."""
    users = max(dep.users, 1)
    ctx = dep.max_model_len * users
    source = ["-hf", f"{m.repo}:{m.gguf_tag}"] if m.gguf_tag else ["-m", m.repo]
    args = [*source, "-ngl", "99", "-c", str(ctx), "-np", str(users)]
    if dep.layout.pp > 1:
        args += ["--split-mode", "layer", "--tensor-split", ",".join(["1"] * dep.layout.pp)]
    if dep.kv_dtype not in ("auto", "f16"):
        args += ["-ctk", dep.kv_dtype, "-ctv", dep.kv_dtype, "--flash-attn", "on"]
    where = "  # one per Mac, behind a load balancer" if replicas > 1 and dep.gpu.vendor == "apple" else ""
    base = shlex.join(["llama-server", *args])
    out = {"llama-server": f"{base} --host 0.0.0.0 --port 8000{m.note}{where}"}
    if m.ollama and dep.layout.gpus == 1:
        env = [f"OLLAMA_NUM_PARALLEL={users}", f"OLLAMA_CONTEXT_LENGTH={dep.max_model_len}"]
        if dep.kv_dtype not in ("auto", "f16"):
            env += [f"OLLAMA_KV_CACHE_TYPE={dep.kv_dtype}", "OLLAMA_FLASH_ATTENTION=1"]
        out["ollama"] = (
            f"{' '.join(env)} ollama serve & sleep 3 && ollama run {m.ollama}"
            "  # the macOS app: set the same with `launchctl setenv NAME VALUE` and restart Ollama"
        )
    image = IMAGES.get(("llamacpp", dep.gpu.vendor))
    if image is not None:
        out["docker"] = _docker("llamacpp", dep.gpu.vendor, image, base, args)
        per_box = max(1, replicas // max(boxes, 1))
        if per_box > 1:
            compose = _compose("llamacpp", dep.gpu.vendor, image, base, args, per_box, dep.layout.gpus)
            out["compose"] = (
                f"# run this on each of the {boxes} boxes and balance the users across them\n{compose}"
                if boxes > 1
                else compose
            )
    return out
