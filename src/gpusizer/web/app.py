"""FastAPI app: a JSON API over the same functions as the CLI, and a planner page.

The page is server-rendered HTML with inline SVG (no CDN, no JavaScript needed); its URL
carries every input, so a plan can be shared as a link. Request bodies are pydantic models
with bounds; errors come back as 422 naming the field. Nothing a request sends is used as
a file path: models must be catalogue names here.
"""

from __future__ import annotations

from html import escape
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gpusizer import __version__
from gpusizer.api import fit, perf, simulate
from gpusizer.catalog.load import gpu_catalogue, model_catalogue
from gpusizer.catalog.resolve import resolve_model
from gpusizer.errors import BadInputError, GpusizerError
from gpusizer.planning import plan
from gpusizer.report.fit import fit_to_dict
from gpusizer.report.html import document, plan_sections
from gpusizer.report.perf import perf_to_dict
from gpusizer.report.plan import plan_to_dict
from gpusizer.report.simulate import sim_to_dict
from gpusizer.simulate.workload import LengthDist
from gpusizer.units import GIB

__all__ = ["create_app"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FitBody(_Body):
    model: str = Field(min_length=1, max_length=200, description="Catalogue model name or HF id")
    gpu: str = Field(min_length=1, max_length=100)
    gpus: int | None = Field(default=None, ge=1, le=64)
    quant: str | None = Field(default=None, max_length=40)
    kv_dtype: str = Field(default="auto", max_length=20)
    engine: Literal["vllm", "sglang", "tensorrt-llm", "llamacpp", "transformers"] | None = None
    max_model_len: int | None = Field(default=None, ge=1, le=2_097_152)
    users: int = Field(default=1, ge=1, le=100_000)


class PerfBody(FitBody):
    input_len: int = Field(default=1024, ge=1, le=1_048_576)
    output_len: int = Field(default=256, ge=1, le=1_048_576)
    batches: list[int] | None = Field(default=None, max_length=16)


class SimulateBody(FitBody):
    rate: float | None = Field(default=None, gt=0, le=10_000, description="Open loop: requests/s")
    concurrency: int | None = Field(default=None, ge=1, le=4096, description="Closed loop: users")
    input_len: int = Field(default=1024, ge=1, le=262_144)
    output_len: int = Field(default=256, ge=1, le=65_536)
    requests: int = Field(default=500, ge=1, le=5000)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    slo_ttft_ms: float | None = Field(default=None, gt=0, le=600_000)
    slo_tpot_ms: float | None = Field(default=None, gt=0, le=60_000)
    prefix_tokens: int = Field(default=0, ge=0, le=262_144)


class PlanBody(_Body):
    model: str = Field(min_length=1, max_length=200)
    context: int = Field(default=8192, ge=256, le=2_097_152)
    users: int = Field(default=1, ge=1, le=10_000)
    ttft_ms: float | None = Field(default=None, gt=0, le=600_000)
    tpot_ms: float | None = Field(default=None, gt=0, le=60_000)
    classes: list[Literal["consumer", "workstation", "datacenter", "apple"]] | None = None
    max_gpus: int = Field(default=8, ge=1, le=16)


def _catalogue_model(name: str) -> str:
    """Only catalogue names: a request never names a path on this machine."""
    return resolve_model(name, model_catalogue()).id


def create_app() -> FastAPI:
    app = FastAPI(
        title="gpusizer",
        version=__version__,
        description="Right-size GPU hardware for self-hosted LLM inference.",
        responses={400: {"description": "The request body could not be read as JSON"}},
    )

    @app.exception_handler(GpusizerError)
    async def _expected(_: Request, exc: GpusizerError) -> JSONResponse:
        field = getattr(exc, "field", None) or getattr(exc, "kind", None)
        return JSONResponse(
            status_code=422,
            content={
                "detail": [{"loc": ["body", str(field or "body")], "msg": exc.message, "type": "value_error"}]
            },
        )

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

    @app.post("/api/fit")
    def api_fit(body: FitBody) -> dict[str, Any]:
        res = fit(
            _catalogue_model(body.model),
            body.gpu,
            gpus=body.gpus,
            quant=body.quant,
            kv_dtype=body.kv_dtype,
            engine=body.engine,
            max_model_len=body.max_model_len,
            users=body.users,
        )
        return fit_to_dict(res)

    @app.post("/api/perf")
    def api_perf(body: PerfBody) -> dict[str, Any]:
        res = perf(
            _catalogue_model(body.model),
            body.gpu,
            input_len=body.input_len,
            output_len=body.output_len,
            batches=tuple(body.batches) if body.batches else None,
            gpus=body.gpus,
            quant=body.quant,
            kv_dtype=body.kv_dtype,
            engine=body.engine,
        )
        return perf_to_dict(res)

    @app.post("/api/simulate")
    def api_simulate(body: SimulateBody) -> dict[str, Any]:
        if (body.rate is None) == (body.concurrency is None):
            raise BadInputError("rate", "give a request rate or a concurrency (one of them)")
        res = simulate(
            _catalogue_model(body.model),
            body.gpu,
            rates=(body.rate,) if body.rate else (),
            users=(body.concurrency,) if body.concurrency else (),
            input_len=LengthDist(mean=body.input_len),
            output_len=LengthDist(mean=body.output_len),
            requests=body.requests,
            seed=body.seed,
            slo_ttft_ms=body.slo_ttft_ms,
            slo_tpot_ms=body.slo_tpot_ms,
            prefix_tokens=body.prefix_tokens,
            gpus=body.gpus,
            quant=body.quant,
            kv_dtype=body.kv_dtype,
            engine=body.engine,
            max_model_len=body.max_model_len,
        )
        return sim_to_dict(res)

    @app.post("/api/plan")
    def api_plan(body: PlanBody) -> dict[str, Any]:
        res = plan(
            _catalogue_model(body.model),
            context=body.context,
            users=body.users,
            ttft_ms=body.ttft_ms,
            tpot_ms=body.tpot_ms,
            classes=body.classes,
            max_gpus=body.max_gpus,
        )
        return plan_to_dict(res)

    @app.get("/", response_class=HTMLResponse)
    def page(
        model: str = Query(default="deepseek-r1-distill-qwen-32b", max_length=200),
        context: int = Query(default=32768, ge=256, le=2_097_152),
        users: int = Query(default=10, ge=1, le=10_000),
        ttft_ms: float | None = Query(default=1000, gt=0, le=600_000),
        tpot_ms: float | None = Query(default=33.3, gt=0, le=60_000),
        gpu_class: str = Query(default="consumer,workstation,datacenter", max_length=60),
    ) -> HTMLResponse:
        classes = [c for c in gpu_class.split(",") if c]
        try:
            result = plan_to_dict(
                plan(
                    _catalogue_model(model),
                    context=context,
                    users=users,
                    ttft_ms=ttft_ms,
                    tpot_ms=tpot_ms,
                    classes=classes,
                )
            )
            error = None
        except GpusizerError as exc:
            result, error = None, exc.message
        return HTMLResponse(_render_page(model, context, users, ttft_ms, tpot_ms, gpu_class, result, error))

    return app


_LIVE_SCRIPT = """<script>
(function () {
  var form = document.getElementById('planner'); var timer = null;
  form.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () { document.getElementById('status').textContent = 'planning…'; form.submit(); }, 800);
  });
  form.addEventListener('submit', function () {
    clearTimeout(timer);
    document.getElementById('status').textContent = 'planning…';
  });
})();
</script>"""


def _render_page(
    model: str,
    context: int,
    users: int,
    ttft_ms: float | None,
    tpot_ms: float | None,
    gpu_class: str,
    result: dict[str, Any] | None,
    error: str | None,
) -> str:
    def val(v: Any) -> str:
        return escape("" if v is None else str(v))

    options = "".join(f'<option value="{escape(e.id.split("/")[-1].lower())}">' for e in model_catalogue())
    form = f"""
<form id="planner" method="get" action="/">
  <label>model <input name="model" list="models" value="{val(model)}" size="36"></label>
  <datalist id="models">{options}</datalist>
  <label>context <input name="context" type="number" min="256" value="{val(context)}"></label>
  <label>users <input name="users" type="number" min="1" value="{val(users)}"></label>
  <label>TTFT ms <input name="ttft_ms" type="number" step="any" value="{val(ttft_ms)}"></label>
  <label>TPOT ms <input name="tpot_ms" type="number" step="any" value="{val(tpot_ms)}"></label>
  <label>GPU classes <input name="gpu_class" value="{val(gpu_class)}"></label>
  <button type="submit">Plan</button> <span id="status" class="muted"></span>
</form>
<p class="muted">The page re-plans as you type; its address carries the inputs, so the link shares this plan.</p>"""
    body = f'<p class="error">{escape(error)}</p>' if error else plan_sections(result) if result else ""
    return document("gpusizer plan", f"<h1>gpusizer — plan</h1>{form}{body}{_LIVE_SCRIPT}")
