"""GGUF metadata (llama.cpp's key names) → a Hugging Face-style config dict, so GGUF models
flow through the same architecture code as everything else."""

from __future__ import annotations

import operator
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
    """A header value as the gguf package reads it (numpy scalars for numbers), or ``default``."""
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def _int(key: str, value: Any) -> int:
    """An integer header value; any other type is a one-line error naming the key."""
    if isinstance(value, bool):
        raise BadInputError("GGUF", f"{key} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError as exc:
        raise BadInputError("GGUF", f"{key} must be an integer, got {str(value)[:40]!r}") from exc


def config_from_gguf(reader: Any) -> tuple[dict[str, Any], str | None]:
    """(config dict, file-type name such as 'MOSTLY_Q4_K_M') from an open GGUFReader."""
    arch = _get(reader, "general.architecture")
    if not arch:
        raise BadInputError("GGUF", "general.architecture missing from the header")
    p = f"{arch}."

    def num(key: str) -> int:
        """``{arch}.key`` as an int; 0 when absent (GGUF writes no key for "none")."""
        value = _get(reader, p + key)
        return 0 if value is None else _int(p + key, value)

    def need(key: str) -> int:
        if _get(reader, p + key) is None:
            raise BadInputError("GGUF", f"{p + key} missing from the header")
        return num(key)

    names = {t.name for t in reader.tensors}
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = num("vocab_size") or (len(tokens.data) if tokens is not None else 0)
    if not vocab:
        raise BadInputError("GGUF", "vocabulary size not found (no vocab_size or tokenizer tokens)")
    heads = need("attention.head_count")
    cfg: dict[str, Any] = {
        "model_type": _MODEL_TYPE.get(str(arch), str(arch)),
        "hidden_size": need("embedding_length"),
        "num_hidden_layers": need("block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": num("attention.head_count_kv") or heads,
        "intermediate_size": num("feed_forward_length") or None,
        "vocab_size": vocab,
        "max_position_embeddings": num("context_length"),
        "tie_word_embeddings": "output.weight" not in names,
    }
    key_len = num("attention.key_length")
    kv_lora = num("attention.kv_lora_rank")
    if key_len and not kv_lora:
        cfg["head_dim"] = key_len
    experts = num("expert_count")
    if experts:
        cfg["num_experts"] = experts
        cfg["num_experts_per_tok"] = num("expert_used_count") or 1
        cfg["moe_intermediate_size"] = num("expert_feed_forward_length") or None
    if kv_lora:  # DeepSeek MLA
        rope = num("rope.dimension_count") or 64
        kmla = num("attention.key_length_mla") or key_len or 192
        vmla = num("attention.value_length_mla") or num("attention.value_length") or 128
        cfg.update(
            {
                "kv_lora_rank": kv_lora,
                "q_lora_rank": num("attention.q_lora_rank") or None,
                "qk_rope_head_dim": rope,
                "qk_nope_head_dim": kmla - rope,
                "v_head_dim": vmla,
                "n_routed_experts": cfg.pop("num_experts", None),
                "n_shared_experts": num("expert_shared_count"),
                "first_k_dense_replace": num("leading_dense_block_count"),
                "num_key_value_heads": heads,
            }
        )
    window = num("attention.sliding_window")
    if window:
        cfg["sliding_window"] = window
    ftype = _get(reader, "general.file_type")
    ftype_name = None
    if ftype is not None:
        try:
            from gguf import LlamaFileType

            ftype_name = LlamaFileType(_int("general.file_type", ftype)).name.removeprefix("MOSTLY_")
        except (ImportError, ValueError, BadInputError):
            ftype_name = str(ftype)
    return {k: v for k, v in cfg.items() if v is not None}, ftype_name
