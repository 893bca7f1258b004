"""GGUF metadata (llama.cpp's key names) → a Hugging Face-style config dict, so GGUF models
flow through the same architecture code as everything else."""

from __future__ import annotations

from typing import Any

from gpusizer.errors import BadInputError

__all__ = ["config_from_gguf"]

# GGUF architecture name → HF model_type.
_MODEL_TYPE = {
    "llama": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "qwen2moe": "qwen2_moe",
    "qwen3moe": "qwen3_moe",
    "deepseek2": "deepseek_v3",
    "gemma2": "gemma2",
    "gemma3": "gemma3_text",
    "phi3": "phi3",
    "mistral": "mistral",
    "gpt-oss": "gpt_oss",
    "gptoss": "gpt_oss",
}


def _get(reader: Any, key: str, default: Any = None) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def config_from_gguf(reader: Any) -> tuple[dict[str, Any], str | None]:
    """(config dict, file-type name such as 'MOSTLY_Q4_K_M') from an open GGUFReader."""
    arch = _get(reader, "general.architecture")
    if not arch:
        raise BadInputError("GGUF", "general.architecture missing from the header")
    p = f"{arch}."

    def need(key: str) -> int:
        value = _get(reader, p + key)
        if value is None:
            raise BadInputError("GGUF", f"{p + key} missing from the header")
        return int(value)

    names = {t.name for t in reader.tensors}
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = _get(reader, p + "vocab_size") or (len(tokens.data) if tokens is not None else None)
    if not vocab:
        raise BadInputError("GGUF", "vocabulary size not found (no vocab_size or tokenizer tokens)")
    heads = need("attention.head_count")
    cfg: dict[str, Any] = {
        "model_type": _MODEL_TYPE.get(str(arch), str(arch)),
        "hidden_size": need("embedding_length"),
        "num_hidden_layers": need("block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": int(_get(reader, p + "attention.head_count_kv", heads)),
        "intermediate_size": int(_get(reader, p + "feed_forward_length", 0) or 0) or None,
        "vocab_size": int(vocab),
        "max_position_embeddings": int(_get(reader, p + "context_length", 0) or 0),
        "tie_word_embeddings": "output.weight" not in names,
    }
    key_len = _get(reader, p + "attention.key_length")
    if key_len and not _get(reader, p + "attention.kv_lora_rank"):
        cfg["head_dim"] = int(key_len)
    experts = _get(reader, p + "expert_count")
    if experts:
        cfg["num_experts"] = int(experts)
        cfg["num_experts_per_tok"] = int(_get(reader, p + "expert_used_count", 1))
        cfg["moe_intermediate_size"] = int(_get(reader, p + "expert_feed_forward_length", 0) or 0) or None
    kv_lora = _get(reader, p + "attention.kv_lora_rank")
    if kv_lora:  # DeepSeek MLA
        rope = int(_get(reader, p + "rope.dimension_count", 64))
        kmla = int(
            _get(reader, p + "attention.key_length_mla", 0) or _get(reader, p + "attention.key_length", 192)
        )
        vmla = int(
            _get(reader, p + "attention.value_length_mla", 0)
            or _get(reader, p + "attention.value_length", 128)
        )
        cfg.update(
            {
                "kv_lora_rank": int(kv_lora),
                "q_lora_rank": int(_get(reader, p + "attention.q_lora_rank", 0) or 0) or None,
                "qk_rope_head_dim": rope,
                "qk_nope_head_dim": kmla - rope,
                "v_head_dim": vmla,
                "n_routed_experts": cfg.pop("num_experts", None),
                "n_shared_experts": int(_get(reader, p + "expert_shared_count", 0) or 0),
                "first_k_dense_replace": int(_get(reader, p + "leading_dense_block_count", 0) or 0),
                "num_key_value_heads": heads,
            }
        )
    window = _get(reader, p + "attention.sliding_window")
    if window:
        cfg["sliding_window"] = int(window)
    ftype = _get(reader, "general.file_type")
    ftype_name = None
    if ftype is not None:
        try:
            from gguf import LlamaFileType

            ftype_name = LlamaFileType(int(ftype)).name.removeprefix("MOSTLY_")
        except (ImportError, ValueError):
            ftype_name = str(ftype)
    return {k: v for k, v in cfg.items() if v is not None}, ftype_name
