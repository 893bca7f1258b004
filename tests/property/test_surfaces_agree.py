"""Random valid option sets through every surface give the same answer: the CLI (``--json``),
the Python API and the web API's job functions (what a request body runs), for fit, perf,
simulate and plan. An option set one surface refuses, every surface refuses with the same
line. Token counts are given in the forms people write (``8k``, ``4096``) on the CLI and the
web, as plain integers to the Python API.

Examples stay cheap: small catalogue models, short simulations (≤ 40 requests), plans on one
GPU kind with a tiny verification budget."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpusizer import api
from gpusizer.cli.app import app
from gpusizer.errors import GpusizerError
from gpusizer.report.fit import fit_to_dict
from gpusizer.report.perf import perf_to_dict
from gpusizer.report.plan import plan_to_dict
from gpusizer.report.simulate import sim_to_dict
from gpusizer.units import parse_tokens
from gpusizer.web.app import FitBody, PerfBody, PlanBody, SimulateBody
from gpusizer.web.jobs import JOBS

runner = CliRunner()
MODELS = ("qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct", "deepseek-r1-distill-qwen-1.5b")
GPUS = ("T4", "RTX 4090", "A100", "H100", "L40S")
SETTINGS = settings(
    max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _tokens(low: int, high: int) -> st.SearchStrategy[str]:
    """A token count as a user types it: plain (4096) or in k (4k)."""
    return st.integers(low, high).flatmap(lambda k: st.sampled_from([str(k * 1024), f"{k}k", f"{k}K"]))


deployment = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "gpu": st.sampled_from(GPUS),
        "engine": st.sampled_from([None, "vllm", "sglang", "llamacpp"]),
        "kv_dtype": st.sampled_from(["auto", "fp8", "q8_0"]),
        "gpus": st.sampled_from([None, 1, 2]),
        "context": _tokens(1, 32),
        "users": st.integers(1, 64),
    }
)


def _cli(args: list[str]) -> tuple[int, Any, str]:
    r = runner.invoke(app, args)
    assert r.exit_code in (0, 1, 2), r.output
    assert "Traceback" not in r.output
    if r.exit_code == 2:
        return 2, None, r.stderr.strip().removeprefix("error: ")
    return r.exit_code, json.loads(r.stdout), ""


def _same(cli: tuple[int, Any, str], run: Any) -> Any:
    """Run one surface; it must agree with the CLI's answer or its one-line refusal."""
    code, doc, line = cli
    try:
        out = json.loads(json.dumps(run()))
    except GpusizerError as exc:
        assert code == 2, f"CLI answered, the API refused: {exc.message}"
        assert line == exc.message
        return None
    assert code != 2, f"the API answered, the CLI refused: {line}"
    assert out == doc
    return out


def _dep_flags(d: dict[str, Any]) -> list[str]:
    out = ["--gpu", d["gpu"], "--kv-dtype", d["kv_dtype"]]
    out += ["--engine", d["engine"]] if d["engine"] else []
    out += ["--gpus", str(d["gpus"])] if d["gpus"] else []
    return out


def _dep_kwargs(d: dict[str, Any]) -> dict[str, Any]:
    return {"engine": d["engine"], "kv_dtype": d["kv_dtype"], "gpus": d["gpus"], "allow_long_context": False}


def _web_dep(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": d["model"],
        "gpu": d["gpu"],
        "engine": d["engine"],
        "kv_dtype": d["kv_dtype"],
        "gpus": d["gpus"],
    }


@SETTINGS
@given(d=deployment)
def test_fit_agrees_on_cli_api_and_web(d: dict[str, Any]) -> None:
    argv = [
        "fit",
        d["model"],
        *_dep_flags(d),
        "--context",
        d["context"],
        "--users",
        str(d["users"]),
        "--json",
    ]
    cli = _cli(argv)
    ctx = parse_tokens(d["context"])
    _same(
        cli,
        lambda: fit_to_dict(
            api.fit(d["model"], d["gpu"], max_model_len=ctx, users=d["users"], **_dep_kwargs(d))
        ),
    )
    body = FitBody(**_web_dep(d), max_model_len=d["context"], users=d["users"])
    _same(cli, lambda: JOBS["fit"](body.model_dump()))


@SETTINGS
@given(
    d=deployment,
    input_len=_tokens(1, 4),
    output_len=st.integers(1, 1024),
    batch=st.sampled_from([None, 1, 8]),
)
def test_perf_agrees_on_cli_api_and_web(
    d: dict[str, Any], input_len: str, output_len: int, batch: int | None
) -> None:
    argv = [
        "perf",
        d["model"],
        *_dep_flags(d),
        "--input-len",
        input_len,
        "--output-len",
        str(output_len),
        "--json",
    ]
    argv += ["--batch", str(batch)] if batch else []
    cli = _cli(argv)
    i = parse_tokens(input_len)
    batches = (batch,) if batch else None
    _same(
        cli,
        lambda: perf_to_dict(
            api.perf(
                d["model"], d["gpu"], input_len=i, output_len=output_len, batches=batches, **_dep_kwargs(d)
            )
        ),
    )
    body = PerfBody(
        **_web_dep(d), input_len=input_len, output_len=output_len, batches=list(batches) if batches else None
    )
    _same(cli, lambda: JOBS["perf"](body.model_dump()))


@SETTINGS
@given(
    d=deployment,
    load=st.one_of(
        st.floats(0.5, 20).map(lambda r: ("rate", round(r, 2))),
        st.integers(1, 16).map(lambda u: ("users", u)),
    ),
    requests=st.integers(5, 40),
    seed=st.integers(0, 1000),
    slo=st.sampled_from([None, 200.0, 2000.0]),
)
def test_simulate_agrees_on_cli_api_and_web(
    d: dict[str, Any], load: tuple[str, float], requests: int, seed: int, slo: float | None
) -> None:
    kind, value = load
    common = ["--input-len", "512", "--output-len", "64", "--requests", str(requests), "--seed", str(seed)]
    argv = ["simulate", d["model"], *_dep_flags(d), f"--{kind}", f"{value:g}", *common, "--json"]
    argv += ["--slo-ttft-ms", f"{slo:g}"] if slo else []
    cli = _cli(argv)
    from gpusizer.simulate.workload import LengthDist

    def run() -> dict[str, Any]:
        res = api.simulate(
            d["model"],
            d["gpu"],
            rates=(float(value),) if kind == "rate" else (),
            users=(int(value),) if kind == "users" else (),
            input_len=LengthDist(mean=512),
            output_len=LengthDist(mean=64),
            requests=requests,
            seed=seed,
            slo_ttft_ms=slo,
            **_dep_kwargs(d),
        )
        return {**sim_to_dict(res), "warnings": list(res.warnings)}

    _same(cli, run)
    body = SimulateBody(
        **_web_dep(d),
        rate=value if kind == "rate" else None,
        concurrency=int(value) if kind == "users" else None,
        input_len="512",
        output_len=64,
        requests=requests,
        seed=seed,
        slo_ttft_ms=slo,
    )
    code, doc, line = cli
    web_cli = (code, None if doc is None else {k: v for k, v in doc.items() if k != "warnings"}, line)
    _same(web_cli, lambda: JOBS["simulate"](body.model_dump()))


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(MODELS[:2]),
    gpu=st.sampled_from(["rtx-4090", "T4", "L40S"]),
    context=_tokens(2, 16),
    users=st.integers(1, 24),
    tpot=st.sampled_from([None, 40.0, 100.0]),
    engine=st.sampled_from(["vllm", "llamacpp"]),
)
def test_plan_agrees_on_cli_api_and_web(
    model: str, gpu: str, context: str, users: int, tpot: float | None, engine: str
) -> None:
    small = ["--max-gpus", "2", "--max-simulations", "3"]
    argv = [
        "plan",
        model,
        "--gpu",
        gpu,
        "--context",
        context,
        "--users",
        str(users),
        "--engine",
        engine,
        *small,
    ]
    argv += ["--tpot-ms", f"{tpot:g}"] if tpot else []
    cli = _cli([*argv, "--json"])
    ctx = parse_tokens(context)
    kw: dict[str, Any] = {
        "gpus": [gpu],
        "max_gpus": 2,
        "max_simulations": 3,
        "engine": [engine],
        "tpot_ms": tpot,
    }
    _same(cli, lambda: plan_to_dict(api.plan(model, context=ctx, users=users, **kw)))
    # the web plans by GPU class, not by name: compare it with the API on the same body
    body = PlanBody(
        model=model,
        context=context,
        users=users,
        tpot_ms=tpot,
        classes=["consumer"],
        max_gpus=1,
        engine=[engine],
    )
    via_api = _capture(
        lambda: plan_to_dict(
            api.plan(
                model,
                context=ctx,
                users=users,
                tpot_ms=tpot,
                classes=["consumer"],
                max_gpus=1,
                engine=[engine],
            )
        )
    )
    _same(via_api, lambda: JOBS["plan"](body.model_dump()))


def _capture(run: Any) -> tuple[int, Any, str]:
    """An API answer in the CLI's shape (exit 2 and the line for a refusal)."""
    try:
        return 0, json.loads(json.dumps(run())), ""
    except GpusizerError as exc:
        return 2, None, exc.message


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    field=st.sampled_from(["users", "context", "max_gpus", "percentile", "headroom", "ttft_ms"]),
    bad=st.sampled_from(["0", "-3", "nan", "inf", "x", "1e99"]),
)
def test_a_bad_plan_option_is_refused_alike_naming_the_field(field: str, bad: str) -> None:
    """The CLI and the API refuse an out-of-range value with the same line, naming the field."""
    flag = "--" + field.replace("_", "-")
    code, _, line = _cli(["plan", "qwen2.5-0.5b-instruct", flag, bad, "--json"])
    if code != 2:  # e.g. headroom 0 is valid
        return
    assert line.startswith(f"{field}: "), line
    value: Any = bad
    for cast in (int, float):
        try:
            value = cast(bad)
            break
        except ValueError:
            continue
    try:
        api.plan("qwen2.5-0.5b-instruct", **{"context": 8192, "users": 1, field: value})
    except GpusizerError as exc:
        assert exc.message.startswith(f"{field}: "), exc.message
    else:
        raise AssertionError(f"the API took {field}={bad!r}, which the CLI refused: {line}")
