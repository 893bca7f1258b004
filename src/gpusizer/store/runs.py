"""SQLite store of benchmark runs, every request they made and the server metrics scraped
while they ran.

Nothing measured is lost: the database runs in WAL mode, a run's row is written when it
starts, and each request is committed as it completes, so a Ctrl-C or a crash loses only the
requests in flight; the run is then marked ``interrupted`` and still reported. Older files
are migrated in place by adding columns and tables, never by rewriting rows; a file written
by a newer gpusizer, or one that is not a database, is refused with one line and left as it is.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import asdict, astuple, dataclass
from pathlib import Path
from typing import Any, Literal

from gpusizer.errors import BadInputError

__all__ = ["SCHEMA_VERSION", "MetricsSample", "RequestRecord", "RunStatus", "RunStore", "record_dict"]

SCHEMA_VERSION = 3

RunStatus = Literal["running", "complete", "interrupted"]

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    url TEXT NOT NULL,
    model TEXT NOT NULL,
    api TEXT NOT NULL,
    load TEXT NOT NULL,            -- "concurrency=4" | "rate=2.0"
    settings TEXT NOT NULL,        -- JSON of the bench settings
    summary TEXT                   -- JSON of the computed metrics
);
CREATE TABLE IF NOT EXISTS requests (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    idx INTEGER NOT NULL,
    warmup INTEGER NOT NULL,
    start_s REAL NOT NULL,         -- seconds since the run started
    first_token_s REAL,            -- NULL when no token arrived
    end_s REAL,
    prompt_tokens INTEGER,
    output_tokens INTEGER,
    itl_s TEXT,                    -- JSON list of inter-token gaps (s)
    error TEXT,
    PRIMARY KEY (run_id, idx)
);
"""

# Version 2: run status, time to the first *answer* token (reasoning models), scraped metrics.
_ADD_COLUMNS_V2 = (
    ("runs", "status", "TEXT NOT NULL DEFAULT 'complete'"),
    ("runs", "finished_at", "TEXT"),
    ("requests", "first_answer_s", "REAL"),
)
_TABLES_V2 = """
CREATE TABLE IF NOT EXISTS server_metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    t_s REAL NOT NULL,             -- seconds since the run started
    running REAL,
    waiting REAL,
    kv_usage REAL,                 -- 0..1
    preemptions REAL               -- the server's cumulative counter
);
"""

# Version 3: when each request's last byte was handed to the socket (TTFT is timed from it),
# and the server's own timings when it reports them (llama.cpp's ``timings``).
_ADD_COLUMNS_V3 = (
    ("requests", "sent_s", "REAL"),
    ("requests", "server_prefill_s", "REAL"),
    ("requests", "server_tpot_s", "REAL"),
    # the running totals of the server's TTFT and inter-token-latency histograms (vLLM, SGLang)
    ("server_metrics", "ttft_sum_s", "REAL"),
    ("server_metrics", "ttft_count", "REAL"),
    ("server_metrics", "itl_sum_s", "REAL"),
    ("server_metrics", "itl_count", "REAL"),
    ("server_metrics", "queue_sum_s", "REAL"),
    ("server_metrics", "queue_count", "REAL"),
)

_REQUEST_COLS = (
    "idx, warmup, start_s, first_token_s, end_s, prompt_tokens, output_tokens, itl_s, error, first_answer_s, "
    "sent_s, server_prefill_s, server_tpot_s"
)


@dataclass
class RequestRecord:
    idx: int
    warmup: bool
    start_s: float
    first_token_s: float | None
    end_s: float | None
    prompt_tokens: int | None
    output_tokens: int | None
    itl_s: list[float]
    error: str | None = None
    first_answer_s: float | None = None  # first non-reasoning token (DeepSeek-R1's reasoning_content)
    sent_s: float | None = None  # the request's last byte handed to the socket; None: not traced
    server_prefill_s: float | None = None  # the server's own prompt-processing time (llama.cpp)
    server_tpot_s: float | None = None  # the server's own time per output token (llama.cpp)

    @property
    def origin_s(self) -> float:
        """Where the server's latencies are timed from: the request on the wire when that was
        traced, else the moment the client took it up (older runs, other transports)."""
        return self.start_s if self.sent_s is None else self.sent_s

    @property
    def send_delay_s(self) -> float | None:
        """The client's own time before the request was on the wire: building it, waiting for
        a pooled connection, opening a new one."""
        return None if self.sent_s is None else self.sent_s - self.start_s


@dataclass(frozen=True)
class MetricsSample:
    t_s: float
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None
    preemptions: float | None = None
    ttft_sum_s: float | None = None
    ttft_count: float | None = None
    itl_sum_s: float | None = None
    itl_count: float | None = None
    queue_sum_s: float | None = None
    queue_count: float | None = None


_METRICS_COLS = (
    "t_s, running, waiting, kv_usage, preemptions, ttft_sum_s, ttft_count, itl_sum_s, itl_count, "
    "queue_sum_s, queue_count"
)


def _marks(cols: str) -> str:
    """Placeholders for ``run_id`` and each of ``cols``."""
    return ", ".join("?" * (1 + len(cols.split(","))))


class RunStore:
    """Open (or create, or migrate) the database at ``path``; ``:memory:`` for tests."""

    def __init__(self, path: str | Path) -> None:
        try:
            self.conn = sqlite3.connect(str(path))
            version = self._version()
            if version is not None and version > SCHEMA_VERSION:
                self._close_quietly()
                raise BadInputError("--db", f"{path} was written by a newer gpusizer (schema {version})")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA_V1 + _TABLES_V2)
            if self._missing_columns() or version is None or version < SCHEMA_VERSION:
                self._migrate()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise BadInputError("--db", f"{path} is not a gpusizer database ({exc})") from exc

    def _missing_columns(self) -> list[tuple[str, str, str]]:
        return [
            (table, col, decl)
            for table, col, decl in _ADD_COLUMNS_V2 + _ADD_COLUMNS_V3
            if col not in {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
        ]

    def _migrate(self) -> None:
        """Add what is missing, decided by the columns present rather than by the version
        alone, so a migration cut short is finished the next time the file is opened. The
        write lock is taken before looking: when two processes open a new or old file at
        once (a bench writing, a reader watching it), one migrates and the other then finds
        nothing left to do."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for table, col, decl in self._missing_columns():
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")
            self.conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _version(self) -> int | None:
        """The file's schema version, read without writing anything; None for a new file."""
        has_meta = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None

    def _close_quietly(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    # --- writing, one commit per event -------------------------------------------------

    def start_run(
        self, *, started_at: str, url: str, model: str, api: str, load: str, settings: Mapping[str, Any]
    ) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (started_at, url, model, api, load, settings, summary, status) "
                "VALUES (?,?,?,?,?,?,NULL,'running')",
                (started_at, url, model, api, load, json.dumps(dict(settings))),
            )
        return int(cur.lastrowid or 0)

    def add_request(self, run_id: int, r: RequestRecord) -> None:
        with self.conn:
            self.conn.execute(
                f"INSERT INTO requests (run_id, {_REQUEST_COLS}) VALUES ({_marks(_REQUEST_COLS)})",
                (
                    run_id,
                    r.idx,
                    int(r.warmup),
                    r.start_s,
                    r.first_token_s,
                    r.end_s,
                    r.prompt_tokens,
                    r.output_tokens,
                    json.dumps(r.itl_s),
                    r.error,
                    r.first_answer_s,
                    r.sent_s,
                    r.server_prefill_s,
                    r.server_tpot_s,
                ),
            )

    def add_metrics(self, run_id: int, m: MetricsSample) -> None:
        with self.conn:
            self.conn.execute(
                f"INSERT INTO server_metrics (run_id, {_METRICS_COLS}) VALUES ({_marks(_METRICS_COLS)})",
                (run_id, *astuple(m)),
            )

    def finish_run(
        self, run_id: int, *, summary: Mapping[str, Any], status: RunStatus, finished_at: str
    ) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET summary = ?, status = ?, finished_at = ? WHERE id = ?",
                (json.dumps(dict(summary)), status, finished_at, run_id),
            )

    def update_summary(self, run_id: int, summary: Mapping[str, Any]) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET summary = ? WHERE id = ?", (json.dumps(dict(summary)), run_id))

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
        rows = self.conn.execute(
            f"SELECT {_REQUEST_COLS} FROM requests WHERE run_id = ? ORDER BY idx", (run_id,)
        ).fetchall()
        return [
            RequestRecord(
                idx=r[0],
                warmup=bool(r[1]),
                start_s=r[2],
                first_token_s=r[3],
                end_s=r[4],
                prompt_tokens=r[5],
                output_tokens=r[6],
                itl_s=json.loads(r[7] or "[]"),
                error=r[8],
                first_answer_s=r[9],
                sent_s=r[10],
                server_prefill_s=r[11],
                server_tpot_s=r[12],
            )
            for r in rows
        ]

    def metrics(self, run_id: int) -> list[MetricsSample]:
        rows = self.conn.execute(
            f"SELECT {_METRICS_COLS} FROM server_metrics WHERE run_id = ? ORDER BY t_s",
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

    def runs(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(f"SELECT {', '.join(self._RUN_COLS)} FROM runs ORDER BY id").fetchall()
        return [dict(zip(self._RUN_COLS, r, strict=True)) for r in rows]

    def run(self, run_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT {', '.join(self._RUN_COLS)} FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        return dict(zip(self._RUN_COLS, row, strict=True)) if row else None

    def close(self) -> None:
        self.conn.close()


def record_dict(r: RequestRecord) -> dict[str, Any]:
    return asdict(r)
