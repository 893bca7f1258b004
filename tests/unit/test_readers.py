"""Reading models from disk: config.json, model directories with safetensors, GGUF."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter

from gpusizer.api import fit, resolve_model_spec
from gpusizer.errors import BadInputError
from gpusizer.readers.local import read_local_model
from tests.conftest import R1_QWEN_7B


def _write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], int]]) -> int:
    """A real safetensors file: header + zero bytes. Returns the data size."""
    header: dict[str, object] = {}
    offset = 0
    for name, (dtype, shape, itemsize) in tensors.items():
        size = int(np.prod(shape)) * itemsize
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return offset


def test_config_json_path(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(R1_QWEN_7B))
    m = resolve_model_spec(str(tmp_path / "config.json"))
    assert m.counts.total == 7_615_616_512


def test_model_dir_reads_exact_bytes_and_skips_mtp(tmp_path: Path) -> None:
    cfg = dict(R1_QWEN_7B, num_hidden_layers=2)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    size = _write_safetensors(
        tmp_path / "model.safetensors",
        {
            "model.embed_tokens.weight": ("BF16", [16, 8], 2),
            "model.layers.0.mlp.up_proj.weight": ("BF16", [8, 8], 2),
            "model.layers.2.eh_proj.weight": ("BF16", [4, 4], 2),  # an MTP layer (index = num_layers)
        },
    )
    local = read_local_model(str(tmp_path))
    assert local is not None
    assert local.exact_weight_bytes == size - 4 * 4 * 2
    assert "MTP" in (local.weight_bytes_note or "")


def test_gguf_file_exact_bytes(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    w = GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_context_length(2048)
    w.add_vocab_size(100)
    tensors = {"token_embd.weight": (100, 64), "output.weight": (100, 64)}
    for i in range(2):
        tensors.update(
            {
                f"blk.{i}.attn_q.weight": (64, 64),
                f"blk.{i}.attn_k.weight": (32, 64),
                f"blk.{i}.attn_v.weight": (32, 64),
                f"blk.{i}.attn_output.weight": (64, 64),
                f"blk.{i}.ffn_up.weight": (128, 64),
                f"blk.{i}.ffn_gate.weight": (128, 64),
                f"blk.{i}.ffn_down.weight": (64, 128),
            }
        )
    for name, shape in tensors.items():
        w.add_tensor(name, np.zeros(shape, dtype=np.float16), raw_dtype=GGMLQuantizationType.F16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    m = resolve_model_spec(str(path))
    expected = sum(a * b for a, b in tensors.values()) * 2
    assert m.exact_weight_bytes == expected
    assert m.arch.num_layers == 2 and m.arch.num_kv_heads == 2 and not m.arch.tie_word_embeddings
    assert m.counts.total == sum(a * b for a, b in tensors.values()) + 2 * 2 * 64 + 64  # + norms
    res = fit(m, gpu_memory_gib=8, max_model_len=2048, engine="llamacpp", quant="f16-gguf")
    assert res.estimate.ranks[0].weights_bytes == pytest.approx(expected, rel=0.01)


def test_broken_inputs_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(BadInputError, match="not valid JSON"):
        resolve_model_spec(str(bad))
    bad.write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(BadInputError, match="num_hidden_layers"):
        resolve_model_spec(str(bad))
    junk = tmp_path / "x.gguf"
    junk.write_bytes(b"nope")
    with pytest.raises(BadInputError, match="GGUF"):
        resolve_model_spec(str(junk))
    with pytest.raises(BadInputError, match="does not exist"):
        resolve_model_spec(str(tmp_path / "missing.gguf"))


def test_vllm_refuses_when_one_request_exceeds_the_pool() -> None:
    # vLLM raises "The model's max seq len (L) is larger than the maximum number of tokens
    # that can be stored in KV cache" when one max_model_len request does not fit.
    res = fit("deepseek-r1-distill-qwen-7b", "RTX 4090", max_model_len=131072)
    assert not res.estimate.fits
    assert res.estimate.max_concurrency < 1
    assert "refuses to start" in res.estimate.problems[0]
