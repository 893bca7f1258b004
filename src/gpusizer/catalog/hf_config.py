"""Hugging Face ``config.json`` → ``ModelArch``.

Pure: takes the parsed JSON object, returns a frozen ``ModelArch`` or raises a
``BadInputError`` naming the missing or malformed field. Covers Llama/Mistral/Qwen2/
Qwen3 (dense and MoE), Mixtral, Gemma 1–3, Phi-3/4, DeepSeek V2/V3/V3.2 (MLA + MoE +
MTP + DSA indexer) and gpt-oss; other decoder-only families fall back to the Llama shape.
The bounds every field is checked against live in ``config_bounds`` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpusizer.catalog.arch import LayerAttention, MlaSpec, ModelArch, MoeSpec
from gpusizer.catalog.config_bounds import CONFIG_INT_LIMITS, check_config_bounds, text_config
from gpusizer.errors import BadInputError

__all__ = ["CONFIG_INT_LIMITS", "arch_from_hf_config", "check_config_bounds"]

# Families whose MLP is a plain two-matrix fc1/fc2 (no gate).
_PLAIN_MLP = {"phi", "gpt2", "gpt_neox", "falcon", "starcoder2", "opt", "bloom", "gpt_bigcode"}
# Families with LayerNorm (weight + bias) instead of RMSNorm.
_LAYERNORM = {"phi", "gpt2", "gpt_neox", "falcon", "starcoder2", "opt", "bloom", "gpt_bigcode"}
# Families whose q/k/v projections carry a bias regardless of `attention_bias`.
_QKV_BIAS = {"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl"}
# Families that tie embeddings when the config does not say (their config class default).
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text"}


def _int(cfg: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if value is None:
        raise BadInputError(f"{where}.{key}", "missing", "a positive integer")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadInputError(f"{where}.{key}", f"must be a positive integer, got {value!r}")
    return value


def _opt_int(cfg: Mapping[str, Any], key: str) -> int | None:
    value = cfg.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInputError(f"config.{key}", f"must be a non-negative integer, got {value!r}")
    return value


def _kind(layer_type: str) -> LayerAttention:
    return "sliding" if layer_type.startswith("sliding") else "full"


def _layer_attention(
    cfg: Mapping[str, Any], model_type: str, n_layers: int
) -> tuple[tuple[LayerAttention, ...], int | None]:
    """Which layers use a sliding window — only when the config enables it."""
    window = cfg.get("sliding_window")
    full: tuple[LayerAttention, ...] = tuple(_kind("full") for _ in range(n_layers))
    if cfg.get("use_sliding_window") is False:  # Qwen2/2.5: window present but disabled
        return full, None
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == n_layers and window:
        kinds: tuple[LayerAttention, ...] = tuple(_kind(str(t)) for t in layer_types)
        return kinds, int(window) if "sliding" in kinds else None
    if not window:
        return full, None
    sliding: LayerAttention = "sliding"
    dense: LayerAttention = "full"
    if model_type == "gemma2":  # even layers slide (HF Gemma2: layer_idx % 2 == 0)
        return tuple(sliding if i % 2 == 0 else dense for i in range(n_layers)), int(window)
    if model_type in ("gemma3", "gemma3_text"):
        pattern = int(cfg.get("sliding_window_pattern", 6))
        kinds = tuple(dense if (i + 1) % pattern == 0 else sliding for i in range(n_layers))
        return kinds, int(window)
    max_pos = cfg.get("max_position_embeddings")
    if isinstance(max_pos, int) and int(window) >= max_pos:
        return full, None
    return tuple(sliding for _ in range(n_layers)), int(window)  # Mistral-7B-v0.1: every layer slides


def _moe(cfg: Mapping[str, Any], model_type: str, n_layers: int) -> tuple[MoeSpec | None, tuple[int, ...]]:
    n_routed = cfg.get("n_routed_experts") or cfg.get("num_local_experts") or cfg.get("num_experts")
    if not n_routed or int(n_routed) <= 1:
        return None, ()
    topk = cfg.get("num_experts_per_tok") or cfg.get("experts_per_token") or cfg.get("moe_topk")
    if not topk:
        raise BadInputError("config.num_experts_per_tok", "missing for a mixture-of-experts model")
    if cfg.get("moe_intermediate_size"):
        expert_width = _int(cfg, "moe_intermediate_size", "config")
    else:
        expert_width = _int(cfg, "intermediate_size", "config")
    n_shared = int(cfg.get("n_shared_experts") or 0)
    if model_type == "llama4_text":  # Llama 4: MoE on every step-th layer, one shared expert each
        listed = cfg.get("moe_layers")
        step = int(cfg.get("interleave_moe_layer_step") or 1)
        if isinstance(listed, list):
            layers = tuple(i for i in range(n_layers) if i in set(listed))
        else:  # Llama4TextConfig: range(step - 1, num_hidden_layers, step)
            layers = tuple(i for i in range(n_layers) if (i + 1) % step == 0)
        n_shared = 1
    elif "first_k_dense_replace" in cfg or "n_routed_experts" in cfg:  # DeepSeek V2/V3
        first_dense = int(cfg.get("first_k_dense_replace") or 0)
        freq = int(cfg.get("moe_layer_freq") or 1)
        layers = tuple(i for i in range(n_layers) if i >= first_dense and i % freq == 0)
    else:  # Qwen-MoE: decoder_sparse_step and mlp_only_layers; Mixtral/gpt-oss: every layer
        step = int(cfg.get("decoder_sparse_step") or 1)
        dense_only = set(cfg.get("mlp_only_layers") or [])
        layers = tuple(i for i in range(n_layers) if i not in dense_only and (i + 1) % step == 0)
    shared_width = int(cfg.get("shared_expert_intermediate_size") or 0)
    spec = MoeSpec(
        num_experts=int(n_routed),
        experts_per_token=int(topk),
        expert_intermediate_size=expert_width,
        num_shared_experts=n_shared,
        shared_intermediate_size=shared_width,
        shared_expert_gate=shared_width > 0,
        router_bias=model_type == "gpt_oss" or cfg.get("topk_method") == "noaux_tc",
        expert_bias=model_type == "gpt_oss",
    )
    return spec, layers


def _attention_dims(
    cfg: Mapping[str, Any], hidden: int, n_heads: int
) -> tuple[int, int, int, MlaSpec | None]:
    """(query/key head width, value head width, rotary width, MLA spec or None). MLA
    (DeepSeek V2/V3) sets all three from its own fields."""
    head_dim = cfg.get("head_dim") or hidden // n_heads
    rotary = int(int(head_dim) * float(cfg.get("partial_rotary_factor") or cfg.get("rotary_pct") or 1.0))
    if not cfg.get("kv_lora_rank"):
        return int(head_dim), int(head_dim), rotary, None
    q_lora = _opt_int(cfg, "q_lora_rank") or None
    mla = MlaSpec(
        q_lora_rank=q_lora,
        kv_lora_rank=_int(cfg, "kv_lora_rank", "config"),
        qk_nope_head_dim=_int(cfg, "qk_nope_head_dim", "config"),
        qk_rope_head_dim=_int(cfg, "qk_rope_head_dim", "config"),
        v_head_dim=_int(cfg, "v_head_dim", "config"),
    )
    return mla.qk_nope_head_dim + mla.qk_rope_head_dim, mla.v_head_dim, mla.qk_rope_head_dim, mla


def _max_positions(cfg: Mapping[str, Any]) -> int:
    """``max_position_embeddings``, widened to what a YaRN rope scaling spans."""
    max_pos = int(cfg.get("max_position_embeddings") or 0)
    rope = cfg.get("rope_scaling") or {}
    if isinstance(rope, Mapping) and rope.get("type", rope.get("rope_type")) == "yarn":
        # vLLM's YaRN rotary cache spans original_max_position_embeddings × factor.
        orig = rope.get("original_max_position_embeddings")
        factor = rope.get("factor")
        if isinstance(orig, int) and isinstance(factor, int | float):
            max_pos = max(max_pos, int(orig * factor))
    return max_pos


def arch_from_hf_config(config: Mapping[str, Any], name: str = "model") -> ModelArch:
    """Normalise a Hugging Face ``config.json`` object into a ``ModelArch``; its fields are
    checked against ``CONFIG_INT_LIMITS`` and their types first."""
    check_config_bounds(config)
    cfg = text_config(config)
    model_type = str(cfg.get("model_type") or config.get("model_type") or "llama")
    hidden = _int(cfg, "hidden_size", "config")
    n_layers = _int(cfg, "num_hidden_layers", "config")
    n_heads = _int(cfg, "num_attention_heads", "config")
    n_kv = _int(cfg, "num_key_value_heads", "config", default=n_heads)
    vocab = _int(cfg, "vocab_size", "config")
    if n_heads % n_kv:
        raise BadInputError(
            "config.num_key_value_heads", f"{n_kv} does not divide num_attention_heads {n_heads}"
        )
    head_dim, v_head_dim, rotary, mla = _attention_dims(cfg, hidden, n_heads)
    moe, moe_layers = _moe(cfg, model_type, n_layers)
    intermediate = cfg.get("intermediate_size") or 4 * hidden
    if model_type == "llama4_text" and cfg.get("intermediate_size_mlp"):
        intermediate = cfg["intermediate_size_mlp"]  # Llama 4's dense layers; intermediate_size is per expert
    layer_attn, window = _layer_attention(cfg, model_type, n_layers)
    tie = cfg.get("tie_word_embeddings")
    if tie is None:
        tie = model_type in _TIED_BY_DEFAULT
    attention_bias = bool(cfg.get("attention_bias", False))
    quant = config.get("quantization_config") or cfg.get("quantization_config")
    max_pos = _max_positions(cfg)
    return ModelArch(
        name=name,
        model_type=model_type,
        hidden_size=hidden,
        num_layers=n_layers,
        num_attention_heads=n_heads,
        num_kv_heads=n_kv,
        head_dim=head_dim,
        v_head_dim=v_head_dim,
        intermediate_size=int(intermediate),
        gated_mlp=model_type not in _PLAIN_MLP,
        vocab_size=vocab,
        tie_word_embeddings=bool(tie),
        qkv_bias=attention_bias or model_type in _QKV_BIAS,
        o_bias=attention_bias and model_type not in _QKV_BIAS,
        mlp_bias=bool(cfg.get("mlp_bias", False)) or model_type in _PLAIN_MLP,
        norms_per_layer=4 if model_type in ("gemma2", "gemma3", "gemma3_text") else 2,
        qk_norm=model_type in ("qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2"),
        layer_norm_bias=model_type in _LAYERNORM,
        attention_sinks=model_type == "gpt_oss",
        mla=mla,
        moe=moe,
        moe_layers=moe_layers,
        layer_attention=layer_attn,
        sliding_window=window,
        mtp_layers=int(cfg.get("num_nextn_predict_layers") or 0),
        index_n_heads=int(cfg.get("index_n_heads") or 0),
        index_head_dim=int(cfg.get("index_head_dim") or 0),
        index_topk=int(cfg.get("index_topk") or 0),
        max_position_embeddings=max_pos,
        rotary_dim=rotary,
        torch_dtype=str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"),
        quantization_config=dict(quant) if isinstance(quant, Mapping) else None,
    )
