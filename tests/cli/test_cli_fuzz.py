"""Fuzz the catalogue and estimate commands the way a careless or hostile user would
(issue 15): random values for every option of fit, perf, simulate, plan, calibrate, models, gpus and quants —
NaN, infinities, negatives, huge numbers, garbage text, unknown names. Whatever comes in,
the command answers with exit status 0, 1 (a verdict: does not fit) or 2 (bad input); bad
input is exactly one line on stderr starting ``error:``; nothing raises, nothing hangs.

In process through typer's CliRunner, with small models and small workloads so that 200
generated cases per command stay well under a minute in all. ``derandomize`` keeps CI
reproducible: the same cases run every time (change the seed below to explore more).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpusizer.cli.app import app
from gpusizer.store.runs import RunStore

CASES = 200
runner = CliRunner()
_COMMAND = typer.main.get_command(app)


@pytest.fixture(scope="module", autouse=True)
def _build_the_command_once() -> Iterator[None]:
    """typer turns the app into a click command on every ``invoke`` (~80 ms with 13
    commands); build it once so the fuzz budget goes to the commands themselves."""
    patch = pytest.MonkeyPatch()
    patch.setattr(typer.testing, "_get_command", lambda _app: _COMMAND)
    yield
    patch.undo()


def _settings() -> settings:
    return settings(
        max_examples=CASES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# ------------------------------------------------------------------------ value strategies
# Each option is valid nine times in ten and hostile the tenth, so that a case gets past the
# first bad value often enough to reach the estimators (and the next bad value).
_SPECIAL = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "+inf",
    "-0",
    "0",
    "1e400",
    "-1e400",
    "0x10",
    "",
    " ",
    "1,2",
    "٣",
    "1_000",
]
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10
)


def _pick(valid: st.SearchStrategy[str], hostile: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # hypothesis leans to the simplest draw (0), so the hostile branch is the last one
    return st.integers(0, 9).flatmap(lambda i: hostile if i == 9 else valid)


def _hostile_number(low: float, high: float) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(_SPECIAL),
        st.sampled_from([low - 1, high + 1, -(10**15), 10**15]).map(lambda v: f"{v:g}"),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        _text,
    )


def _whole(low: int, high: int) -> st.SearchStrategy[str]:
    return _pick(st.integers(low, high).map(str), _hostile_number(low, high))


def _real(low: float, high: float) -> st.SearchStrategy[str]:
    return _pick(st.floats(min_value=low, max_value=high).map(repr), _hostile_number(low, high))


def _tokens(high: int) -> st.SearchStrategy[str]:
    valid = st.one_of(st.integers(1, high).map(str), st.sampled_from(["1k", "2k", "4k", "1.5k"]))
    hostile = st.one_of(st.sampled_from(["0", "-1k", "3kk", "nan", "1e3", "", "1m", "64k", "0.5"]), _text)
    return _pick(valid, hostile)


def _names(known: list[str]) -> st.SearchStrategy[str]:
    return _pick(st.sampled_from(known), _text.filter(lambda s: not s.startswith("-")))


MODELS = ["qwen2.5-0.5b-instruct", "qwen3-0.6b", "deepseek-v2-lite", "llama-3.2-1b-instruct", "gpt-oss-20b"]
GPUS = ["H100", "RTX 4090", "NVIDIA H20-3e", "L4", "MI300X", "Apple M2 Max", "T4", "NVIDIA L40S"]
QUANTS = ["bf16", "fp8", "awq", "gptq", "Q4_K_M", "F16", "q8_0", "nvfp4", "mxfp4", "int8"]
KV = ["auto", "fp8", "bf16", "q8_0", "q4_0", "fp8_ds_mla", "Q8_0", "fp8_e5m2"]
ENGINES = ["vllm", "sglang", "tensorrt-llm", "llamacpp", "transformers"]


def _maybe(flag: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda v: [flag, v]))


def _flag(flag: str) -> st.SearchStrategy[list[str]]:
    return st.sampled_from([[], [flag]])


def _args(*parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*parts).map(lambda groups: [a for g in groups for a in g])


_layout = st.one_of(
    st.sampled_from(
        [[], ["--tp", "2"], ["--gpus", "2"], ["--tp", "2", "--pp", "2"], ["--gpus", "4", "--tp", "4"]]
    ),
    _args(_maybe("--gpus", _whole(1, 8)), _maybe("--tp", _whole(1, 8)), _maybe("--pp", _whole(1, 4))),
)


def _sometimes(values: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    """Present in about one case in six (options that need others to make sense)."""
    return st.integers(0, 5).flatmap(lambda i: values if i == 5 else st.just([]))


def _seldom(flag: str) -> st.SearchStrategy[list[str]]:
    return _sometimes(st.just([flag]))


_deployment = (
    _layout,
    _maybe("--quant", _names(QUANTS)),
    _maybe("--kv-dtype", _names(KV)),
    _maybe("--engine", _names(ENGINES)),
    _maybe("--gpu-memory-gib", _real(1, 200)),
    _seldom("--ep"),
    _seldom("--dp-attention"),
    _flag("--allow-long-context"),
)

FIT = _args(
    _names(MODELS).map(lambda m: [m]),
    _names(GPUS).map(lambda g: ["--gpu", g]),
    *_deployment,
    _maybe("--gpus-per-node", _pick(st.sampled_from(["8", "4", "72"]), _whole(0, 80))),
    _maybe("--context", _tokens(70_000)),
    _maybe("--users", _whole(1, 64)),
    _maybe("--gpu-memory-utilization", _real(0.05, 1)),
    _maybe("--max-num-seqs", _whole(1, 512)),
    _maybe("--max-num-batched-tokens", _tokens(16_384)),
    _maybe("--block-size", _whole(1, 64)),
    _maybe("--gpu-bandwidth-gbps", _real(1, 5000)),
    _maybe("--engine-version", st.sampled_from(["0.8.5", "0.11.0", "x", "", "99.1"])),
    _flag("--enforce-eager"),
    _flag("--mtp"),
    _flag("--json"),
)

PERF = _args(
    _names(MODELS).map(lambda m: [m]),
    _names(GPUS).map(lambda g: ["--gpu", g]),
    *_deployment,
    _maybe(
        "--batch",
        _pick(
            st.sampled_from(["1", "1,8", "64", "2,4,16"]),
            st.sampled_from(["0", "1,nan", "4097", "-1", "1,,2", "x"]),
        ),
    ),
    _maybe("--users", _whole(1, 64)),
    _maybe("--input-len", _tokens(40_000)),
    _maybe("--output-len", _tokens(2_000)),
    _maybe(
        "--link", _pick(st.sampled_from(["nvlink4", "pcie4-x16", "pcie4-x4"]), st.sampled_from(["bogus", ""]))
    ),
    _flag("--json"),
)

# simulate: workloads stay small (≤ 40 requests, short prompts) so a valid case runs in
# milliseconds; the values around the bounds are what is fuzzed, not the simulator's stamina.
_hostile_load = st.one_of(st.sampled_from(["nan", "inf", "-1", "0", "1,,2", "1e9", ""]), _text)
_rates = _pick(st.sampled_from(["1", "4", "0.5", "2,8", "16"]), _hostile_load)
_users = _pick(st.sampled_from(["1", "4", "2,8", "16"]), _hostile_load)
_loads = st.integers(0, 9).flatmap(
    lambda i: (
        _rates.map(lambda v: ["--rate", v])
        if i < 5
        else _users.map(lambda v: ["--users", v])
        if i < 9
        else st.sampled_from([[], ["--rate", "1", "--users", "2"]])
    )
)
SIMULATE = _args(
    _names(MODELS[:3]).map(lambda m: [m]),
    _names(GPUS).map(lambda g: ["--gpu", g]),
    _maybe("--kv-dtype", _names(KV)),
    _maybe("--engine", _names(ENGINES)),
    _maybe("--quant", _names(QUANTS)),
    _loads,
    _pick(st.integers(1, 40).map(str), st.sampled_from(["0", "-2", "3000000", "nan", "x"])).map(
        lambda v: ["--requests", v]
    ),
    _sometimes(
        _pick(st.sampled_from(["0.5", "2"]), st.sampled_from(["0", "-1", "nan", "inf", "1e9", "x"])).map(
            lambda v: ["--duration", v]
        )
    ),
    _maybe(
        "--input-len",
        _pick(
            st.one_of(_tokens(512), st.sampled_from(["uniform:8:64", "normal:64:16", "lognormal:64:32"])),
            st.sampled_from(
                [
                    "uniform:64:8",
                    "pareto:1:2",
                    "lognormal:0:1",
                    "normal:nan:1",
                    "uniform:1",
                    "hist:/nonexistent",
                    "::",
                ]
            ),
        ),
    ),
    _maybe(
        "--output-len",
        _pick(st.one_of(_tokens(64), st.just("uniform:1:16")), st.sampled_from(["normal:8:1m", "0"])),
    ),
    _maybe("--prefix-tokens", _whole(0, 64)),
    _maybe("--prefix-groups", _whole(1, 8)),
    _maybe("--think-time-s", _real(0, 5)),
    _maybe("--burstiness", _real(0.1, 4)),
    _maybe("--seed", _whole(0, 2**32 - 1)),
    _maybe("--slo-ttft-ms", _real(1, 1000)),
    _maybe("--slo-tpot-ms", _real(1, 100)),
    st.sampled_from([[], ["--prefix-caching"], ["--no-prefix-caching"]]),
    _flag("--json"),
)

_search = st.one_of(
    st.just([]), _names(["deepseek", "qwen", "rtx", "h100", "q4", "gguf", "fp8"]).map(lambda s: [s])
)
MODELS_CMD = _args(st.just(["models"]), _search, _flag("--json"))
GPUS_CMD = _args(st.just(["gpus"]), _search, _flag("--json"))
QUANTS_CMD = _args(st.just(["quants"]), _search)


# ---------------------------------------------------------------------------- the check
def _check(args: list[str]) -> None:
    r = runner.invoke(app, args)
    where = f"gpusizer {' '.join(repr(a) for a in args)}"
    assert r.exception is None or isinstance(r.exception, SystemExit), f"{where} raised {r.exception!r}"
    assert r.exit_code in (0, 1, 2), f"{where} exited {r.exit_code}: {r.output[-400:]}"
    assert "Traceback" not in r.output, where
    if r.exit_code == 2:
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{where}: {r.stderr!r}"


@_settings()
@given(FIT)
def test_fit_fuzz(args: list[str]) -> None:
    _check(["fit", *args])


@_settings()
@given(PERF)
def test_perf_fuzz(args: list[str]) -> None:
    _check(["perf", *args])


@_settings()
@given(SIMULATE)
def test_simulate_fuzz(args: list[str]) -> None:
    _check(["simulate", *args])


@_settings()
@given(MODELS_CMD)
def test_models_fuzz(args: list[str]) -> None:
    _check(args)


@_settings()
@given(GPUS_CMD)
def test_gpus_fuzz(args: list[str]) -> None:
    _check(args)


@_settings()
@given(QUANTS_CMD)
def test_quants_fuzz(args: list[str]) -> None:
    _check(args)


# plan: one or two GPU kinds, at most two GPUs and one or two simulations, so that a valid
# case plans in well under a second; every option of the search is fuzzed around its bounds.
PLAN = _args(
    _names(MODELS[:2]).map(lambda m: [m]),
    _names(["L4", "RTX 4090", "H100", "MI300X", "Apple M2 Max", "L4,RTX 4090"]).map(lambda g: ["--gpu", g]),
    _pick(st.sampled_from(["1", "2"]), _hostile_number(1, 64)).map(lambda v: ["--max-gpus", v]),
    _pick(st.sampled_from(["1", "2"]), _hostile_number(1, 1000)).map(lambda v: ["--max-simulations", v]),
    _maybe("--context", _tokens(8_192)),
    _maybe("--users", _whole(1, 16)),
    _maybe("--input-len", _tokens(1_024)),
    _maybe("--output-len", _tokens(256)),
    _maybe("--ttft-ms", _real(1, 5_000)),
    _maybe("--tpot-ms", _real(1, 500)),
    _maybe("--tokens-per-s-per-user", _real(0.1, 500)),
    _maybe("--class", _names(["consumer", "workstation", "datacenter", "apple"])),
    _maybe("--quant", _names(QUANTS)),
    _maybe("--precision", _names(["default", "high"])),
    _maybe("--engine", _names([*ENGINES, "auto", "vllm,sglang"])),
    _maybe("--kv-dtype", _names(["search", *KV])),
    _maybe("--headroom", _real(0, 0.9)),
    _maybe("--percentile", _pick(st.sampled_from(["50", "90", "95", "99"]), _hostile_number(1, 99))),
    _maybe("--system", _names(["desktop", "workstation", "pcie-server", "hgx", "mac"])),
    _maybe("--max-cost-per-hour", _real(0.01, 100)),
    _maybe("--capex", _real(100, 1e6)),
    _maybe("--years", _real(0.5, 10)),
    _maybe("--kwh-price", _real(0, 1)),
    _maybe("--rank-by", _names(["owned", "cloud"])),
    _flag("--json"),
)


@_settings()
@given(PLAN)
def test_plan_fuzz(args: list[str]) -> None:
    _check(["plan", *args])


# calibrate: the runs file and its destinations are what a user gets wrong — a missing file, a
# folder, a file that is not SQLite, an empty gpusizer store; profile names and output paths
# that try to leave their folder. GPUSIZER_HOME points into a throw-away folder.
_CAL_DIR = Path(tempfile.mkdtemp(prefix="gpusizer-fuzz-"))
(_CAL_DIR / "not-sqlite.db").write_text("hello")
(_CAL_DIR / "a-folder").mkdir()
RunStore(_CAL_DIR / "empty.db").close()
CALIBRATE = _args(
    st.lists(_whole(1, 5), max_size=3),
    _maybe(
        "--db",
        st.sampled_from(["missing.db", "not-sqlite.db", "a-folder", "empty.db"]).map(
            lambda n: str(_CAL_DIR / n)
        ),
    ),
    _maybe("--model", _names(MODELS)),
    st.one_of(
        st.just([]),
        _names(["mine", "h100-vllm", "../escape", "a/b", "", ".hidden"]).map(lambda v: ["--profile", v]),
        st.sampled_from(["out.yaml", "a-folder", "sub/none/out.yaml"]).map(
            lambda n: ["--out", str(_CAL_DIR / n)]
        ),
    ),
    _flag("--json"),
)


@pytest.fixture(scope="module")
def _throwaway_home() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setenv("GPUSIZER_HOME", str(_CAL_DIR / "home"))
    yield
    patch.undo()


@_settings()
@given(CALIBRATE)
def test_calibrate_fuzz(_throwaway_home: None, args: list[str]) -> None:
    _check(["calibrate", *args])
