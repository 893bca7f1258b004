"""FastAPI app: a JSON API over the same functions as the CLI, and the planner page.

    client ─▶ size limit (FastAPI max_body_size) ─▶ SecurityHeaders ─▶ TrustedHost
           ─▶ OriginGuard ─▶ BodyGuard (arrival time, JSON depth) ─▶ route      (web.guard)
    route: body checked (pydantic bounds; a config.json by ``check_config_bounds``) in the
           event loop, then ``JobRunner.run`` computes it in a child process (web.worker):
           a time budget per request, stopped when the client leaves, never blocking others.

Request bodies are pydantic models with bounds; errors come back as 422 naming the field.
Nothing a request sends is used as a file path: a model is a catalogue name (resolved only
against the catalogue, never the server's folders) or an uploaded config.json.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import Response

from gpusizer import __version__
from gpusizer.api import model_from_config
from gpusizer.catalog.load import gpu_catalogue, model_catalogue
from gpusizer.domain.options import (
    DeploymentOptions,
    KvDtype,
    PlanEngine,
    SearchOptions,
    WorkloadOptions,
    option_field,
)
from gpusizer.engines import Engine
from gpusizer.errors import BadInputError, GpusizerError
from gpusizer.readers.bounded import parse_json
from gpusizer.report.html import document
from gpusizer.units import GIB, TokenCount
from gpusizer.web.guard import BodyGuard, OriginGuard, SecurityHeaders, content_security_policy
from gpusizer.web.page import FIRST_VISIT, LIVE_SCRIPT, SERVICE_LIMITS, PageInputs, error_page
from gpusizer.web.worker import JobAbandoned, JobRunner

__all__ = [
    "LOCAL_HOSTS",
    "MAX_BODY_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_FORM_BYTES",
    "SERVICE_LIMITS",
    "FitBody",
    "PerfBody",
    "PlanBody",
    "SimulateBody",
    "create_app",
]

# The Host header names this server: these always, plus the host it was started with.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# A config.json the page uploads (the browser refuses bigger ones before posting), and the
# form carrying it: URL-encoding can triple JSON's bytes, plus the other fields.
MAX_UPLOAD_BYTES = 256 * 1024
MAX_UPLOAD_FORM_BYTES = 3 * MAX_UPLOAD_BYTES + 16 * 1024
# The upload form's fields (config, filename and the page's nine inputs), with room to spare.
MAX_FORM_FIELDS = 32
# Every JSON API body is a few hundred bytes; 64 KiB leaves room for long lists.
MAX_BODY_BYTES = 64 * 1024
# A body that has not arrived within this many seconds is refused (408): a trickle holds nothing.
BODY_TIMEOUT_S = 15.0
# Per-request time budget for a fit/perf/simulate/plan/page computation; a plan takes ~1 s.
JOB_BUDGET_S = 30.0
# Address space one computation may add (a plan needs well under 200 MiB).
JOB_MEMORY_BYTES = 2 * GIB

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The Host header does not name this server"},
    403: {"description": "A cross-site request (Origin or Sec-Fetch-Site of another site)"},
    408: {"description": "The request body did not arrive in time"},
    413: {"description": "The request body is over the endpoint's size limit"},
    503: {"description": "Over this server's time budget, or every worker busy"},
}


Job = Callable[[str, dict[str, Any], Request], Awaitable[Any]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


_D, _W, _S = DeploymentOptions, WorkloadOptions, SearchOptions


class FitBody(_Body):
    model: str = Field(min_length=1, max_length=200, description="Catalogue model name or HF id")
    gpu: str = Field(min_length=1, max_length=100)
    gpus: int | None = option_field(_D, "gpus", le=SERVICE_LIMITS["gpus"])
    quant: str | None = option_field(_D, "quant")
    kv_dtype: KvDtype = option_field(_D, "kv_dtype")
    engine: Engine | None = option_field(_D, "engine")
    max_model_len: TokenCount | None = option_field(_D, "max_model_len", le=SERVICE_LIMITS["max_model_len"])
    users: int = option_field(_D, "users", le=SERVICE_LIMITS["users"])
    allow_long_context: bool = option_field(_D, "allow_long_context")


class _SpecBody(FitBody):
    spec_tokens: int = option_field(_D, "spec_tokens")
    spec_accept: float | None = option_field(_D, "spec_accept")


class PerfBody(_SpecBody):
    input_len: TokenCount = option_field(_W, "input_len")
    output_len: TokenCount = option_field(_W, "output_len")
    batches: list[Annotated[int, option_field(_W, "batch", default=...)]] | None = Field(
        default=None, max_length=16
    )


class SimulateBody(_SpecBody):
    rate: float | None = option_field(_W, "rate", le=SERVICE_LIMITS["rate"], default=None)
    concurrency: int | None = option_field(_W, "concurrency", le=SERVICE_LIMITS["concurrency"], default=None)
    input_len: TokenCount = option_field(_W, "input_len", le=SERVICE_LIMITS["sim_input_len"])
    output_len: TokenCount = option_field(_W, "output_len", le=SERVICE_LIMITS["sim_output_len"])
    requests: int = option_field(_W, "requests", le=SERVICE_LIMITS["requests"], default=500)
    seed: int = option_field(_W, "seed", le=SERVICE_LIMITS["seed"])
    slo_ttft_ms: float | None = option_field(_S, "ttft_ms")
    slo_tpot_ms: float | None = option_field(_S, "tpot_ms")
    prefix_tokens: int = option_field(_W, "prefix_tokens", le=SERVICE_LIMITS["sim_input_len"])


class PlanBody(_Body):
    model: str = Field(min_length=1, max_length=200)
    context: TokenCount = option_field(_S, "context", le=SERVICE_LIMITS["context"])
    users: int = option_field(_S, "users", le=SERVICE_LIMITS["users"])
    ttft_ms: float | None = option_field(_S, "ttft_ms")
    tpot_ms: float | None = option_field(_S, "tpot_ms")
    classes: list[Literal["consumer", "workstation", "datacenter", "apple"]] | None = None
    max_gpus: int = option_field(_S, "max_gpus", le=SERVICE_LIMITS["max_gpus"])
    input_len: TokenCount | None = option_field(_S, "input_len")
    output_len: TokenCount = option_field(_S, "output_len")
    quants: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        default=None, max_length=8, description="weight formats to consider"
    )
    precision: Literal["default", "high"] = "default"
    engine: list[PlanEngine] = Field(default=["vllm"], min_length=1, max_length=4)
    max_cost_per_hour: float | None = option_field(
        _S, "max_cost_per_hour", le=SERVICE_LIMITS["max_cost_per_hour"]
    )
    capex: float | None = option_field(_S, "capex", le=SERVICE_LIMITS["capex"])
    rank_by: Literal["owned", "cloud"] = "owned"


def _respond(path: str, status: int, message: str) -> Response:
    """One refusal line: an HTML page for the page's own routes, JSON for the API (a 422 in
    FastAPI's shape, so clients read every validation error alike)."""
    if not path.startswith("/api/"):
        return HTMLResponse(error_page(message), status)
    if status == 422:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": message, "type": "value_error"}]}, 422)
    return JSONResponse({"detail": message}, status)


def create_app(
    *,
    allowed_hosts: Sequence[str] = (),
    job_budget_s: float = JOB_BUDGET_S,
    max_jobs: int | None = None,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> FastAPI:
    """The app. ``allowed_hosts``: Host header values accepted besides ``LOCAL_HOSTS`` (the
    name or address ``serve`` was started with, ``--allowed-host``); ``job_budget_s``: seconds
    a request may compute; ``max_jobs``: computations at once (default: one per CPU, ≥ 2)."""
    runner = JobRunner(
        budget_s=job_budget_s,
        max_jobs=max_jobs or max(2, os.cpu_count() or 2),
        memory_bytes=JOB_MEMORY_BYTES,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(runner.warm)  # the first request need not start the fork server
        yield
        await anyio.to_thread.run_sync(runner.close)

    app = FastAPI(
        title="gpusizer",
        version=__version__,
        description="Right-size GPU hardware for self-hosted LLM inference.",
        responses=_ERRORS,
        docs_url=None,  # Swagger UI loads from a CDN; the schema is at /openapi.json
        max_body_size=MAX_UPLOAD_FORM_BYTES,  # the largest route's; each API route has its own
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.jobs = runner
    csp = content_security_policy([document("", ""), LIVE_SCRIPT])
    app.add_middleware(BodyGuard, respond=_respond, timeout_s=body_timeout_s)
    app.add_middleware(OriginGuard, respond=_respond)
    app.add_middleware(
        TrustedHostMiddleware, allowed_hosts=[*LOCAL_HOSTS, *allowed_hosts], www_redirect=False
    )
    app.add_middleware(SecurityHeaders, csp=csp)

    @app.exception_handler(GpusizerError)
    async def _expected(request: Request, exc: GpusizerError) -> Response:
        if not request.url.path.startswith("/api/"):
            return HTMLResponse(error_page(exc.message), 422)
        field = getattr(exc, "field", None) or getattr(exc, "kind", None)
        return JSONResponse(
            status_code=422,
            content={
                "detail": [{"loc": ["body", str(field or "body")], "msg": exc.message, "type": "value_error"}]
            },
        )

    @app.exception_handler(JobAbandoned)
    async def _abandoned(request: Request, exc: JobAbandoned) -> Response:
        return _respond(request.url.path, exc.status, exc.message)

    async def job(name: str, args: dict[str, Any], request: Request) -> Any:
        return await runner.run(name, args, request)

    _api_routes(app, job)
    _page_routes(app, job)
    return app


def _api_routes(app: FastAPI, job: Job) -> None:
    """The JSON API: catalogue lists and fit/perf/simulate/plan (bodies bounded by their models)."""

    @app.get("/api/models")
    def models() -> list[dict[str, Any]]:
        return [
            {"id": e.id, "aliases": list(e.aliases), "context_length": e.context_length}
            for e in model_catalogue()
        ]

    @app.get("/api/gpus")
    def gpus() -> list[dict[str, Any]]:
        return [
            {
                "key": g.key,
                "name": g.name,
                "class": g.gpu_class,
                "memory_gib": round(g.memory_bytes / GIB, 1),
                "bandwidth_tbps": g.memory_bandwidth_bps / 1e12,
                "list_price_usd": g.list_price_usd,
            }
            for g in gpu_catalogue()
        ]

    @app.post("/api/fit", max_body_size=MAX_BODY_BYTES)
    async def api_fit(body: FitBody, request: Request) -> dict[str, Any]:
        result: dict[str, Any] = await job("fit", body.model_dump(), request)
        return result

    @app.post("/api/perf", max_body_size=MAX_BODY_BYTES)
    async def api_perf(body: PerfBody, request: Request) -> dict[str, Any]:
        result: dict[str, Any] = await job("perf", body.model_dump(), request)
        return result

    @app.post("/api/simulate", max_body_size=MAX_BODY_BYTES)
    async def api_simulate(body: SimulateBody, request: Request) -> dict[str, Any]:
        if (body.rate is None) == (body.concurrency is None):
            raise BadInputError("rate", "give a request rate or a concurrency (one of them)")
        result: dict[str, Any] = await job("simulate", body.model_dump(), request)
        return result

    @app.post("/api/plan", max_body_size=MAX_BODY_BYTES)
    async def api_plan(body: PlanBody, request: Request) -> dict[str, Any]:
        result: dict[str, Any] = await job("plan", body.model_dump(), request)
        return result


def _page_routes(app: FastAPI, job: Job) -> None:
    """The planner page and its config.json upload."""

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> HTMLResponse:
        """The planner page. Its query string carries the inputs (model, context, users,
        ttft_ms, tpot_ms, gpu_class, quant, engine, max_gpus, max_cost_per_hour); a field left
        empty means "no constraint", a bad one is shown on the page naming the field."""
        query = {k: v for k, v in request.query_params.items() if len(v) <= 200}
        if not query:
            query = dict(FIRST_VISIT)
        inputs = PageInputs.from_form(query)  # a bad field: 422, the page naming it
        html: str = await job("page", {"inputs": asdict(inputs), "model": inputs.model}, request)
        return HTMLResponse(html)

    @app.post(
        "/upload",
        max_body_size=MAX_UPLOAD_FORM_BYTES,
        response_class=HTMLResponse,
        responses={
            413: {"description": "config.json over the size limit"},
            422: {"description": "config.json or a field could not be read"},
        },
    )
    async def upload(request: Request) -> HTMLResponse:
        """The planner for a model given as its config.json (read in the browser and posted
        as a form field; bounded; parsed, never stored, never used as a path). The config is
        read and bounded here (``check_config_bounds``, inside ``model_from_config``) before
        any arithmetic; only the plan runs in a worker."""
        raw = await request.body()  # at most MAX_UPLOAD_FORM_BYTES (max_body_size)
        try:
            fields = parse_qs(raw.decode("utf-8", errors="replace"), max_num_fields=MAX_FORM_FIELDS)
        except ValueError as exc:  # more fields than the form has
            raise BadInputError("form", f"more than {MAX_FORM_FIELDS} fields") from exc
        form = {k: v[0] for k, v in fields.items()}
        text = form.get("config", "")
        if len(text.encode()) > MAX_UPLOAD_BYTES:
            return HTMLResponse(error_page(f"config.json is larger than {MAX_UPLOAD_BYTES // 1024} KiB"), 413)
        inputs = PageInputs.from_form(form)
        config = parse_json(text, "config.json")
        filename = str(form.get("filename") or "uploaded config.json")[:100]
        model_from_config(config, name=filename)  # bounded first, so this takes milliseconds
        args = {"inputs": asdict(inputs), "config": config, "filename": filename}
        html: str = await job("page", args, request)
        return HTMLResponse(html)
