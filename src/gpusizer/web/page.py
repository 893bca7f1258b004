"""The planner page: server-rendered HTML with inline SVG (no CDN; one small inline script
re-plans as the user types and reads a chosen config.json in the browser). Its URL carries
every input, so a plan can be shared as a link. Pure: inputs in, HTML out; the app runs
``plan_page`` in a worker process (``web.jobs``) because planning takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from gpusizer.api import plan
from gpusizer.catalog.load import model_catalogue
from gpusizer.domain.options import SearchOptions, parse_field
from gpusizer.engines import PLAN_ENGINES
from gpusizer.errors import BadInputError, GpusizerError
from gpusizer.report.html import document, plan_sections
from gpusizer.report.plan import plan_to_dict

__all__ = ["FIRST_VISIT", "LIVE_SCRIPT", "SERVICE_LIMITS", "PageInputs", "error_page", "plan_page"]

# What the page plans on a first visit: the README's example.
FIRST_VISIT = {
    "model": "deepseek-r1-distill-qwen-32b",
    "context": "32768",
    "users": "10",
    "ttft_ms": "1000",
    "tpot_ms": "33.3",
    "gpu_class": "consumer,workstation,datacenter",
}
_ENGINES = (*PLAN_ENGINES, "auto")
# The server's own budget: a few fields are held under the options' bounds so that one request
# stays within the app's time budget; everything else is bounded by ``domain.options``.
SERVICE_LIMITS: dict[str, int] = {
    "users": 10_000,
    "gpus": 64,
    "max_model_len": 2_097_152,
    "context": 2_097_152,
    "max_gpus": 16,
    "concurrency": 4096,
    "requests": 5000,
    "sim_input_len": 262_144,
    "sim_output_len": 65_536,
    "seed": 2**31 - 1,
    "rate": 10_000,
    "max_cost_per_hour": 100_000,
    "capex": 1_000_000_000,
}


@dataclass(frozen=True)
class PageInputs:
    model: str
    context: int
    users: int
    ttft_ms: float | None
    tpot_ms: float | None
    gpu_class: str
    quant: str = ""
    engine: str = "vllm"
    max_gpus: int = 8
    max_cost_per_hour: float | None = None

    @classmethod
    def from_form(cls, form: dict[str, str]) -> PageInputs:
        """The page's query or the upload form's fields, each read as its ``SearchOptions``
        field (the CLI's and the API's bounds and token forms), under ``SERVICE_LIMITS``."""

        def num(key: str, default: float | None) -> Any:
            """Field ``key`` read as ``SearchOptions`` reads it, under the server's budget."""
            text = (form.get(key) or "").strip()
            if not text:
                return default
            value = parse_field(SearchOptions, key, text)
            limit = SERVICE_LIMITS.get(key)
            if limit is not None and value > limit:
                raise BadInputError(key, f"must be at most {limit:,} on this server, got {value:,}")
            return value

        return cls(
            model=(form.get("model") or "").strip()[:200],
            context=num("context", 32768),
            users=num("users", 10),
            ttft_ms=num("ttft_ms", None),
            tpot_ms=num("tpot_ms", None),
            gpu_class=(form.get("gpu_class") or "consumer,workstation,datacenter")[:60],
            quant=(form.get("quant") or "")[:60],
            engine=(form.get("engine") or "vllm")[:40],
            max_gpus=num("max_gpus", 8),
            max_cost_per_hour=num("max_cost_per_hour", None),
        )


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def plan_page(inputs: PageInputs, model: Callable[[], Any], *, uploaded: bool = False) -> str:
    try:
        engines = _split(inputs.engine) or ["vllm"]
        bad = [e for e in engines if e not in _ENGINES]
        if bad:
            raise BadInputError("engine", f"unknown engine {bad[0]!r}", ", ".join(_ENGINES))
        result = plan_to_dict(
            plan(
                model(),
                context=inputs.context,
                users=inputs.users,
                ttft_ms=inputs.ttft_ms,
                tpot_ms=inputs.tpot_ms,
                classes=_split(inputs.gpu_class),
                quants=_split(inputs.quant) or None,
                engine=engines,
                max_gpus=inputs.max_gpus,
                max_cost_per_hour=inputs.max_cost_per_hour,
            )
        )
        error = None
    except GpusizerError as exc:
        result, error = None, exc.message
    return _render_page(inputs, result, error, uploaded=uploaded)


def error_page(message: str) -> str:
    return document(
        "gpusizer plan",
        f'<h1>gpusizer — plan</h1><p class="error">{escape(message)}</p><p><a href="/">back</a></p>',
    )


LIVE_SCRIPT = """<script>
(function () {
  var form = document.getElementById('planner'); var timer = null;
  form.addEventListener('input', function (e) {
    if (e.target.type === 'file') return;
    clearTimeout(timer);
    timer = setTimeout(function () { document.getElementById('status').textContent = 'planning…'; form.submit(); }, 800);
  });
  form.addEventListener('submit', function () {
    clearTimeout(timer);
    document.getElementById('status').textContent = 'planning…';
  });
  var file = document.getElementById('config-file');
  file.addEventListener('change', function () {
    var f = file.files[0]; if (!f) return;
    if (f.size > 262144) { document.getElementById('status').textContent = 'config.json over 256 KiB'; return; }
    var reader = new FileReader();
    reader.onload = function () {
      var up = document.getElementById('upload');
      up.querySelector('[name=config]').value = reader.result;
      up.querySelector('[name=filename]').value = f.name;
      ['context', 'users', 'ttft_ms', 'tpot_ms', 'gpu_class', 'quant', 'engine', 'max_gpus', 'max_cost_per_hour'].forEach(function (k) {
        up.querySelector('[name=' + k + ']').value = form.querySelector('[name=' + k + ']').value;
      });
      document.getElementById('status').textContent = 'planning…';
      up.submit();
    };
    reader.readAsText(f);
  });
})();
</script>"""


def _render_page(
    inputs: PageInputs, result: dict[str, Any] | None, error: str | None, *, uploaded: bool = False
) -> str:
    def val(v: Any) -> str:
        return escape("" if v is None else str(v))

    i = inputs
    options = "".join(f'<option value="{escape(e.id.split("/")[-1].lower())}">' for e in model_catalogue())
    hidden = "".join(
        f'<input type="hidden" name="{k}">'
        for k in (
            "config",
            "filename",
            "context",
            "users",
            "ttft_ms",
            "tpot_ms",
            "gpu_class",
            "quant",
            "engine",
            "max_gpus",
            "max_cost_per_hour",
        )
    )
    form = f"""
<form id="planner" method="get" action="/">
  <label>model <input name="model" list="models" value="{
        val(i.model)
    }" size="32" placeholder="catalogue name"></label>
  <datalist id="models">{options}</datalist>
  <label>or its config.json <input id="config-file" type="file" accept=".json,application/json"></label><br>
  <label>context <input name="context" type="number" min="256" value="{val(i.context)}"></label>
  <label>users <input name="users" type="number" min="1" value="{val(i.users)}"></label>
  <label>TTFT ms <input name="ttft_ms" type="number" step="any" value="{val(i.ttft_ms)}"></label>
  <label>TPOT ms <input name="tpot_ms" type="number" step="any" value="{val(i.tpot_ms)}"></label><br>
  <label>GPU classes <input name="gpu_class" value="{val(i.gpu_class)}"></label>
  <label>weights <input name="quant" value="{
        val(i.quant)
    }" placeholder="awq,fp8 (default: guide's order)" size="22"></label>
  <label>engine <input name="engine" value="{
        val(i.engine)
    }" size="10" title="vllm, sglang, tensorrt-llm, llamacpp or auto"></label>
  <label>max GPUs <input name="max_gpus" type="number" min="1" max="16" value="{val(i.max_gpus)}"></label>
  <label>budget $/h <input name="max_cost_per_hour" type="number" step="any" value="{
        val(i.max_cost_per_hour)
    }"></label>
  <button type="submit">Plan</button> <span id="status" class="muted"></span>
</form>
<form id="upload" method="post" action="/upload" hidden>{hidden}</form>
<p class="muted">The page re-plans as you type; its address carries the inputs, so the link shares this plan{
        " — except an uploaded config.json, which is planned once and not kept" if uploaded else ""
    }.</p>"""
    body = f'<p class="error">{escape(error)}</p>' if error else plan_sections(result) if result else ""
    return document("gpusizer plan", f"<h1>gpusizer — plan</h1>{form}{body}{LIVE_SCRIPT}")
