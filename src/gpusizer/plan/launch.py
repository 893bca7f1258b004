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
from gpusizer.engines import EngineSpec, LaunchInput, all_engines, engine_spec
from gpusizer.engines.base import ONLINE_QUANTS, PRE_QUANTIZED

__all__ = ["IMAGES", "checkpoint_for", "launch_commands"]

# Container images by (engine, vendor), from the engine registry. vLLM's CUDA image and the
# llama.cpp image run the serving command as their entrypoint (args follow the image); the
# others take the full command (``EngineSpec.container_args``).
IMAGES = {(s.name, vendor): image for s in all_engines() for vendor, image in s.images.items()}
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
    kind = engine_spec(dep.engine).checkpoints
    if kind == "gguf":
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
    if (
        kind == "modelopt"
    ):  # TensorRT-LLM loads NVIDIA ModelOpt checkpoints, not AutoAWQ/GPTQ/compressed-tensors
        return _Model(
            repo=f"<{q.upper()}-ModelOpt-checkpoint-of-{model_id}>",
            note=f"  # TensorRT-LLM needs a ModelOpt-quantized {q.upper()} checkpoint: make one with NVIDIA "
            "TensorRT Model Optimizer (modelopt) and put its path here",
            pre_quantized=True,
        )
    ck = checkpoint_for(model_id, q, native_quant, catalogue)
    if ck is not None:
        return _Model(repo=ck.repo, note="", pre_quantized=True)
    if q in ONLINE_QUANTS:
        return _Model(repo=model_id, note="", pre_quantized=False)
    note = (
        f"  # no published {q.upper()} checkpoint of {model_id} in data/checkpoints.yaml: quantize it "
        "first (AutoAWQ / llm-compressor) and put its path here"
        if q in PRE_QUANTIZED
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
    """Commands for ``replicas`` engines of ``dep``. ``gpu_memory_utilization`` is the value
    of the engine's own memory-fraction setting (``EngineSpec.memory_fraction``: vLLM
    gpu_memory_utilization, SGLang mem_fraction_static, TensorRT-LLM
    kv_cache_free_gpu_memory_fraction). An engine with no serving command gets none."""
    spec = engine_spec(dep.engine)
    if spec.launch_args is None:
        return {}
    m = _model(dep, model_id, native_quant, checkpoints)
    inp = _launch_input(dep, m, gpu_memory_utilization)
    if spec.checkpoints == "gguf":
        return _gguf_server(dep, spec, m, inp, replicas, boxes)
    vendor = dep.gpu.vendor
    nodes = max(dep.layout.nodes, boxes_per_replica)
    argv = spec.launch_args(inp)
    cmd = shlex.join([*spec.command, *argv])
    options = spec.options_file(inp)
    pre = f"echo {shlex.quote(options[1])} > {options[0]}" if options else None
    out = {spec.command_name: (f"{pre} && " if pre else "") + cmd + m.note + spec.launch_note(inp)}
    image = IMAGES.get((dep.engine, vendor))
    if image is not None:
        out["docker"] = _docker(dep.engine, vendor, image, cmd, pre)
        per_box = max(1, replicas // max(boxes, 1))  # engines on one box
        if per_box > 1 and nodes == 1:
            compose = _compose(dep.engine, vendor, image, cmd, pre, per_box, dep.layout.gpus)
            out["compose"] = (
                f"# run this on each of the {boxes} boxes and balance the users across them\n{compose}"
                if boxes > 1
                else compose
            )
        out["kubernetes"] = (
            _lws(
                image, vendor, (f"{pre} && " if pre else "") + cmd, nodes, dep.layout.gpus // nodes, replicas
            )
            if nodes > 1
            else _k8s(dep.engine, vendor, image, cmd, pre, replicas, dep.layout.gpus)
        )
    return out


def _launch_input(dep: Deployment, m: _Model, frac: float) -> LaunchInput:
    """The plain values an engine's command line is built from."""
    return LaunchInput(
        repo=m.repo,
        pre_quantized=m.pre_quantized,
        quant=dep.quant.fmt.key,
        vendor=dep.gpu.vendor,
        tp=dep.layout.tp,
        pp=dep.layout.pp,
        nodes=dep.layout.nodes,
        attention_dp=dep.layout.attention_dp,
        ep=dep.layout.ep,
        max_model_len=dep.max_model_len,
        users=dep.users,
        memory_fraction=frac,
        kv_dtype=dep.kv_dtype,
        gguf_tag=m.gguf_tag,
    )


def _docker(engine: str, vendor: str, image: str, cmd: str, pre: str | None) -> str:
    run = ["docker", "run", *_DOCKER_DEVICES[vendor], "--ipc=host", "--shm-size", "16g", "-p", "8000:8000"]
    cache = '-v "$HOME/.cache/huggingface:/root/.cache/huggingface"'  # double quotes: $HOME expands
    command, args = _container_args(engine, vendor, cmd, pre)
    return f"{shlex.join(run)} {cache} {shlex.join([image, *command, *args])}"


def _container_args(engine: str, vendor: str, cmd: str, pre: str | None) -> tuple[list[str], list[str]]:
    """(command, args) for a container spec: the image entrypoint is used where it serves;
    a command that first writes its options file runs under ``sh -c``."""
    command, args = engine_spec(engine).container_args(vendor, shlex.split(cmd))
    if pre:
        return ["sh", "-c", f"{pre} && {shlex.join([*command, *args])}"], []
    return command, args


def _compose(
    engine: str, vendor: str, image: str, cmd: str, pre: str | None, replicas: int, gpus_each: int
) -> str:
    """One engine per replica on its own GPUs, and an nginx round-robin router."""
    lines = ["services:"]
    command, args = _container_args(engine, vendor, cmd, pre)
    full = _yaml_list(command) if pre else shlex.join([*command, *args])
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


def _k8s(
    engine: str, vendor: str, image: str, cmd: str, pre: str | None, replicas: int, gpus_each: int
) -> str:
    """A Deployment of ``replicas`` pods, one engine each, behind a Service."""
    command, args = _container_args(engine, vendor, cmd, pre)
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
            *([f"        args: {_yaml_list(args)}"] if args else []),
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


def _lws(image: str, vendor: str, cmd: str, nodes: int, gpus_each: int, replicas: int) -> str:
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


def _gguf_server(
    dep: Deployment, spec: EngineSpec, m: _Model, inp: LaunchInput, replicas: int, boxes: int = 1
) -> dict[str, str]:
    """llama-server (and Ollama where the model has a library tag): one slot per user, the
    context shared by the slots; the 8-bit KV cache needs flash attention."""
    assert spec.launch_args is not None
    users = max(dep.users, 1)
    args = spec.launch_args(inp)
    where = "  # one per Mac, behind a load balancer" if replicas > 1 and dep.gpu.vendor == "apple" else ""
    base = shlex.join([*spec.command, *args])
    out = {spec.command_name: f"{base} --host 0.0.0.0 --port 8000{m.note}{where}"}
    if m.ollama and dep.layout.gpus == 1:
        env = [f"OLLAMA_NUM_PARALLEL={users}", f"OLLAMA_CONTEXT_LENGTH={dep.max_model_len}"]
        if dep.kv_dtype not in ("auto", "f16"):
            env += [f"OLLAMA_KV_CACHE_TYPE={dep.kv_dtype}", "OLLAMA_FLASH_ATTENTION=1"]
        out["ollama"] = (
            f"{' '.join(env)} ollama serve & sleep 3 && ollama run {m.ollama}"
            "  # the macOS app: set the same with `launchctl setenv NAME VALUE` and restart Ollama"
        )
    image = IMAGES.get((dep.engine, dep.gpu.vendor))
    if image is not None:
        out["docker"] = _docker(dep.engine, dep.gpu.vendor, image, base, None)
        per_box = max(1, replicas // max(boxes, 1))
        if per_box > 1:
            compose = _compose(dep.engine, dep.gpu.vendor, image, base, None, per_box, dep.layout.gpus)
            out["compose"] = (
                f"# run this on each of the {boxes} boxes and balance the users across them\n{compose}"
                if boxes > 1
                else compose
            )
    return out
