"""``gpusizer runs`` lists and shows stored bench runs (``--json``/``--csv`` export);
``gpusizer compare`` puts a stored run beside gpusizer's prediction for the same load."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gpusizer.bench.lifecycle import open_runs, summarize
from gpusizer.cli.bench import DEFAULT_DB, predict_point
from gpusizer.cli.common import console, guarded
from gpusizer.cli.options import PlainJsonOpt, whole
from gpusizer.cli.runs_view import compare_table, points_table, server_clock_table
from gpusizer.errors import BadInputError
from gpusizer.report.bench import compare_rows
from gpusizer.report.layout import fold_columns
from gpusizer.store.runs import RunStore

__all__ = ["compare_command", "runs_command"]

DbOption = Annotated[str | None, typer.Option(help=f"SQLite file of bench runs (default {DEFAULT_DB})")]


def _open(db: str | None) -> tuple[RunStore, Path]:
    """The runs file opened read-only; a file that is not gpusizer's is refused untouched,
    and runs whose bench died are closed as abandoned (see ``bench.lifecycle``)."""
    path = Path(db) if db else DEFAULT_DB
    return open_runs(path, write=False), path


def _point(run: dict[str, Any], store: RunStore | None = None) -> dict[str, Any]:
    """A stored run as a load point: its summary, or, for a run still going (no summary
    yet), what its stored requests say so far."""
    try:
        summary = json.loads(run["summary"]) if run["summary"] else None
    except ValueError:
        summary = None
    if not isinstance(summary, dict) or "completed" not in summary:
        summary = {**(summary or {}), **(summarize(store, run["id"]) if store is not None else {})}
    return {"run_id": run["id"], "load": run["load"], "status": run["status"], **summary}


def _get(store: RunStore, run_id: int) -> dict[str, Any]:
    run = store.run(run_id)
    if run is None:
        ids = [r["id"] for r in store.runs()]
        have = f"stored runs: {ids[0]}..{ids[-1]}" if ids else "the file has no runs"
        raise BadInputError("RUN", f"no run {run_id}", have)
    return run


_STATUS_NOTES = {
    "running": "still running: the figures are those of the {n} requests stored so far",
    "interrupted": "interrupted: the figures cover the {n} requests stored; those cut off are 'cancelled'",
    "abandoned": "abandoned: the bench process stopped without closing the run (killed, crashed); "
    "the figures cover the {n} requests it stored",
    "failed": "failed: the bench stopped on an error; the figures cover the {n} requests it stored",
}

_REQUEST_FIELDS = (
    "idx",
    "warmup",
    "start_s",
    "send_s",
    "ttft_s",
    "answer_s",
    "e2e_s",
    "prompt_tokens",
    "output_tokens",
)


def _request_rows(store: RunStore, run_id: int) -> list[dict[str, Any]]:
    rows = []
    for r in store.requests(run_id):
        rows.append(
            {
                "idx": r.idx,
                "warmup": r.warmup,
                "start_s": round(r.start_s, 6),
                "send_s": None if r.send_delay_s is None else round(r.send_delay_s, 6),
                "ttft_s": None if r.first_token_s is None else round(r.first_token_s - r.origin_s, 6),
                "answer_s": None if r.first_answer_s is None else round(r.first_answer_s - r.origin_s, 6),
                "e2e_s": None if r.end_s is None else round(r.end_s - r.origin_s, 6),
                "prompt_tokens": r.prompt_tokens,
                "output_tokens": r.output_tokens,
                "error": r.error,
                "cancelled": r.cancelled,
            }
        )
    return rows


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> None:
    w = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)


@guarded
def runs_command(
    run: Annotated[
        int | None,
        typer.Argument(help="A run id: show it and its requests", parser=whole("RUN", 1, 2**63 - 1)),
    ] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV: one row per run, or per request of RUN")
    ] = False,
) -> None:
    """List stored bench runs, or show one with its requests and the server's metrics."""
    if as_json and as_csv:
        raise BadInputError("--json/--csv", "choose one export format")
    store, path = _open(db)
    try:
        if run is None:
            points = [
                {**_point(r, store), "started_at": r["started_at"], "url": r["url"], "model": r["model"]}
                for r in store.runs()
            ]
            _list(points, path, as_json=as_json, as_csv=as_csv)
            return
        row = _get(store, run)
        point = _point(row, store)
        requests = _request_rows(store, run)
        series = [s.__dict__ for s in store.metrics(run)]
    finally:
        store.close()
    _show(run, row, point, requests, series, as_json=as_json, as_csv=as_csv)


def _show(
    run: int,
    row: dict[str, Any],
    point: dict[str, Any],
    requests: list[dict[str, Any]],
    series: list[dict[str, Any]],
    *,
    as_json: bool,
    as_csv: bool,
) -> None:
    """One stored run: its requests as CSV, the whole run as JSON, or its tables and notes."""
    if as_csv:
        _csv(requests, [*_REQUEST_FIELDS, "error", "cancelled"])
        return
    if as_json:
        settings = json.loads(row["settings"])
        doc = {
            **{
                k: row[k]
                for k in ("id", "started_at", "finished_at", "status", "url", "model", "api", "load")
            }
        }
        typer.echo(
            json.dumps(
                {
                    **doc,
                    "settings": settings,
                    "summary": point,
                    "requests": requests,
                    "server_metrics": series,
                },
                indent=2,
            )
        )
        return
    console.print(
        points_table(
            [point], title=f"run {run}: {row['model']} at {row['url']} ({row['status']}, {row['started_at']})"
        )
    )
    note = _STATUS_NOTES.get(str(row["status"]))
    if note:
        console.print(f"[yellow]{note.format(n=len(requests))}[/]", highlight=False)
    clock = server_clock_table([point])
    if clock is not None:
        console.print(clock)
    _server_metrics(point.get("server") or {})
    if point.get("failures"):
        console.print(f"failures: {point['failures']}", highlight=False)
    if "predicted" in point:
        console.print(compare_table([point]))
    console.print(f"[dim]{len(requests)} requests stored; --csv exports them[/]")


def _server_metrics(srv: dict[str, Any]) -> None:
    """One line of what the server's /metrics said during the run, when it was scraped."""
    if not srv.get("samples"):
        return

    def shown(v: Any, fmt: str = ",.0f") -> str:
        return "not exported" if v is None else format(v, fmt)

    console.print(
        f"server metrics ({srv['samples']} samples): max running {shown(srv['max_running'])}, max waiting "
        f"{shown(srv['max_waiting'])}, max KV use {shown(srv['max_kv_usage'], '.0%')}, preemptions "
        f"{shown(srv['preemptions'])}",
        highlight=False,
    )


def _list(points: list[dict[str, Any]], path: Path, *, as_json: bool, as_csv: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"db": str(path), "runs": points}, indent=2))
        return
    flat = [
        {
            "id": p["run_id"],
            "started_at": p["started_at"],
            "status": p["status"],
            "model": p["model"],
            "url": p["url"],
            "load": p["load"],
            "completed": p.get("completed"),
            "failed": p.get("failed"),
            "ttft_p50_ms": (p.get("ttft_ms") or {}).get("p50"),
            "tpot_p50_ms": (p.get("tpot_ms") or {}).get("p50"),
            "output_tokens_per_s": p.get("output_tokens_per_s"),
            "predicted": "predicted" in p,
        }
        for p in points
    ]
    if as_csv:
        _csv(flat, list(flat[0]) if flat else ["id"])
        return
    if not flat:
        console.print(f"{path} has no runs yet")
        return
    t = Table(title=f"Runs in {path}", title_justify="left")
    for col in (
        "id",
        "started",
        "status",
        "model",
        "load",
        "ok",
        "failed",
        "TTFT p50",
        "TPOT p50",
        "out tok/s",
        "predicted",
    ):
        left = col in ("started", "status", "model")
        t.add_column(col, justify="left" if left else "right", no_wrap=col in ("load", "model", "started"))
    for f in flat:
        t.add_row(
            str(f["id"]),
            f["started_at"][:16].replace("T", " "),
            f["status"],
            f["model"],
            f["load"],
            str(f["completed"] if f["completed"] is not None else "—"),
            str(f["failed"] if f["failed"] is not None else "—"),
            "—" if f["ttft_p50_ms"] is None else f"{f['ttft_p50_ms']:,.1f}",
            "—" if f["tpot_p50_ms"] is None else f"{f['tpot_p50_ms']:,.2f}",
            "—" if f["output_tokens_per_s"] is None else f"{f['output_tokens_per_s']:,.1f}",
            "yes" if f["predicted"] else "",
        )
    console.print(fold_columns(t, console.width))


@guarded
def compare_command(
    runs: Annotated[
        list[int] | None,
        typer.Argument(help="Run ids to compare with the prediction", parser=whole("RUN", 1, 2**63 - 1)),
    ] = None,
    db: DbOption = None,
    predict_model: Annotated[
        str | None,
        typer.Option(help="Model to predict (catalogue name, config.json or .gguf); needed unless stored"),
    ] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="GPU the server ran on")] = None,
    gpus: Annotated[
        int | None, typer.Option(help="GPUs the server used", parser=whole("--gpus", 1, 4096))
    ] = None,
    engine: Annotated[str | None, typer.Option(help="Engine behind the URL")] = None,
    as_json: PlainJsonOpt = False,
) -> None:
    """Measured TTFT/TPOT/throughput beside gpusizer's prediction for the same load, with the error.
    A new prediction is stored with the run, so `calibrate` can learn from it."""
    if not runs:
        raise BadInputError("RUN", "give the id of at least one stored run", "`gpusizer runs` lists them")
    store, path = _open(db)
    if predict_model and store.read_only:  # the new prediction is stored with the run
        store.close()
        store = open_runs(path, write=True)
    points = []
    try:
        for run_id in runs:
            row = _get(store, run_id)
            point = _point(row, store)
            if not point.get("completed"):
                raise BadInputError("RUN", f"run {run_id} has no completed request to compare")
            if predict_model:
                st = json.loads(row["settings"])
                point["predicted"] = predict_point(
                    predict_model,
                    gpu,
                    gpus,
                    engine,
                    concurrency=st.get("concurrency"),
                    rate=st.get("rate"),
                    burstiness=float(st.get("burstiness") or 1.0),  # runs before it was an option: Poisson
                    input_tokens=point.get("mean_prompt_tokens") or st.get("input_len") or 1,
                    output_tokens=int(st.get("output_len") or 1),
                    requests=int(point["completed"]),
                )
                summary = {k: v for k, v in point.items() if k not in ("run_id", "load", "status")}
                store.update_summary(run_id, summary)
            elif "predicted" not in point:
                raise BadInputError(
                    "--predict-model",
                    f"run {run_id} has no stored prediction",
                    "give --predict-model and --gpu",
                )
            points.append(point)
    finally:
        store.close()
    if as_json:
        typer.echo(
            json.dumps(
                {"comparisons": [{"run_id": p["run_id"], "rows": compare_rows(p)} for p in points]}, indent=2
            )
        )
        return
    console.print(compare_table(points))
