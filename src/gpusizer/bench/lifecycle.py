"""A bench run's life in the store, from the shell's side: opening the runs file for a
command, summing a run up from what it stored, and closing the runs that died.

    bench ───────▶ open_runs(write=True) ─▶ start_run … add_request × n … finish_run(final state)
    runs/diagnose/compare ─▶ open_runs(write=False):
        read-only open ─▶ not gpusizer's? refuse, one line, file untouched
                       └▶ stale `running` runs, or an old schema?
                              writable ─▶ reopen read-write: migrate, close them as `abandoned`
                              read-only ─▶ close them in memory only, for this reader

A run's summary is always computed the same way (``summarize``): from the requests and
server samples the store holds, so an abandoned run reads like one that finished.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpusizer.bench.metrics import bench_metrics, server_summary
from gpusizer.errors import BadInputError
from gpusizer.store.runs import RunStatus, RunStore

__all__ = ["check_db_path", "close_run", "now_iso", "open_runs", "reap_abandoned", "summarize"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _slo_s(settings: dict[str, Any], key: str) -> float | None:
    v = settings.get(key)
    return float(v) / 1e3 if isinstance(v, int | float) and v > 0 else None


def summarize(store: RunStore, run_id: int, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's metrics from its stored requests and samples (SLOs from its settings)."""
    if settings is None:
        row = store.run(run_id)
        try:
            settings = json.loads(row["settings"]) if row else {}
        except (TypeError, ValueError):
            settings = {}
    if not isinstance(settings, dict):
        settings = {}
    m = bench_metrics(
        store.requests(run_id),
        slo_ttft_s=_slo_s(settings, "slo_ttft_ms"),
        slo_tpot_s=_slo_s(settings, "slo_tpot_ms"),
    )
    return {**m.as_dict(), "server": server_summary(store.metrics(run_id))}


def close_run(
    store: RunStore, run_id: int, status: RunStatus, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Give a run its final state and its summary; the summary is returned."""
    summary = {**summarize(store, run_id), **(extra or {})}
    store.finish_run(run_id, summary=summary, status=status, finished_at=now_iso())
    return summary


def reap_abandoned(store: RunStore) -> list[int]:
    """Close as ``abandoned`` the runs left ``running`` by a process that is gone, and sum up
    the runs closed without a summary (by a second Ctrl-C); the ids of the abandoned ones."""
    closed = []
    for run_id in store.stale_runs():
        summary = {
            **summarize(store, run_id),
            "abandoned": "the bench process stopped without closing the run",
        }
        if store.mark_final(run_id, summary=summary, status="abandoned", finished_at=now_iso()):
            closed.append(run_id)
    for run_id in store.unsummarized():
        store.update_summary(run_id, summarize(store, run_id))
    return closed


def check_db_path(path: Path, *, write: bool) -> None:
    """One line for a runs path SQLite cannot use: a folder, a pipe or device, a file this
    user may not read (or write, for ``bench``), a folder that does not let SQLite keep its
    journal beside the file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if not write:
            raise BadInputError("--db", f"{path} does not exist (run `gpusizer bench …` first)") from None
        st = None
    except OSError as exc:
        raise BadInputError("--db", f"cannot use {path} ({exc.strerror})") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise BadInputError("--db", f"{path} is a folder; give the runs file", "e.g. runs.sqlite")
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError("--db", f"{path} is not a regular file (a pipe or a device?)")
        if not os.access(path, os.R_OK):
            raise BadInputError("--db", f"{path} cannot be read (permission denied)")
        if write and not os.access(path, os.W_OK):
            raise BadInputError("--db", f"{path} cannot be written (permission denied)")
    folder = path.parent
    if write and not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(
            "--db", f"folder {folder} is not writable (SQLite keeps its journal beside the runs file)"
        )


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def open_runs(path: Path, *, write: bool) -> RunStore:
    """The runs file, opened for ``bench`` (``write``: created or migrated as needed) or for
    a reading command (read-only first; see the module docstring). Abandoned runs are closed
    either way. Every problem is one ``BadInputError`` line."""
    check_db_path(path, write=write)
    if write:
        store = RunStore(path)
    else:
        store = RunStore(path, read_only=True)
        stale = bool(store.stale_runs() or store.unsummarized()) if not store.needs_migration else True
        if stale and _writable(path):
            store.close()
            store = RunStore(path)
        elif store.needs_migration:
            store.close()
            raise BadInputError(
                "--db",
                f"{path} is from an older gpusizer and cannot be migrated here (it is read-only)",
                "open it once with write access, e.g. with `gpusizer runs`",
            )
    try:
        reap_abandoned(store)
    except BaseException:
        store.close()
        raise
    return store
