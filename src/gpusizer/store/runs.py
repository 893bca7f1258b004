"""SQLite store of benchmark runs, every request they made and the server metrics scraped
while they ran.

Nothing measured is lost: the database runs in WAL mode, a run's row is written when it
starts, and each request is committed as it completes, so a Ctrl-C or a crash loses only the
requests in flight. A run ends in one final state: ``complete``, ``interrupted``, ``failed``
or ``abandoned`` (``run_states`` says how a dead run is recognised).

Older files are migrated in place by adding columns and tables, never by rewriting rows
(``schema``); a file written by a newer gpusizer, a SQLite file that is not gpusizer's, or one
that is not a database at all is refused with one line and left as it is. ``read_only=True``
opens the file with SQLite's read-only mode, so looking at runs can never change it.

What each request and metrics sample holds is in ``records``; every name those modules
define for other packages is importable from here too.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gpusizer.store.records import (
    METRICS_COLS,
    REQUEST_COLS,
    MetricsSample,
    RequestRecord,
    marks,
    metrics_values,
    record_dict,
    request_from_row,
    request_values,
)
from gpusizer.store.run_states import (
    FINAL_STATUSES,
    LOCAL_STALE_FACTOR,
    STALE_AFTER_S,
    RunStatus,
    pid_alive,
    stale_runs,
)
from gpusizer.store.schema import SCHEMA_VERSION, open_db

__all__ = [
    "FINAL_STATUSES",
    "LOCAL_STALE_FACTOR",
    "SCHEMA_VERSION",
    "STALE_AFTER_S",
    "MetricsSample",
    "RequestRecord",
    "RunStatus",
    "RunStore",
    "pid_alive",
    "record_dict",
]

BUSY_TIMEOUT_S = 10.0  # how long a write waits for another process's write lock


class RunStore:
    """Open (or create, or migrate) the database at ``path``; ``:memory:`` for tests.

    ``read_only=True`` opens it with SQLite's read-only mode: nothing is created, migrated or
    switched to WAL, and a file that is not gpusizer's is refused before anything is read
    from it; ``needs_migration`` then says whether it must be reopened writable first. Runs
    found abandoned are then marked in memory only (``mark_final``)."""

    def __init__(
        self, path: str | Path, *, read_only: bool = False, busy_timeout_s: float = BUSY_TIMEOUT_S
    ) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._overlay: dict[int, dict[str, Any]] = {}  # final states decided but not written (read-only)
        self.conn: sqlite3.Connection | None = None
        # read-only: whether the file lacks columns this version reads (see ``schema.open_db``)
        self.conn, self.needs_migration = open_db(path, read_only=read_only, busy_timeout_s=busy_timeout_s)

    @property
    def db(self) -> sqlite3.Connection:
        assert self.conn is not None
        return self.conn

    # --- writing, one commit per event -------------------------------------------------

    def start_run(
        self, *, started_at: str, url: str, model: str, api: str, load: str, settings: Mapping[str, Any]
    ) -> int:
        """A new ``running`` run, owned by this process on this host."""
        with self.db:
            cur = self.db.execute(
                "INSERT INTO runs (started_at, url, model, api, load, settings, summary, status, pid, host, "
                "heartbeat_at) VALUES (?,?,?,?,?,?,NULL,'running',?,?,?)",
                (
                    started_at,
                    url,
                    model,
                    api,
                    load,
                    json.dumps(dict(settings)),
                    os.getpid(),
                    socket.gethostname(),
                    time.time(),
                ),
            )
        return int(cur.lastrowid or 0)

    def add_request(self, run_id: int, r: RequestRecord) -> None:
        """Commit one request, and renew the run's heartbeat with it."""
        with self.db:
            self.db.execute(
                f"INSERT INTO requests (run_id, {REQUEST_COLS}) VALUES ({marks(REQUEST_COLS)})",
                request_values(run_id, r),
            )
            self.db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), run_id))

    def heartbeat(self, run_id: int) -> None:
        """The run's process is alive (called between requests, so a slow point is not
        mistaken for a dead one)."""
        with self.db:
            self.db.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), run_id))

    def add_metrics(self, run_id: int, m: MetricsSample) -> None:
        with self.db:
            self.db.execute(
                f"INSERT INTO server_metrics (run_id, {METRICS_COLS}) VALUES ({marks(METRICS_COLS)})",
                metrics_values(run_id, m),
            )

    def finish_run(
        self, run_id: int, *, summary: Mapping[str, Any], status: RunStatus, finished_at: str
    ) -> None:
        with self.db:
            self.db.execute(
                "UPDATE runs SET summary = ?, status = ?, finished_at = ? WHERE id = ?",
                (json.dumps(dict(summary)), status, finished_at, run_id),
            )

    def mark_final(
        self, run_id: int, *, summary: Mapping[str, Any] | None, status: RunStatus, finished_at: str
    ) -> bool:
        """Close a run left ``running``, unless it finished meanwhile; True when this call
        closed it. ``summary`` None: to be computed by the next reader (``unsummarized``).
        Read-only: the state is kept in memory for this reader."""
        text = None if summary is None else json.dumps(dict(summary))
        if self.read_only:
            self._overlay[run_id] = {"summary": text, "status": status, "finished_at": finished_at}
            return True
        with self.db:
            cur = self.db.execute(
                "UPDATE runs SET summary = ?, status = ?, finished_at = ? WHERE id = ? AND status = 'running'",
                (text, status, finished_at, run_id),
            )
        return cur.rowcount == 1

    def unsummarized(self) -> list[int]:
        """Runs in a final state without a summary (closed from a signal handler)."""
        rows = self.db.execute("SELECT id FROM runs WHERE status != 'running' AND summary IS NULL").fetchall()
        return [int(r[0]) for r in rows if int(r[0]) not in self._overlay]

    def update_summary(self, run_id: int, summary: Mapping[str, Any]) -> None:
        if self.read_only:
            self._overlay.setdefault(run_id, {})["summary"] = json.dumps(dict(summary))
            return
        with self.db:
            self.db.execute("UPDATE runs SET summary = ? WHERE id = ?", (json.dumps(dict(summary)), run_id))

    def add_run(
        self,
        *,
        started_at: str,
        url: str,
        model: str,
        api: str,
        load: str,
        settings: Mapping[str, Any],
        records: Iterable[RequestRecord],
        summary: Mapping[str, Any],
    ) -> int:
        """A whole run at once (imports, tests)."""
        run_id = self.start_run(
            started_at=started_at, url=url, model=model, api=api, load=load, settings=settings
        )
        for r in records:
            self.add_request(run_id, r)
        self.finish_run(run_id, summary=summary, status="complete", finished_at=started_at)
        return run_id

    # --- reading ---------------------------------------------------------------------

    def requests(self, run_id: int) -> list[RequestRecord]:
        rows = self.db.execute(
            f"SELECT {REQUEST_COLS} FROM requests WHERE run_id = ? ORDER BY idx", (run_id,)
        ).fetchall()
        return [request_from_row(r) for r in rows]

    def metrics(self, run_id: int) -> list[MetricsSample]:
        rows = self.db.execute(
            f"SELECT {METRICS_COLS} FROM server_metrics WHERE run_id = ? ORDER BY t_s",
            (run_id,),
        ).fetchall()
        return [MetricsSample(*r) for r in rows]

    _RUN_COLS = (
        "id",
        "started_at",
        "finished_at",
        "status",
        "url",
        "model",
        "api",
        "load",
        "settings",
        "summary",
    )

    def _row(self, r: tuple[Any, ...]) -> dict[str, Any]:
        run = dict(zip(self._RUN_COLS, r, strict=True))
        return {**run, **self._overlay.get(run["id"], {})}

    def runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute(f"SELECT {', '.join(self._RUN_COLS)} FROM runs ORDER BY id").fetchall()
        return [self._row(r) for r in rows]

    def run(self, run_id: int) -> dict[str, Any] | None:
        if not 0 < run_id < 2**63:  # ids are SQLite's positive 64-bit row ids
            return None
        row = self.db.execute(
            f"SELECT {', '.join(self._RUN_COLS)} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return self._row(row) if row else None

    def stale_runs(self, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S) -> list[int]:
        """The ``running`` runs nobody is running any more (``run_states.stale_runs``); those
        this reader already closed in memory are left out."""
        return stale_runs(self.db, decided=self._overlay, now=now, stale_after_s=stale_after_s)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
