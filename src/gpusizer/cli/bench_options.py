"""``gpusizer bench``'s options, and reading them into the load points of a sweep: every
point is checked before anything is stored or sent."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

import typer

from gpusizer.bench.client import BenchSettings, Prompt, server_base
from gpusizer.bench.prompts import load_dataset
from gpusizer.cli.common import parse_tokens
from gpusizer.cli.options import number, whole
from gpusizer.errors import BadInputError
from gpusizer.store.paths import default_db

__all__ = ["DEFAULT_DB", "BenchArgs", "Sweep", "read_sweep"]

DEFAULT_DB = default_db()

UrlArg = Annotated[str, typer.Argument(help="Server base URL, e.g. http://127.0.0.1:8000")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Model name the server expects")]
ApiOpt = Annotated[str, typer.Option(help="completions | chat")]
ConcurrencyOpt = Annotated[str | None, typer.Option(help="Closed loop: concurrent requests, e.g. 1,4,16")]
RateOpt = Annotated[str | None, typer.Option(help="Open loop: Poisson requests/s, e.g. 1,2,4")]
BurstinessOpt = Annotated[
    float,
    typer.Option(
        help="With --rate: gamma shape of the gaps, 1 = Poisson, below 1 burstier",
        parser=number("--burstiness", 0.01, 100),
    ),
]
InputLenOpt = Annotated[
    str,
    typer.Option(help="Prompt tokens (sized with the server's /tokenize when it has one, else estimated)"),
]
OutputLenOpt = Annotated[str, typer.Option(help="Output tokens (ignore_eos keeps it fixed)")]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        help='JSONL prompts instead of synthetic ones: {"prompt"} | {"messages"} | ShareGPT, optional "output_len"'
    ),
]
RequestsOpt = Annotated[
    int | None,
    typer.Option(
        help="Measured requests per point (default 32; a cap with --duration)",
        parser=whole("--requests", 1, 10_000_000),
    ),
]
DurationOpt = Annotated[
    float | None,
    typer.Option(
        help="Seconds per point (new requests stop then)", parser=number("--duration", 0.1, 7 * 86400)
    ),
]
WarmupOpt = Annotated[
    int, typer.Option(help="Warm-up requests per point, not measured", parser=whole("--warmup", 0, 10_000))
]
SloTtftOpt = Annotated[
    float | None,
    typer.Option(help="TTFT target for goodput", parser=number("--slo-ttft-ms", 0, 1e8, above=True)),
]
SloTpotOpt = Annotated[
    float | None,
    typer.Option(help="TPOT target for goodput", parser=number("--slo-tpot-ms", 0, 1e8, above=True)),
]
ApiKeyEnvOpt = Annotated[
    str | None, typer.Option(help="Name of the environment variable holding the API key")
]
TimeoutOpt = Annotated[
    float, typer.Option(help="Deadline of each whole request, seconds", parser=number("--timeout-s", 1, 3600))
]
MetricsIntervalOpt = Annotated[
    float,
    typer.Option(
        help="Scrape the server's /metrics every S seconds (0: off)",
        parser=number("--metrics-interval", 0, 3600),
    ),
]
DbOpt = Annotated[str | None, typer.Option(help=f"SQLite file for the runs (default {DEFAULT_DB})")]
PredictModelOpt = Annotated[
    str | None,
    typer.Option(
        help="Compare with gpusizer's prediction for this model (catalogue name, config.json or .gguf)"
    ),
]
GpuOpt = Annotated[str | None, typer.Option("--gpu", help="GPU the server runs on, for the prediction")]
GpusOpt = Annotated[
    int | None,
    typer.Option(help="GPUs the server uses, for the prediction", parser=whole("--gpus", 1, 4096)),
]
EngineOpt = Annotated[str | None, typer.Option(help="Engine behind the URL, for the prediction")]


@dataclass(frozen=True)
class BenchArgs:
    """The bench command line as given (``--db`` apart, which the command resolves)."""

    url: str
    model: str
    api: str
    concurrency: str | None
    rate: str | None
    burstiness: float
    input_len: str
    output_len: str
    dataset: str | None
    requests: int | None
    duration: float | None
    warmup: int
    slo_ttft_ms: float | None
    slo_tpot_ms: float | None
    api_key_env: str | None
    timeout_s: float
    metrics_interval: float
    predict_model: str | None
    gpu: str | None
    gpus: int | None
    engine: str | None
    as_json: bool
    report: str | None


@dataclass(frozen=True)
class Sweep:
    """A checked command line: the server's base URL, the request headers, the dataset's
    prompts (none: synthetic ones), the prompt length asked for, and each load point."""

    base: str
    headers: dict[str, str]
    prompts: list[Prompt]
    input_tokens: int
    points: list[BenchSettings]


def read_sweep(a: BenchArgs) -> Sweep:
    """The load points of ``a``, every one checked; a bad option is a one-line error."""
    if a.api not in ("completions", "chat"):
        raise BadInputError("--api", f"unknown API {a.api!r}", "completions, chat")
    if a.predict_model and a.gpu is None:
        raise BadInputError("--gpu", "the prediction needs the GPU the server runs on")
    base = server_base(a.url)
    headers: dict[str, str] = {}
    key = None
    if a.api_key_env:
        key = os.environ.get(a.api_key_env)
        if not key:
            raise BadInputError("--api-key-env", f"environment variable {a.api_key_env} is not set")
        headers["Authorization"] = f"Bearer {key}"
    prompts = load_dataset(a.dataset) if a.dataset else []
    in_tokens = parse_tokens("--input-len", a.input_len) or 1
    out_tokens = parse_tokens("--output-len", a.output_len) or 1
    n_requests = a.requests if a.requests is not None else (10_000_000 if a.duration else 32)
    points = [
        BenchSettings(
            url=a.url,
            model=a.model,
            api="chat" if a.api == "chat" else "completions",
            input_len=in_tokens,
            output_len=out_tokens,
            requests=n_requests,
            duration_s=a.duration,
            warmup=a.warmup,
            concurrency=conc,
            rate=r,
            burstiness=a.burstiness,
            timeout_s=a.timeout_s,
            api_key=key,
            metrics_interval_s=a.metrics_interval,
        )
        for conc, r in _loads(a.concurrency, a.rate)
    ]
    return Sweep(base=base, headers=headers, prompts=prompts, input_tokens=in_tokens, points=points)


def _loads(concurrency: str | None, rate: str | None) -> list[tuple[int | None, float | None]]:
    if bool(concurrency) == bool(rate):
        raise BadInputError("--concurrency/--rate", "give concurrency levels or request rates (one of them)")
    try:
        if concurrency:
            return [(int(c), None) for c in concurrency.split(",")]
        assert rate is not None
        return [(None, float(r)) for r in rate.split(",")]
    except ValueError as exc:
        raise BadInputError(
            "--concurrency/--rate", f"cannot read {concurrency or rate!r}", "e.g. 1,4,16"
        ) from exc
