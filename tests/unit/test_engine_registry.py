"""The engine registry (gpusizer.engines): every engine's spec is complete, agrees with what
the engines document (../shared/reference/engine-memory.md, facts.md, the engines' own
docs as cited in data/), and every other list of engine names in the code agrees with it.
Regression tests for issue 14: `fit --engine llamacpp --kv-dtype q8_0`, an SGLang plan's
launch command, TensorRT-LLM plans printing a command."""

from __future__ import annotations

import json
import shlex
import typing
from dataclasses import fields

import pytest
from typer.testing import CliRunner

from gpusizer.catalog.hf_config import arch_from_hf_config
from gpusizer.catalog.load import (
    engine_options,
    kv_dtype_table,
    model_catalogue,
    model_config,
    quant_catalogue,
)
from gpusizer.cli.app import app
from gpusizer.engines import (
    DEFAULT_ENGINE,
    ENGINE_NAMES,
    PLAN_ENGINES,
    Engine,
    EngineSettings,
    EngineSpec,
    LaunchInput,
    SettingsInput,
    all_engines,
    engine_for_metrics,
    engine_spec,
)
from gpusizer.errors import BadInputError

runner = CliRunner()
SPECS = all_engines()
IDS = [s.name for s in SPECS]


def _settings_input(spec: EngineSpec, **over: object) -> SettingsInput:
    base: dict[str, object] = dict(
        numbers=spec.numbers(),
        visible_bytes=80 * 2**30,
        gpu_key="h100-sxm",
        compute_capability=9.0,
        mla=False,
        tp=1,
        pp=1,
        max_model_len=8192,
        users=4,
        memory_fraction=None,
        max_num_seqs=None,
        max_num_batched_tokens=None,
        block_size=None,
        engine_version=None,
        engine_mode=None,
        usage="serve",
        enforce_eager=False,
    )
    base.update(over)
    return SettingsInput(**base)  # type: ignore[arg-type]


def _launch_input(**over: object) -> LaunchInput:
    base: dict[str, object] = dict(
        repo="org/model",
        pre_quantized=False,
        quant="bf16",
        vendor="nvidia",
        tp=2,
        pp=1,
        nodes=1,
        attention_dp=False,
        ep=False,
        max_model_len=8192,
        users=4,
        memory_fraction=0.8,
        kv_dtype="auto",
    )
    base.update(over)
    return LaunchInput(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------- completeness
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_spec_is_complete(spec: EngineSpec) -> None:
    for f in fields(spec):
        value = getattr(spec, f.name)
        if f.name in ("memory_fraction", "launch_args", "compact_kv", "gguf_quants", "numbers_base"):
            continue  # may be None by design; checked below
        if f.name == "default_graph_batches":
            continue  # None: every batch graphed (padding up to the engine's cap)
        if f.name in ("metrics_prefix", "block_size_number", "prefill_chunk_number"):
            continue
        if isinstance(value, (bool, int, float)):
            continue
        if f.name in ("auto_classes", "images", "command", "command_name") and not spec.serving:
            continue  # a non-server (HF transformers) has no image or command
        if f.name == "auto_classes" and spec.name == "tensorrt-llm":
            continue  # only tried when asked for
        assert value, f"{spec.name}.{f.name} is empty"
    assert spec.vendors <= {"nvidia", "amd", "apple"}
    if spec.memory_fraction is not None:
        mf = spec.memory_fraction
        assert mf.setting and mf.flag.startswith("--") and mf.meaning
    for number in (spec.block_size_number, spec.prefill_chunk_number):
        if number is not None:
            assert number in spec.numbers(), f"{number} must be a sourced number in data/engines.yaml"
    assert "auto" in spec.kv_dtypes()
    assert spec.has_command == bool(spec.command)
    st = spec.settings(_settings_input(spec))
    assert isinstance(st, EngineSettings) and st.engine == spec.name
    assert st.block_size >= 1 and st.max_num_batched_tokens >= 1 and 0 < st.memory_fraction <= 1


def test_unknown_engine_is_bad_input_naming_the_field() -> None:
    with pytest.raises(BadInputError) as exc:
        engine_spec("tgi")
    assert exc.value.field == "engine"
    assert "vllm" in str(exc.value)


# ------------------------------------------------------------ documented behaviour
def test_each_memory_fraction_is_the_engines_own_setting() -> None:
    """engine-memory.md §1.1, §2.2, §3.1: three different settings with three meanings."""
    vllm, sglang, trt = (engine_spec(e).memory_fraction for e in ("vllm", "sglang", "tensorrt-llm"))
    assert vllm is not None and sglang is not None and trt is not None
    assert (vllm.setting, vllm.flag, vllm.basis) == (
        "gpu_memory_utilization",
        "--gpu-memory-utilization",
        "total",
    )
    assert (sglang.setting, sglang.flag, sglang.basis) == (
        "mem_fraction_static",
        "--mem-fraction-static",
        "free-after-load",
    )
    assert (trt.setting, trt.flag, trt.basis) == (
        "free_gpu_memory_fraction",
        "--kv_cache_free_gpu_memory_fraction",
        "free-after-peak",
    )
    assert engine_spec("llamacpp").memory_fraction is None  # allocates -c cells, no fraction
    assert engine_spec("transformers").memory_fraction is None  # DynamicCache grows


@pytest.mark.parametrize("spec", [s for s in SPECS if s.has_command], ids=lambda s: s.name)
def test_memory_flag_and_launch_flags_are_documented_options(spec: EngineSpec) -> None:
    """Every flag a launch hook prints is in the engine's documented options
    (data/engine_options.yaml, read from each engine's reference)."""
    documented = set(engine_options()[spec.name].options)
    if spec.memory_fraction is not None:
        assert spec.memory_fraction.flag in documented
    assert spec.launch_args is not None
    for kv in spec.kv_dtypes():
        for inp in (_launch_input(kv_dtype=kv), _launch_input(kv_dtype=kv, pp=2, attention_dp=True, ep=True)):
            flags = {a for a in spec.launch_args(inp) if a.startswith("-")}
            assert flags <= documented, f"{spec.name}: undocumented {flags - documented}"


def test_block_sizes_are_the_documented_defaults() -> None:
    """vLLM CacheConfig.DEFAULT_BLOCK_SIZE 16 (§1.6); TRT-LLM tokens_per_block 32 (§3.1);
    llama.cpp and HF transformers allocate per token."""
    size = {s.name: s.settings(_settings_input(s)).block_size for s in SPECS}
    assert size["vllm"] == 16
    assert size["tensorrt-llm"] == 32
    assert size["llamacpp"] == 1 and size["transformers"] == 1
    assert {s.name for s in SPECS if s.paged} == {"vllm", "sglang", "tensorrt-llm"}


def test_trtllm_default_fraction_is_its_documented_0_9() -> None:
    st = engine_spec("tensorrt-llm").settings(_settings_input(engine_spec("tensorrt-llm")))
    assert st.memory_fraction == pytest.approx(0.9)  # KvCacheConfig.free_gpu_memory_fraction (§3.1)


def test_kv_dtypes_follow_each_engines_documented_cache_types() -> None:
    """llama.cpp -ctk/-ctv takes q8_0/q4_0 … and has no fp8 cache (common/arg.cpp);
    fp8_ds_mla is a DeepSeek-MLA-only vLLM/SGLang format."""
    lcpp = engine_spec("llamacpp").kv_dtypes()
    assert {"q8_0", "q4_0", "q5_1", "iq4_nl"} <= set(lcpp)
    assert not any(k.startswith("fp8") for k in lcpp)
    for name in ("vllm", "sglang"):
        assert "fp8_ds_mla" not in engine_spec(name).kv_dtypes()
        assert "fp8_ds_mla" in engine_spec(name).kv_dtypes(mla=True)
    assert "fp8_ds_mla" not in engine_spec("tensorrt-llm").kv_dtypes(mla=True)
    for spec in SPECS:  # read from data/quant.yaml, not re-listed
        assert set(spec.kv_dtypes(mla=True)) == {
            k for k, d in kv_dtype_table().items() if spec.name in d.engines
        }


def test_scheduling_policies_are_the_documented_defaults() -> None:
    """vLLM V1 automatic prefix caching and SGLang's radix cache are on by default;
    SGLang keeps an admission reserve (new_token_ratio); TensorRT-LLM's default capacity
    policy is GUARANTEED_NO_EVICT; TensorRT-LLM runs on NVIDIA only; Apple runs llama.cpp."""
    assert {s.name for s in SPECS if s.prefix_cache_default} == {"vllm", "sglang"}
    assert engine_spec("sglang").admission == "reserve-ratio"
    assert engine_spec("vllm").admission == "on-demand"
    assert engine_spec("tensorrt-llm").admission == "guaranteed-no-evict"
    assert engine_spec("tensorrt-llm").vendors == {"nvidia"}
    assert [s.name for s in SPECS if "apple" in s.vendors and s.has_command] == ["llamacpp"]
    assert engine_spec("sglang").mixed_prefill is False  # --enable-mixed-chunk is off by default


def test_simulator_limits_follow_the_registry() -> None:
    """The simulator's scheduler takes each engine's prefix-cache default, admission policy
    and prefill mixing from its spec."""
    from gpusizer.api import fit
    from gpusizer.simulate.run import engine_limits

    for name in ("vllm", "sglang", "tensorrt-llm"):
        res = fit("qwen3-8b", "H100", max_model_len=4096, users=8, engine=name)
        lim = engine_limits(res.deployment, res.estimate)
        spec = engine_spec(name)
        assert lim.prefix_caching is spec.prefix_cache_default, name
        assert lim.mixed_prefill is spec.mixed_prefill, name
        assert (lim.reserve_init > 0) is (spec.admission == "reserve-ratio"), name


def test_prometheus_prefixes_identify_the_engine() -> None:
    assert engine_for_metrics(["sglang:num_running_reqs"]) == "sglang"
    assert engine_for_metrics(["vllm:num_requests_running"]) == "vllm"
    assert engine_for_metrics(["llamacpp:requests_processing"]) == "llamacpp"
    assert engine_for_metrics(["process_cpu_seconds_total"]) is None


# --------------------------------------------------------- every name list agrees
def test_every_engine_name_list_agrees_with_the_registry() -> None:
    from gpusizer.domain import kv
    from gpusizer.plan import space

    assert typing.get_args(Engine) == ENGINE_NAMES
    assert kv.ENGINES == ENGINE_NAMES
    assert space.ENGINES == PLAN_ENGINES
    assert DEFAULT_ENGINE in PLAN_ENGINES
    assert set(PLAN_ENGINES) == {"vllm", "sglang", "tensorrt-llm", "llamacpp"}
    names = set(ENGINE_NAMES)
    from gpusizer.catalog.load import _engines

    assert set(_engines()) == names  # data/engines.yaml has a block per engine
    for d in kv_dtype_table().values():
        assert set(d.engines) <= names
    for f in quant_catalogue():
        assert set(f.engines) <= names, f.key
    commands = set(engine_options())
    assert set(PLAN_ENGINES) <= commands


def test_shell_name_lists_agree_with_the_registry() -> None:
    """Lists in modules other engineers own: checked while they exist."""
    from gpusizer import api

    numbers = getattr(api, "engine_numbers", None)
    if numbers is not None:
        for s in SPECS:
            assert numbers(s.name) == s.numbers(), s.name
    try:
        from gpusizer.web import page
    except ImportError:  # pragma: no cover - the web extra is optional
        return
    listed = getattr(page, "_ENGINES", None)
    if listed is not None:
        assert set(listed) - {"auto"} == set(PLAN_ENGINES)


# ------------------------------------------------------------ issue 14 regressions
def _arch(name: str):  # type: ignore[no-untyped-def]
    entry = next(e for e in model_catalogue() if e.id.split("/")[-1].lower() == name)
    return arch_from_hf_config(model_config(entry), entry.id)


def test_fit_llamacpp_with_q8_0_kv_cache_works() -> None:
    """`fit … --engine llamacpp --kv-dtype q8_0` exited 2. llama.cpp's q8_0 cache stores
    34 bytes per 32 values (ggml-common.h block_q8_0) for K and V of every layer."""
    r = runner.invoke(
        app,
        ["fit", "llama-3.1-8b", "--gpu", "rtx-4090", "--engine", "llamacpp", "--kv-dtype", "q8_0", "--json"],
    )
    assert r.exit_code in (0, 1), r.output
    d = json.loads(r.output)
    assert d["engine"] == "llamacpp" and d["kv_dtype"] == "q8_0"
    a = _arch("llama-3.1-8b")
    expected = a.num_layers * a.num_kv_heads * (a.head_dim + a.v_head_dim) * 34 / 32
    assert d["kv_bytes_per_token"] == pytest.approx(expected)


def _plan_launch(engine: str) -> dict[str, str]:
    r = runner.invoke(
        app,
        [
            "plan",
            "llama-3.1-8b",
            "--engine",
            engine,
            "--gpu",
            "h100",
            "--users",
            "4",
            "--context",
            "8192",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output[-2000:]
    launch: dict[str, str] = json.loads(r.output)["launch"]
    assert launch, "the plan printed no launch command"
    return launch


def test_sglang_plan_launches_sglang_with_mem_fraction_static() -> None:
    launch = _plan_launch("sglang")
    cmd = launch["sglang"]
    assert shlex.split(cmd)[:3] == ["python3", "-m", "sglang.launch_server"]
    assert "--mem-fraction-static" in cmd
    assert "--gpu-memory-utilization" not in " ".join(launch.values())
    assert "vllm serve" not in " ".join(launch.values())


def test_tensorrt_llm_plan_prints_a_trtllm_serve_command() -> None:
    launch = _plan_launch("tensorrt-llm")
    cmd = launch["trtllm-serve"].partition(" && ")[2]  # after writing its LLM API options file
    assert shlex.split(cmd)[0] == "trtllm-serve"
    assert "--kv_cache_free_gpu_memory_fraction" in cmd
    assert "--gpu-memory-utilization" not in cmd


def test_an_engine_without_a_server_gets_no_command() -> None:
    """HF transformers is a library: no launch command rather than another engine's."""
    from gpusizer.api import fit
    from gpusizer.plan.launch import launch_commands

    res = fit("llama-3.1-8b", "h100", engine="transformers", max_model_len=4096)
    assert launch_commands(res.deployment, "meta-llama/Llama-3.1-8B", 0.9) == {}


def test_dp_attention_and_prefill_chunk_follow_the_engines_commands() -> None:
    """DP attention is planned where the command can say it (vLLM --data-parallel-size with
    expert parallelism, SGLang --enable-dp-attention); llama.cpp prefills n_batch = 2048
    prompt tokens per decode call (common.h), the others their token budget."""
    for spec in SPECS:
        if spec.dp_attention:
            assert spec.launch_args is not None
            argv = spec.launch_args(_launch_input(attention_dp=True, ep=True))
            assert {"--enable-dp-attention", "--data-parallel-size"} & set(argv), spec.name
    assert {s.name for s in SPECS if s.dp_attention} == {"vllm", "sglang"}
    lcpp = engine_spec("llamacpp")
    assert lcpp.prefill_chunk(lcpp.settings(_settings_input(lcpp))) == 2048
    vllm = engine_spec("vllm")
    st = vllm.settings(_settings_input(vllm, max_num_batched_tokens=4096))
    assert vllm.prefill_chunk(st) == 4096
