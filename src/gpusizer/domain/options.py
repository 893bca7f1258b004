"""Every user option, defined once: its type, bounds and meaning. The CLI builds its
parsers from these fields, the web API its request bodies, and the Python API checks its
arguments against them, so a value means the same thing and is refused the same way on every
surface, with one line naming the field (``users: must be 1..1000000, got 0``).

    DeploymentOptions  a model replica on GPUs: layout, formats, engine settings, users, context
    WorkloadOptions    the load a simulation runs: lengths, requests, arrivals, shared prefixes
    SloOptions         latency targets
    SearchOptions      what ``plan`` searches: users at a context, hardware, formats, budgets

Pure: pydantic models and the catalogue's name tables, nothing else.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import annotated_types
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined

from gpusizer.catalog.load import kv_dtype_table
from gpusizer.engines import ENGINE_NAMES, PLAN_ENGINES, Engine
from gpusizer.errors import BadInputError
from gpusizer.units import TokenCount

__all__ = [
    "CONTEXT_MAX",
    "MAX_USERS",
    "DeploymentOptions",
    "KvDtype",
    "PlanEngine",
    "SearchOptions",
    "SloOptions",
    "WorkloadOptions",
    "checked",
    "field_bounds",
    "field_problem",
    "option_field",
    "parse_field",
]

MAX_USERS = 1_000_000  # concurrent users; the memory suggestion bisects, so a million is answered fast
CONTEXT_MAX = 16 * 1024 * 1024  # tokens per request: beyond any model today; guards absurd input
TOKENS_MAX = 16 * 1024 * 1024
MS_MAX = 3_600_000.0  # an hour, the longest latency target worth stating
GPU_CLASSES = ("consumer", "workstation", "datacenter", "apple")
PERCENTILES = (50, 90, 95, 99)


def _kv_dtype(value: str) -> str:
    """A KV cache dtype some engine takes (data/quant.yaml, names or aliases); whether the
    chosen engine takes it is checked with the engine (``domain.kv.resolve_kv_dtype``)."""
    names = {n.lower() for k, d in kv_dtype_table().items() for n in (k, *d.aliases)}
    if value.strip().lower() not in names:
        raise ValueError(f"unknown KV dtype {value!r}")
    return value.strip()


def _plan_engine(value: str) -> str:
    if value not in (*PLAN_ENGINES, "auto"):
        raise ValueError(f"unknown engine {value!r}")
    return value


def _percentile(value: int) -> int:
    if value not in PERCENTILES:
        raise ValueError(f"must be 50, 90, 95 or 99, got {value}")
    return value


KvDtype = Annotated[str, AfterValidator(_kv_dtype)]
PlanEngine = Annotated[str, AfterValidator(_plan_engine)]
Users = Annotated[int, Field(ge=1, le=MAX_USERS, description="concurrent users (requests) at full context")]

# The accepted values a one-line error lists, per field whose type does not say it.
ACCEPTED: dict[str, str] = {
    "kv_dtype": ", ".join(kv_dtype_table()),
    "engine": ", ".join(ENGINE_NAMES),
    "engines": ", ".join((*PLAN_ENGINES, "auto")),
    "classes": ", ".join(GPU_CLASSES),
    "percentile": ", ".join(map(str, PERCENTILES)),
}


# Spread of fixed request lengths in a simulated workload (why 0.2 %: simulate/workload.py).
DEFAULT_JITTER = 0.002


class _Options(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeploymentOptions(_Options):
    """One model replica: how many GPUs and how they split it, the weight and KV formats,
    the engine and its settings, the users it holds at the context."""

    gpus: int | None = Field(default=None, ge=1, le=4096, description="GPUs (default: tp × pp)")
    tp: int | None = Field(default=None, ge=1, le=1024, description="tensor-parallel size")
    pp: int | None = Field(default=None, ge=1, le=256, description="pipeline-parallel size")
    quant: str | None = Field(default=None, min_length=1, max_length=40, description="weight format")
    kv_dtype: KvDtype = Field(default="auto", max_length=20, description="KV cache dtype")
    engine: Engine | None = Field(
        default=None, description="inference engine (default: vLLM; llama.cpp for GGUF)"
    )
    engine_version: str | None = Field(default=None, max_length=40, description="engine version, e.g. 0.11.0")
    engine_mode: Literal["V0", "V1"] | None = Field(
        default=None, description="vLLM engine core (default by version)"
    )
    max_model_len: TokenCount | None = Field(
        default=None, ge=1, le=CONTEXT_MAX, description="context per request"
    )
    users: Users = 1
    gpu_memory_utilization: float | None = Field(
        default=None, ge=0.05, le=1.0, allow_inf_nan=False, description="the engine's memory-fraction setting"
    )
    max_num_seqs: int | None = Field(default=None, ge=1, le=1_000_000, description="running requests at most")
    max_num_batched_tokens: TokenCount | None = Field(
        default=None, ge=1, le=TOKENS_MAX, description="token budget per engine step"
    )
    block_size: int | None = Field(default=None, ge=1, le=4096, description="tokens per KV block")
    enforce_eager: bool = Field(default=False, description="no CUDA graphs")
    speculative_mtp: bool = Field(default=False, description="DeepSeek MTP speculative decoding")
    spec_tokens: int = Field(
        default=0, ge=0, le=16, description="speculative decoding: tokens drafted per step (MTP/EAGLE chain)"
    )
    spec_accept: float | None = Field(
        default=None,
        ge=1.0,
        le=17.0,
        allow_inf_nan=False,
        description="speculative decoding: mean tokens kept per step (the server's accept length)",
    )
    usage: Literal["serve", "offline"] = "serve"
    ep: bool = Field(default=False, description="expert parallel for MoE")
    gpus_per_node: int = Field(default=8, ge=1, le=72, description="GPUs per node (TP inside, PP across)")
    dp_attention: bool = Field(default=False, description="data-parallel attention")
    allow_long_context: bool = Field(default=False, description="a context past max_position_embeddings")
    gpu_memory_gib: float | None = Field(
        default=None, gt=0, le=1e6, allow_inf_nan=False, description="override the GPU's memory, GiB"
    )
    gpu_bandwidth_gbps: float | None = Field(
        default=None, gt=0, le=1e6, allow_inf_nan=False, description="override the memory bandwidth, GB/s"
    )


class WorkloadOptions(_Options):
    """The load a simulation or speed table runs."""

    input_len: TokenCount = Field(default=1024, ge=1, le=TOKENS_MAX, description="prompt tokens")
    output_len: TokenCount = Field(default=256, ge=1, le=TOKENS_MAX, description="generated tokens")
    batch: int = Field(default=1, ge=1, le=4096, description="requests decoded together (a speed row)")
    rate: float = Field(default=1.0, gt=0, le=1e6, allow_inf_nan=False, description="open loop: requests/s")
    concurrency: Users = 1
    requests: int = Field(default=1000, ge=1, le=2_000_000, description="requests to simulate")
    duration: float | None = Field(default=None, ge=0.001, le=86_400 * 7, allow_inf_nan=False)
    think_time_s: float = Field(default=0.0, ge=0, le=86_400, allow_inf_nan=False)
    burstiness: float = Field(default=1.0, gt=0, le=1000, allow_inf_nan=False, description="gamma shape")
    jitter: float = Field(
        default=DEFAULT_JITTER,
        ge=0,
        le=0.5,
        allow_inf_nan=False,
        description="fixed lengths drawn within ± this fraction, at least ±1 token (0: exact, lockstep)",
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    prefix_tokens: int = Field(default=0, ge=0, le=1 << 21, description="shared leading prompt tokens")
    prefix_groups: int = Field(default=1, ge=1, le=1_000_000, description="distinct shared prefixes")
    prefix_caching: bool | None = None


class SloOptions(_Options):
    """Latency targets (per request, at the plan's percentile)."""

    ttft_ms: float | None = Field(
        default=None, gt=0, le=MS_MAX, allow_inf_nan=False, description="time-to-first-token target, ms"
    )
    tpot_ms: float | None = Field(
        default=None, gt=0, le=MS_MAX, allow_inf_nan=False, description="time-per-output-token target, ms"
    )
    tokens_per_s_per_user: float | None = Field(
        default=None, gt=0, le=1e6, allow_inf_nan=False, description="per-user decode speed (1000 / TPOT)"
    )


class SearchOptions(SloOptions):
    """What ``plan`` searches and how it ranks."""

    context: TokenCount = Field(default=8192, ge=256, le=CONTEXT_MAX, description="max tokens per request")
    users: Users = 1
    input_len: TokenCount | None = Field(
        default=None, ge=1, le=TOKENS_MAX, description="typical prompt tokens"
    )
    output_len: TokenCount = Field(default=512, ge=1, le=TOKENS_MAX, description="typical output tokens")
    gpus: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] | None = None
    classes: tuple[Literal["consumer", "workstation", "datacenter", "apple"], ...] | None = None
    max_gpus: int = Field(default=8, ge=1, le=64, description="most GPUs per plan")
    quants: tuple[Annotated[str, Field(min_length=1, max_length=40)], ...] | None = None
    precision: Literal["default", "high"] = "default"
    engines: tuple[PlanEngine, ...] = Field(default=("vllm",), min_length=1, max_length=5)
    kv_dtype: KvDtype | None = None
    headroom: float = Field(default=0.10, ge=0, le=0.9, allow_inf_nan=False, description="share kept free")
    percentile: Annotated[int, AfterValidator(_percentile)] = Field(
        default=95, description="the latency percentile the targets apply to"
    )
    max_simulations: int = Field(
        default=60, ge=1, le=1000, description="simulations the verification may run"
    )
    max_cost_per_hour: float | None = Field(default=None, gt=0, le=1e9, allow_inf_nan=False)
    capex: float | None = Field(
        default=None, gt=0, le=1e12, allow_inf_nan=False, description="hardware budget"
    )
    years: float = Field(default=3.0, gt=0, le=50, allow_inf_nan=False, description="amortisation years")
    kwh_price: float = Field(default=0.15, ge=0, le=100, allow_inf_nan=False, description="USD per kWh")
    rank_by: Literal["owned", "cloud"] = "owned"
    systems: tuple[Annotated[str, Field(min_length=1, max_length=60)], ...] | None = None


def field_bounds(model: type[BaseModel], name: str) -> tuple[float | None, float | None, bool]:
    """(low, high, low excluded) of a numeric field."""
    low: float | None = None
    high: float | None = None
    above = False
    for m in model.model_fields[name].metadata:
        if getattr(m, "ge", None) is not None:
            low = m.ge
        if getattr(m, "gt", None) is not None:
            low, above = m.gt, True
        if getattr(m, "le", None) is not None:
            high = m.le
    return low, high, above


def _range(model: type[BaseModel], name: str, whole: bool) -> str:
    low, high, above = field_bounds(model, name)
    if whole:
        return f"{int(low)}..{int(high)}" if low is not None and high is not None else ""
    return f"{'(' if above else '['}{low:g}, {high:g}]" if low is not None and high is not None else ""


def field_problem(model: type[BaseModel], name: str, err: Any, value: Any) -> BadInputError:
    """One pydantic error on field ``name`` as a one-line BadInputError naming the field."""
    kind = str(err.get("type", ""))
    annotation = str(model.model_fields[name].annotation)
    whole = "int" in annotation and "float" not in annotation
    span = _range(model, name, whole)
    if kind in ("int_parsing", "int_from_float", "float_parsing"):
        what = "a whole number" if whole else "a number"
        return BadInputError(name, f"cannot read {value!r} as {what}", span or None)
    if kind == "finite_number":
        return BadInputError(name, f"must be a finite number, got {value!r}", span or None)
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        got = err.get("input", value)
        shown = f"{got:g}" if isinstance(got, float) else f"{got}"
        return BadInputError(
            name, f"must be {span}, got {shown}" if whole else f"must be in {span}, got {shown}"
        )
    if kind == "value_error" and "token count" in str(err.get("msg", "")):
        return BadInputError(name, str(err["msg"]).removeprefix("Value error, "))
    if kind == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        got = err.get("input", value)
        return BadInputError(name, f"unknown value {got!r}", ACCEPTED.get(name) or expected)
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return BadInputError(name, msg[:1].lower() + msg[1:], ACCEPTED.get(name))


def parse_field(model: type[BaseModel], name: str, value: Any) -> Any:
    """``value`` (text from a command line, or a Python value) read as field ``name`` of
    ``model``; a BadInputError naming the field when it is out of bounds or unreadable."""
    text = value.strip() if isinstance(value, str) else value
    try:
        return _adapter(model, name).validate_python(text)
    except ValidationError as exc:
        raise field_problem(model, name, exc.errors()[0], value) from None


_ADAPTERS: dict[tuple[type[BaseModel], str], TypeAdapter[Any]] = {}


def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    key = (model, name)
    if key not in _ADAPTERS:
        info = model.model_fields[name]
        kind: Any = info.annotation
        _ADAPTERS[key] = TypeAdapter(Annotated[kind, *info.metadata] if info.metadata else kind)
    return _ADAPTERS[key]


M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], **values: Any) -> M:
    """``model`` built from ``values``; the first problem as a one-line BadInputError naming
    its field (the Python API's check, the same as the CLI's and the web's)."""
    try:
        return model(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err.get("loc") else model.__name__
        if name not in model.model_fields:
            raise BadInputError(name, str(err.get("msg", "invalid value"))) from None
        raise field_problem(model, name, err, values.get(name)) from None


def option_field(
    model: type[BaseModel], name: str, *, le: float | None = None, default: Any = PydanticUndefined
) -> Any:
    """Field ``name`` of ``model`` (default, bounds, description) for another model, such as
    a web request body; ``le`` tightens the upper bound (a server's own budget), ``default``
    replaces the default."""
    info = model.model_fields[name]
    meta = [m for m in info.metadata if le is None or not isinstance(m, annotated_types.Le)]
    if le is not None:
        meta.append(annotated_types.Le(le))
    out: Any = Field(
        default=info.default if default is PydanticUndefined else default, description=info.description
    )
    out.metadata = meta
    return out
