"""Record every published serving case and score factors out of sample.

``record_all`` reads the calibration rows, maps them (``cases.serving_case``) and simulates
each once (``simulate_case.run_case``); ``cv_tables`` turns cross-validated predictions into
the figures the README reports: median and p90 |error| and median bias of TPOT, TTFT and
output tokens/s, overall and by engine, GPU vendor, concurrency band, DeepSeek or not,
online (a concurrency cap) or burst (every request at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from gpusizer.calibrate.cases import ServingCase, Skipped, load_rows, serving_cases
from gpusizer.calibrate.fit import CaseData, Scored, summarize_errors
from gpusizer.calibrate.simulate_case import run_case
from gpusizer.catalog.load import model_catalogue
from gpusizer.errors import GpusizerError

__all__ = ["METRICS", "case_data", "cv_tables", "record_all", "record_cases", "series_of"]

METRICS = ("tpot", "ttft", "otps")


def series_of(case: ServingCase) -> str:
    """The case's measurement series: its source (a page, or a whole campaign) × engine × GPU.
    Leaving one series out keeps the source's other engines and GPUs in the fit — the same
    engine builds and harness — so it measures how the factors carry to a GPU or engine a
    publisher did not measure, where leaving the whole source out also measures how they
    carry to builds and tuning no other source ran."""
    return f"{case.source} | {case.engine} | {case.fit_kwargs.get('gpu', '?')}"


def case_data(case: ServingCase) -> CaseData:
    """Simulate ``case`` once (catalogue factors) and keep what the fit and the CV need."""
    run = run_case(case)
    m = case.measured
    return CaseData(
        case_id=case.case_id,
        group=(case.engine, case.vendor),
        source=case.source,
        family=case.family,
        band=case.band,
        deepseek=case.deepseek,
        online=case.users is not None,
        recording=run.recording,
        tpot_ms=m.tpot_ms,
        ttft_ms=m.ttft_ms,
        output_tps=m.output_tps,
        speculative=bool(case.fit_kwargs.get("spec_tokens")),
        ttft_fitted=case.ttft_fitted,
        fitted=case.fitted,
        current_release=case.current_release,
        moe=run.moe,
        series=series_of(case),
    )


def record_cases(
    cases: Iterable[ServingCase | Skipped], progress: Callable[[str], None] | None = None
) -> tuple[list[CaseData], list[Skipped]]:
    """Simulate every mappable case; the rest (and any gpusizer refuses) come back as skipped."""
    data: list[CaseData] = []
    skipped: list[Skipped] = []
    for case in cases:
        if isinstance(case, Skipped):
            skipped.append(case)
            continue
        try:
            data.append(case_data(case))
        except GpusizerError as exc:
            skipped.append(Skipped(case_id=case.case_id, reason=f"gpusizer refused it: {exc}"))
            continue
        if progress:
            progress(case.case_id)
    return data, skipped


def record_all(
    *paths: str | Path, progress: Callable[[str], None] | None = None
) -> tuple[list[CaseData], list[Skipped]]:
    """Every row of the ``serving_cases*.jsonl`` files, mapped and simulated."""
    known = {e.id for e in model_catalogue()}
    rows = [row for path in paths for row in load_rows(path)]
    return record_cases(serving_cases(rows, known), progress)


def cv_tables(scored: Sequence[Scored]) -> list[tuple[str, dict[str, dict[str, float] | None]]]:
    """(slice name, {metric: summary}) for the slices the README reports: every slice holds
    the runs on the engine releases the factors describe (cases.CURRENT_RELEASES), the last
    one the runs on older or unstated builds."""
    older = [s for s in scored if not s.case.current_release]
    scored = [s for s in scored if s.case.current_release]
    slices: list[tuple[str, Callable[[Scored], bool]]] = [
        ("all", lambda s: True),
        ("online (concurrency cap)", lambda s: s.case.online),
        ("burst (all requests at once)", lambda s: not s.case.online),
        ("DeepSeek", lambda s: s.case.deepseek),
        ("DeepSeek online", lambda s: s.case.deepseek and s.case.online),
        ("speculative (never fitted)", lambda s: s.case.speculative),
        ("throughput stalls (never fitted)", lambda s: not s.case.fitted),
    ]

    def where(attr: Callable[[Scored], str], value: str) -> Callable[[Scored], bool]:
        return lambda s: attr(s) == value

    for band in ("1–8", "16–64", "65–127", "≥128"):
        slices.append((f"concurrency {band}", where(lambda s: s.case.band, band)))
    for engine in sorted({s.case.group[0] for s in scored}):
        slices.append((f"engine {engine}", where(lambda s: s.case.group[0], engine)))
    for vendor in sorted({s.case.group[1] for s in scored}):
        slices.append((f"vendor {vendor}", where(lambda s: s.case.group[1], vendor)))
    out = []
    for name, keep in slices:
        chosen = [s for s in scored if keep(s)]
        if chosen:
            out.append((name, {m: summarize_errors(chosen, m) for m in METRICS}))
    if older:
        name = "older or unstated engine builds (never fitted)"
        out.append((name, {m: summarize_errors(older, m) for m in METRICS}))
    return out
