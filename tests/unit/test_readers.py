"""Reading models from disk: config.json, model directories with safetensors, GGUF."""

from __future__ import annotations

import json
import os
import re
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter

from gpusizer.api import fit, resolve_model_spec
from gpusizer.errors import BadInputError, NotInCatalogueError
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


# --- Hostile and broken inputs (issue 15): one line naming the file, never a hang ----------


def _refused_quickly(spec: str, match: str) -> None:
    """``spec`` is refused with a BadInputError matching ``match``, within 5 s (a FIFO or a
    device read without bounds would block or grow until memory runs out)."""
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            resolve_model_spec(spec)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), f"reading {spec!r} hung"
    assert isinstance(outcome[0], BadInputError), outcome
    assert re.search(match, outcome[0].message), outcome[0].message
    assert "\n" not in outcome[0].message


@pytest.mark.parametrize("name", ["config.json", "model.gguf", "weights"])
def test_a_named_pipe_is_refused_not_waited_on(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    _refused_quickly(str(fifo), "is a named pipe, not a file")


def test_a_named_pipe_inside_a_model_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(R1_QWEN_7B))
    os.mkfifo(tmp_path / "model.safetensors")
    _refused_quickly(str(tmp_path), r"model\.safetensors: is a named pipe")
    os.mkfifo(tmp_path / "x.json")  # never opened: only config.json and weights are read
    os.remove(tmp_path / "model.safetensors")
    assert resolve_model_spec(str(tmp_path)).arch.num_layers == 28


def test_devices_are_refused() -> None:
    _refused_quickly("/dev/zero", "/dev/zero: is a device, not a file")
    _refused_quickly("/dev/null", "is a device")


def test_an_oversized_or_endless_config_is_cut_at_the_cap(tmp_path: Path) -> None:
    big = tmp_path / "config.json"
    big.write_bytes(b" " * (4 * 1024 * 1024 + 1))
    _refused_quickly(str(big), "larger than 4 MiB")


def test_a_deep_or_non_finite_config_file_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    _refused_quickly(str(deep), "nested too deeply")
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps(R1_QWEN_7B).replace("152064", "NaN"))
    _refused_quickly(str(nan), "NaN is not a JSON number")
    layers = tmp_path / "config.json"
    layers.write_text(json.dumps(dict(R1_QWEN_7B, num_hidden_layers=10**11)))
    _refused_quickly(str(layers), r"config\.json: config\.num_hidden_layers: .* out of range")


def test_an_unreadable_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(R1_QWEN_7B))
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:  # root reads any folder, so the refusal is simulated for it
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    if os.geteuid() == 0:
        monkeypatch.setattr(os, "scandir", scandir)
    else:
        folder.chmod(0)
    try:
        _refused_quickly(str(folder), "folder cannot be read \\(permission denied\\)")
    finally:
        folder.chmod(0o755)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads past permissions")
def test_a_path_under_a_closed_folder_is_one_line(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir()
    (closed / "config.json").write_text("{}")
    closed.chmod(0)
    try:
        _refused_quickly(str(closed / "config.json"), "permission denied")
    finally:
        closed.chmod(0o755)


def test_a_name_too_long_for_a_path_is_a_catalogue_miss() -> None:
    with pytest.raises(NotInCatalogueError):
        resolve_model_spec("x" * 5000)


@pytest.mark.parametrize(
    "offsets",
    [[16, 8], [0, 10**12], ["0", "8"], [0], None, [-8, 0], [True, 8]],
    ids=["reversed", "past-the-end", "strings", "one", "missing", "negative", "bool"],
)
def test_bad_safetensors_offsets_name_the_tensor(tmp_path: Path, offsets: Any) -> None:
    (tmp_path / "config.json").write_text(json.dumps(dict(R1_QWEN_7B, num_hidden_layers=2)))
    meta: dict[str, Any] = {"dtype": "BF16", "shape": [4, 4]}
    if offsets is not None:
        meta["data_offsets"] = offsets
    raw = json.dumps({"model.embed_tokens.weight": meta}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(32))
    _refused_quickly(str(tmp_path), r"model\.safetensors: tensor 'model\.embed_tokens\.weight': data_offsets")


def test_a_safetensors_header_past_the_end_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(R1_QWEN_7B))
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 50_000_000) + b"{}")
    _refused_quickly(str(tmp_path), "runs past the end of the file")
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"[]")
    _refused_quickly(str(tmp_path), "not a JSON object")


def _tiny_gguf(path: Path, *, layers: Any = 2, truncate: int | None = None) -> None:
    w = GGUFWriter(str(path), "llama")
    if isinstance(layers, str):
        w.add_string("llama.block_count", layers)
    else:
        w.add_block_count(layers)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_vocab_size(100)
    w.add_tensor(
        "token_embd.weight", np.zeros((100, 64), dtype=np.float16), raw_dtype=GGMLQuantizationType.F16
    )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if truncate is not None:
        path.write_bytes(path.read_bytes()[:truncate])


def test_malformed_gguf_is_one_line(tmp_path: Path) -> None:
    wrong_type = tmp_path / "wrong.gguf"
    _tiny_gguf(wrong_type, layers="two")
    _refused_quickly(str(wrong_type), r"wrong\.gguf: GGUF: llama\.block_count must be an integer")
    huge = tmp_path / "huge.gguf"
    _tiny_gguf(huge, layers=10_000)
    _refused_quickly(str(huge), r"huge\.gguf: config\.num_hidden_layers: 10000 is out of range")
    for cut in (20, 60, 200):
        truncated = tmp_path / f"cut{cut}.gguf"
        _tiny_gguf(truncated, truncate=cut)
        _refused_quickly(str(truncated), f"cut{cut}.gguf")
