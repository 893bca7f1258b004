"""Ready-to-run launch commands for a chosen plan."""

from __future__ import annotations

from gpusizer.domain.scenario import Deployment

__all__ = ["launch_commands"]

_VLLM_QUANT = {"awq": "awq_marlin", "gptq": "gptq_marlin", "fp8": "fp8", "bnb-nf4": "bitsandbytes"}


def launch_commands(
    dep: Deployment, model_id: str, gpu_memory_utilization: float, native_quant: str | None = None
) -> dict[str, str]:
    """vLLM, SGLang and docker commands (llama-server for llama.cpp plans). ``native_quant``
    is the checkpoint's own format: another 4-bit format needs a pre-quantized checkpoint,
    FP8 of a 16-bit checkpoint is quantized online by the engine."""
    tp, pp = dep.layout.tp, dep.layout.pp
    q = dep.quant.fmt.key
    if dep.engine == "llamacpp":
        ctx = dep.max_model_len * dep.users
        return {
            "llama-server": f"llama-server -m <{model_id}.{q.upper()}.gguf> -ngl 99 -c {ctx} -np {dep.users}"
            + (f" --split-mode layer --tensor-split {','.join(['1'] * pp)}" if pp > 1 else "")
        }
    repo = model_id
    note = ""
    converted = q != (native_quant or "bf16") and q not in ("bf16", "fp16")
    if converted and q in ("awq", "gptq", "mxfp4", "nvfp4", "bnb-nf4"):
        repo = f"<an {q.upper()} checkpoint of {model_id}>"
        note = f"  # {q.upper()} needs a pre-quantized checkpoint"
    args = [f"vllm serve {repo}", f"--tensor-parallel-size {tp}"]
    if pp > 1:
        args.append(f"--pipeline-parallel-size {pp}")
    args += [
        f"--max-model-len {dep.max_model_len}",
        f"--max-num-seqs {max(dep.users, 1)}",
        f"--gpu-memory-utilization {gpu_memory_utilization:g}",
    ]
    if converted and q in _VLLM_QUANT:
        args.append(f"--quantization {_VLLM_QUANT[q]}")
    if dep.kv_dtype != "auto":
        args.append(f"--kv-cache-dtype {dep.kv_dtype}")
    vllm = " ".join(args) + note
    sglang = (
        f"python -m sglang.launch_server --model-path {repo} --tp {tp} --context-length "
        f"{dep.max_model_len} --max-running-requests {dep.users}"
    ) + note
    docker = (
        f"docker run --gpus all --ipc=host -p 8000:8000 -v ~/.cache/huggingface:/root/.cache/huggingface "
        f"vllm/vllm-openai:latest --model {repo} --tensor-parallel-size {tp} "
        f"--max-model-len {dep.max_model_len} --max-num-seqs {max(dep.users, 1)}"
    )
    return {"vllm": vllm, "sglang": sglang, "docker": docker}
