"""The shipped catalogue: loads, every number has a source, names resolve as users type them."""

from __future__ import annotations

import pytest

from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.catalog.load import gpu_catalogue, model_catalogue, model_config, quant_catalogue
from gpusizer.catalog.resolve import resolve_gpu, resolve_model
from gpusizer.domain.params import count_params
from gpusizer.errors import NotInCatalogueError

DEEPSEEK_REQUIRED = [
    "deepseek-v3",
    "deepseek-v3-0324",
    "deepseek-r1",
    "deepseek-r1-0528",
    "deepseek-v3.1",
    "deepseek-v3.2-exp",
    "deepseek-v2",
    "deepseek-v2.5",
    "deepseek-v2-lite",
    "deepseek-coder-v2-instruct",
    "deepseek-coder-v2-lite-instruct",
    "deepseek-r1-distill-qwen-1.5b",
    "deepseek-r1-distill-qwen-7b",
    "deepseek-r1-distill-qwen-14b",
    "deepseek-r1-distill-qwen-32b",
    "deepseek-r1-distill-llama-8b",
    "deepseek-r1-distill-llama-70b",
    "deepseek-llm-7b-base",
    "deepseek-llm-67b-base",
    "deepseek-coder-6.7b-base",
    "deepseek-coder-33b-base",
]


@pytest.mark.parametrize("name", DEEPSEEK_REQUIRED)
def test_deepseek_models_resolve(name: str) -> None:
    entry = resolve_model(name, model_catalogue())
    assert entry.config_source


def test_names_resolve_from_repo_id_short_form_and_case() -> None:
    cat = model_catalogue()
    a = resolve_model("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", cat)
    assert resolve_model("deepseek-r1-distill-qwen-7b", cat) is a
    assert resolve_model("DEEPSEEK-R1-DISTILL-QWEN-7B", cat) is a


def test_unknown_model_says_did_you_mean() -> None:
    with pytest.raises(NotInCatalogueError, match="did you mean") as exc:
        resolve_model("deepseek-r1-distil-qwen-7b", model_catalogue())
    assert "deepseek-r1-distill-qwen-7b" in exc.value.suggestions


def test_every_model_config_parses_and_published_counts_agree() -> None:
    for e in model_catalogue():
        a = arch_from_hf_config(model_config(e), e.id)
        c = count_params(a)
        assert 0 < c.active <= c.total, e.id  # tied embeddings are counted once
        if e.published and e.published.total_params:
            # published counts are often rounded ("7B", "671B"): 15 % covers rounding, not errors
            assert c.total == pytest.approx(e.published.total_params, rel=0.15), e.id


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("H100", "h100-sxm"),
        ("h100-sxm", "h100-sxm"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("RTX 4090", "rtx-4090"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("A100-SXM4-80GB", "a100-sxm-80gb"),
        ("MI300X", "mi300x"),
        ("Apple M2 Ultra 76-core", "apple-m2-ultra-76c"),
    ],
)
def test_gpu_names_resolve_as_users_write_them(typed: str, key: str) -> None:
    assert resolve_gpu(typed, gpu_catalogue()).gpu.key == key


def test_ambiguous_gpu_picks_common_variant_and_says_so() -> None:
    m = resolve_gpu("H100", gpu_catalogue())
    assert m.note and "h100-pcie" in m.note


def test_gpu_catalogue_breadth_and_sources() -> None:
    gpus = gpu_catalogue()
    assert len(gpus) >= 45
    assert {g.vendor for g in gpus} == {"nvidia", "amd", "apple"}
    for g in gpus:
        assert g.source.strip(), g.key
        assert g.memory_bandwidth_bps > 0
        if g.memory_visible_bytes:
            assert 0.9 < g.memory_visible_bytes / g.memory_bytes <= 1.0, g.key


def test_quant_formats_have_sources() -> None:
    for f in quant_catalogue():
        assert f.source.strip()
        assert 1 <= f.linear_bits_per_weight <= 32
