"""Ready-to-run launch commands for a chosen plan: vLLM, SGLang and docker commands, a
compose file with one service per replica behind an nginx router, and a Kubernetes
Deployment (or the LeaderWorkerSet note for engines spanning nodes). One argument list
renders every format."""

from __future__ import annotations

import shlex

from gpusizer.domain.scenario import Deployment

__all__ = ["launch_commands"]

_VLLM_QUANT = {"awq": "awq_marlin", "gptq": "gptq_marlin", "fp8": "fp8", "bnb-nf4": "bitsandbytes"}


def launch_commands(
    dep: Deployment,
    model_id: str,
    gpu_memory_utilization: float,
    native_quant: str | None = None,
    replicas: int = 1,
) -> dict[str, str]:
    """``native_quant`` is the checkpoint's own format: another 4-bit format needs a
    pre-quantized checkpoint; FP8 of a 16-bit checkpoint is quantized online by vLLM."""
    tp, pp = dep.layout.tp, dep.layout.pp
    q = dep.quant.fmt.key
    if dep.engine == "llamacpp":
        ctx = dep.max_model_len * dep.users
        split = f" --split-mode layer --tensor-split {','.join(['1'] * pp)}" if pp > 1 else ""
        return {
            "llama-server": f"llama-server -m <{model_id}.{q.upper()}.gguf> -ngl 99 -c {ctx} -np {dep.users}{split}"
        }
    converted = q != (native_quant or "bf16") and q not in ("bf16", "fp16")
    repo = model_id
    note = ""
    if converted and q in ("awq", "gptq", "mxfp4", "nvfp4", "bnb-nf4"):
        repo = f"<{q.upper()}-checkpoint-of-{model_id}>"
        note = f"  # {q.upper()} needs a pre-quantized checkpoint of the model"
    dp_attn = dep.layout.attention_dp
    # vLLM runs DP attention as data-parallel ranks sharing expert-parallel MoE layers
    args = (
        ["--data-parallel-size", str(tp), "--tensor-parallel-size", "1"]
        if dp_attn
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
        f"{gpu_memory_utilization:g}",
    ]
    if converted and q in _VLLM_QUANT:
        args += ["--quantization", _VLLM_QUANT[q]]
    if dep.kv_dtype != "auto":
        args += ["--kv-cache-dtype", dep.kv_dtype]
    if dep.layout.ep or dp_attn:
        args += ["--enable-expert-parallel"]
    flat = " ".join(args)
    out = {
        "vllm": f"vllm serve {repo} {flat}{note}",
        "sglang": (
            f"python -m sglang.launch_server --model-path {repo} --tp {tp} --context-length "
            f"{dep.max_model_len} --max-running-requests {max(dep.users, 1)}"
            + (f" --dp {tp} --enable-dp-attention" if dp_attn else "")
            + note
        ),
        "docker": (
            f"docker run --gpus all --ipc=host -p 8000:8000 -v ~/.cache/huggingface:/root/.cache/huggingface "
            f"vllm/vllm-openai:latest --model {repo} {flat}"
        ),
    }
    if replicas > 1:
        out["compose"] = _compose(repo, args, replicas, dep.layout.gpus)
    out["kubernetes"] = _k8s(repo, args, replicas, dep.layout.gpus, dep.layout.nodes, out["vllm"])
    return out


def _compose(repo: str, args: list[str], replicas: int, gpus_each: int) -> str:
    """One vLLM service per replica on its own GPUs, and an nginx round-robin router."""
    lines = ["services:"]
    command = shlex.join(["--model", repo, *args])
    for i in range(replicas):
        ids = ", ".join(f'"{i * gpus_each + j}"' for j in range(gpus_each))
        lines += [
            f"  vllm-{i}:",
            "    image: vllm/vllm-openai:latest",
            "    ipc: host",
            f"    command: {command}",
            '    volumes: ["~/.cache/huggingface:/root/.cache/huggingface"]',
            "    deploy:",
            "      resources:",
            "        reservations:",
            f"          devices: [{{driver: nvidia, device_ids: [{ids}], capabilities: [gpu]}}]",
        ]
    upstream = " ".join(f"server vllm-{i}:8000;" for i in range(replicas))
    conf = (
        f"events {{}} http {{ upstream v {{ {upstream} }} server {{ listen 8000; "
        "location / { proxy_pass http://v; proxy_buffering off; } } }"
    )
    lines += [
        "  router:",
        "    image: nginx:stable",
        '    ports: ["8000:8000"]',
        f'    command: ["/bin/sh", "-c", "echo \'{conf}\' > /etc/nginx/nginx.conf && nginx -g \'daemon off;\'"]',
        "    depends_on: [" + ", ".join(f"vllm-{i}" for i in range(replicas)) + "]",
    ]
    return "\n".join(lines)


def _k8s(repo: str, args: list[str], replicas: int, gpus_each: int, nodes: int, vllm: str) -> str:
    """A Deployment of ``replicas`` pods, one engine each, behind a Service. Engines that
    span nodes (PP across nodes) need a LeaderWorkerSet with Ray instead."""
    if nodes > 1:
        return (
            f"# {nodes} nodes per engine: deploy a LeaderWorkerSet (size {nodes}) running Ray; "
            f"the leader starts: {vllm} --distributed-executor-backend ray"
        )
    arg_list = ", ".join(f'"{a}"' for a in ["--model", repo, *args])
    return "\n".join(
        [
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata: {name: vllm}",
            "spec:",
            f"  replicas: {replicas}",
            "  selector: {matchLabels: {app: vllm}}",
            "  template:",
            "    metadata: {labels: {app: vllm}}",
            "    spec:",
            "      containers:",
            "      - name: vllm",
            "        image: vllm/vllm-openai:latest",
            f"        args: [{arg_list}]",
            "        ports: [{containerPort: 8000}]",
            f"        resources: {{limits: {{nvidia.com/gpu: {gpus_each}}}}}",
            "---",
            "apiVersion: v1",
            "kind: Service",
            "metadata: {name: vllm}",
            "spec: {selector: {app: vllm}, ports: [{port: 8000, targetPort: 8000}]}",
        ]
    )
