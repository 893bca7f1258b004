"""KV-cache bytes per token, per layer, on one GPU — by engine, because engines store
different things:

* vLLM / SGLang / TensorRT-LLM, GQA/MHA: ``2 · max(1, kv_heads / TP) · head_dim · bytes``
  per layer (KV heads fewer than TP are replicated: every rank keeps one).
* vLLM / SGLang / TensorRT-LLM, DeepSeek MLA: the latent ``kv_lora_rank + qk_rope_head_dim``
  (576) per layer, **not** divided by TP — every rank holds it. ``fp8_ds_mla`` is 656 B per
  layer; DeepSeek-V3.2 adds a 132 B/layer indexer key cache.
* llama.cpp: K/V rows per layer (quantized types by block size: ``-ctk/-ctv q8_0``); MLA GGUFs cache the
  576-wide K only (V-less cache, llama.cpp #19067), no TP.
* HF transformers: full per-head K/V — for MLA 128 heads × (192 + 128), 71× the latent.

Sources: ../shared/reference/engine-memory.md §1.6, §2.1, §3.2, §4.1–4.2, §5, §6.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from gpusizer.catalog.arch import LayerAttention, ModelArch
from gpusizer.catalog.load import kv_dtype_table
from gpusizer.engines import DEFAULT_ENGINE, ENGINE_NAMES, Engine, engine_spec
from gpusizer.errors import BadInputError

__all__ = [
    "ENGINES",
    "Engine",
    "KvLayout",
    "kv_dtypes_for",
    "kv_element_bytes",
    "kv_layout",
    "resolve_kv_dtype",
]

ENGINES: tuple[Engine, ...] = ENGINE_NAMES  # the engine registry's names (gpusizer.engines)

MLA_FP8_DS_CELL = 656  # bytes/token/layer: 512 fp8 latent + 4 fp32 scales + 64 bf16 RoPE
INDEXER_BLOCK = 128  # DeepSeek-V3.2 indexer key quant block; one fp32 scale per block


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """Every accepted spelling (key or alias, lower case) → its key in data/quant.yaml."""
    out: dict[str, str] = {}
    for key, d in kv_dtype_table().items():
        for name in (key, *d.aliases):
            out[name.lower()] = key
    return out


@lru_cache(maxsize=32)
def kv_dtypes_for(engine: str, *, mla: bool = False) -> tuple[str, ...]:
    """The KV dtype keys ``engine`` accepts (data/quant.yaml), ``fp8_ds_mla`` only for MLA."""
    return engine_spec(engine).kv_dtypes(mla=mla)


def resolve_kv_dtype(kv_dtype: str, engine: str | None = None, *, mla: bool = False) -> str:
    """The catalogue key of a KV dtype name (``bfloat16`` → ``bf16``, ``Q8_0`` → ``q8_0``);
    with ``engine``, refused unless that engine's cache takes it."""
    key = _names().get(kv_dtype.strip().lower())
    if key is None:
        raise BadInputError(
            "kv_dtype",
            f"unknown KV dtype {kv_dtype!r}",
            ", ".join(kv_dtypes_for(engine or DEFAULT_ENGINE, mla=mla)),
        )
    if engine is not None:
        accepted = kv_dtypes_for(engine, mla=mla)
        if key not in accepted:
            engines = [e for e in ENGINES if e in kv_dtype_table()[key].engines]
            why = "DeepSeek MLA models on " if key == "fp8_ds_mla" else ""
            raise BadInputError(
                "kv_dtype",
                f"{kv_dtype} is not a {engine} KV cache type (it is for {why}{', '.join(engines)})",
                ", ".join(accepted),
            )
    return key


def kv_element_bytes(kv_dtype: str, model_dtype_bytes: float) -> float:
    """Bytes per cached element for a KV dtype name (``auto`` = the model dtype)."""
    key = resolve_kv_dtype(kv_dtype)
    if key == "auto":
        return model_dtype_bytes
    if key == "fp8_ds_mla":  # a per-layer cell (656 B); per element it is fp8
        return 1.0
    return kv_dtype_table()[key].value


@dataclass(frozen=True, kw_only=True)
class KvLayout:
    """What one GPU caches per token for each decoder layer."""

    per_layer_bytes: float  # bytes per token per layer on this rank
    layer_attention: tuple[LayerAttention, ...]
    replicated_over_tp: bool
    what: str  # one line for the user: what is cached and why it costs this

    def bytes_per_token(self, layers: Sequence[int] | range | None = None) -> float:
        """Bytes per token over ``layers`` (default: all layers), counting every layer."""
        idx = range(len(self.layer_attention)) if layers is None else layers
        return self.per_layer_bytes * len(idx)

    def request_bytes(
        self,
        tokens: int,
        layers: Sequence[int] | range | None = None,
        *,
        window_extra: int = 0,
        window: int | None = None,
        block: int = 1,
    ) -> float:
        """KV bytes one request of ``tokens`` holds; sliding layers keep only
        ``window + window_extra`` tokens. Rounded up to whole blocks per layer."""
        idx = range(len(self.layer_attention)) if layers is None else layers
        total = 0.0
        for i in idx:
            kept = tokens
            if self.layer_attention[i] == "sliding" and window:
                kept = min(tokens, window + window_extra)
            blocks = -(-kept // block)
            total += blocks * block * self.per_layer_bytes
        return total


def indexer_key_bytes(a: ModelArch) -> int:
    """Bytes per token per layer of DeepSeek-V3.2's indexer key cache (FP8 keys plus one fp32
    scale per 128-element block: 132 B); 0 for models without the lightning indexer."""
    if not a.index_n_heads:
        return 0
    return a.index_head_dim + a.index_head_dim // INDEXER_BLOCK * 4


def kv_layout(
    a: ModelArch,
    engine: Engine,
    kv_dtype: str = "auto",
    *,
    tp: int = 1,
    model_dtype_bytes: float = 2.0,
    legacy_llamacpp_mla: bool = False,
) -> KvLayout:
    """The per-rank KV layout of ``a`` under ``engine``."""
    key = resolve_kv_dtype(kv_dtype, engine, mla=a.mla is not None)
    spec = engine_spec(engine)
    elem = kv_element_bytes(key, model_dtype_bytes)
    full: LayerAttention = "full"
    layers: tuple[LayerAttention, ...] = a.layer_attention or tuple(full for _ in range(a.num_layers))
    if a.mla is not None:
        m = a.mla
        latent = m.kv_lora_rank + m.qk_rope_head_dim
        if spec.mla_cache == "full-heads":
            per = a.num_attention_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim) * elem
            what = (
                f"full per-head K/V: {a.num_attention_heads} heads × "
                f"({m.qk_nope_head_dim + m.qk_rope_head_dim}+{m.v_head_dim}) × {elem:g} B — {spec.label} decompresses MLA"
            )
            return KvLayout(per_layer_bytes=per, layer_attention=layers, replicated_over_tp=False, what=what)
        if spec.mla_cache == "latent-k":
            if legacy_llamacpp_mla:
                per = a.num_attention_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim) * elem
                what = "legacy GGUF without MLA metadata: full per-head K/V"
            else:
                per = latent * elem
                what = f"MLA latent K only ({latent} × {elem:g} B, V read from K; llama.cpp #19067)"
            return KvLayout(per_layer_bytes=per, layer_attention=layers, replicated_over_tp=False, what=what)
        sparse = a.index_n_heads > 0
        if key == "fp8_ds_mla" or (sparse and elem == 1):
            per = float(MLA_FP8_DS_CELL)
            what = "MLA latent in fp8_ds_mla cells (656 B: 512 fp8 + 16 B scales + 128 B bf16 RoPE)"
        else:
            per = latent * elem
            what = f"MLA latent {m.kv_lora_rank}+{m.qk_rope_head_dim} = {latent} × {elem:g} B"
        if sparse:
            per += indexer_key_bytes(a)
            what += f" + {indexer_key_bytes(a)} B indexer keys"
        what += f", replicated on every one of {tp} TP ranks" if tp > 1 else ""
        return KvLayout(per_layer_bytes=per, layer_attention=layers, replicated_over_tp=True, what=what)
    heads = a.num_kv_heads
    if spec.kv_split_over_tp:
        heads_rank = max(1, heads // tp)
        replicated = tp > heads
    else:
        heads_rank, replicated = heads, False
    per = heads_rank * (a.head_dim + a.v_head_dim) * elem
    what = f"K+V: {heads_rank} KV head{'s' if heads_rank > 1 else ''} × ({a.head_dim}+{a.v_head_dim}) × {elem:g} B"
    if replicated:
        what += f" ({heads} KV heads < TP {tp}: each rank keeps a replica)"
    elif tp > 1 and spec.kv_split_over_tp:
        what += f" ({heads} KV heads split over TP {tp})"
    return KvLayout(per_layer_bytes=per, layer_attention=layers, replicated_over_tp=replicated, what=what)
