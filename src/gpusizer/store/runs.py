"""SQLite store of benchmark runs, every request they made and the server metrics scraped
while they ran.

Nothing measured is lost: the database runs in WAL mode, a run's row is written when it
starts, and each request is committed as it completes, so a Ctrl-C or a crash loses only the
requests in flight. A run ends in one final state: ``complete``, ``interrupted`` (Ctrl-C or
SIGTERM), ``failed`` (the bench itself hit an error) or ``abandoned``: its process died
without saying (kill -9, a crash, power). To tell the last from a run still going, a run
stores the pid and host of the process writing it and a heartbeat (Unix time) that process
renews as requests complete; ``stale_runs`` finds the ``running`` runs whose process is gone
from this host, or whose heartbeat stopped ``STALE_AFTER_S`` ago (another host, a reused pid).

Older files are migrated in place by adding columns and tables, never by rewriting rows; a
file written by a newer gpusizer, a SQLite file that is not gpusizer's, or one that is not
a database at all is refused with one line and left as it is. ``read_only=True`` opens the
file with SQLite's read-only mode, so looking at runs can never change it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, astuple, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from gpusizer.errors import BadInputError

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

SCHEMA_VERSION = 4

RunStatus = Literal["running", "complete", "interrupted", "failed", "abandoned"]
FINAL_STATUSES: tuple[RunStatus, ...] = ("complete", "interrupted", "failed", "abandoned")
STALE_AFTER_S = 300.0  # a running run whose heartbeat is older than this is abandoned
LOCAL_STALE_FACTOR = 12  # … or, when its process is still alive on this host, this many times older
BUSY_TIMEOUT_S = 10.0  # how long a write waits for another process's write lock

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

# Version 4: who writes a run and when it last showed life, so a dead run is recognised; and
# requests cut off by an interrupt, kept apart from failures.
_ADD_COLUMNS_V4 = (
    ("runs", "pid", "INTEGER"),
    ("runs", "host", "TEXT"),
    ("runs", "heartbeat_at", "REAL"),  # Unix time, seconds
    ("requests", "cancelled", "INTEGER NOT NULL DEFAULT 0"),
)
_ADD_COLUMNS = _ADD_COLUMNS_V2 + _ADD_COLUMNS_V3 + _ADD_COLUMNS_V4
_TABLES = ("meta", "runs", "requests", "server_metrics")

# What makes a SQLite file gpusizer's: its meta table says so, or (a file from before the
# meta row) its runs table has the columns every version wrote.
_RUN_COLUMNS_V1 = {"id", "started_at", "url", "model", "api", "load", "settings", "summary"}

_REQUEST_COLS = (
    "idx, warmup, start_s, first_token_s, end_s, prompt_tokens, output_tokens, itl_s, error, first_answer_s, "
    "sent_s, server_prefill_s, server_tpot_s, cancelled"
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
    cancelled: bool = False  # cut off by an interrupt: neither a success nor a failure

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
        self.needs_migration = False  # read-only: the file lacks columns this version reads
        try:
            if read_only:
                uri = Path(path).absolute().as_uri() + "?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s)
            else:
                self.conn = sqlite3.connect(self.path, timeout=busy_timeout_s)
            self._check_ours()
            version = self._version()
            if version is not None and version > SCHEMA_VERSION:
                raise BadInputError("--db", f"{path} was written by a newer gpusizer (schema {version})")
            self.needs_migration = bool(self._missing_columns()) or (version or 0) < SCHEMA_VERSION
            if read_only:
                return  # the caller reopens it writable to migrate, or says why it cannot
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            if self.needs_migration or not set(_TABLES) <= self._tables():
                self._migrate()
                self.needs_migration = False
        except BadInputError:
            self._close_quietly()
            raise
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise BadInputError("--db", _why(path, exc)) from exc

    def _tables(self) -> set[str]:
        assert self.conn is not None
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _columns(self, table: str) -> set[str]:
        assert self.conn is not None
        return {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}

    def _check_ours(self) -> None:
        """Refuse a SQLite file that holds other tables than gpusizer's, before writing to it."""
        tables = self._tables()
        if not tables:
            if self.read_only:
                raise BadInputError("--db", f"{self.path} is empty: not a gpusizer runs file")
            return  # a new file
        if self._version() is not None or ("runs" in tables and self._columns("runs") >= _RUN_COLUMNS_V1):
            return
        shown = ", ".join(sorted(tables)[:4]) + (", …" if len(tables) > 4 else "")
        raise BadInputError(
            "--db",
            f"{self.path} is a SQLite database but not gpusizer's (its tables: {shown}); left untouched",
            "a gpusizer runs file, or a new path",
        )

    def _missing_columns(self) -> list[tuple[str, str, str]]:
        have = {t: self._columns(t) for t in {t for t, _, _ in _ADD_COLUMNS}}
        return [(table, col, decl) for table, col, decl in _ADD_COLUMNS if col not in have[table]]

    def _migrate(self) -> None:
        """Add what is missing, decided by the columns present rather than by the version
        alone, so a migration cut short is finished the next time the file is opened. The
        write lock is taken before looking: when two processes open a new or old file at
        once (a bench writing, a reader watching it), one migrates and the other then finds
        nothing left to do. A new file's tables are created in the same transaction, so
        another opener never sees half of them (and takes the file for someone else's)."""
        assert self.conn is not None
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self._check_ours()  # again, under the lock: another opener may have just created it
            for statement in (_SCHEMA_V1 + _TABLES_V2).split(";"):
                if statement.strip():
                    self.conn.execute(statement)
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
        assert self.conn is not None
        if "meta" not in self._tables():
            return None
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            return int(row[0]) if row else None
        except (sqlite3.DatabaseError, ValueError, TypeError):
            return None  # a table named meta that is not ours

    def _close_quietly(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()

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
                    int(r.cancelled),
                ),
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
                f"INSERT INTO server_metrics (run_id, {_METRICS_COLS}) VALUES ({_marks(_METRICS_COLS)})",
                (run_id, *astuple(m)),
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
                cancelled=bool(r[13]),
            )
            for r in rows
        ]

    def metrics(self, run_id: int) -> list[MetricsSample]:
        rows = self.db.execute(
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
        """The ``running`` runs nobody is running any more: their process is gone from this
        host, or their heartbeat (for runs from before it existed: their last stored
        activity) is older than ``stale_after_s``. A process still alive on this host gets
        ``LOCAL_STALE_FACTOR`` times longer (it may be busy predicting, or suspended with
        Ctrl-Z); past that its pid is taken for a reused one."""
        now = time.time() if now is None else now
        host = socket.gethostname()
        rows = self.db.execute(
            "SELECT id, pid, host, heartbeat_at, started_at FROM runs WHERE status = 'running'"
        ).fetchall()
        stale = []
        for run_id, pid, run_host, beat, started_at in rows:
            if run_id in self._overlay:
                continue
            local = pid is not None and run_host == host
            if local and not pid_alive(int(pid)):
                stale.append(run_id)
                continue
            last = beat if beat is not None else self._last_activity(run_id, started_at)
            limit = stale_after_s * (LOCAL_STALE_FACTOR if local else 1)
            if last is not None and now - last > limit:
                stale.append(run_id)
        return stale

    def _last_activity(self, run_id: int, started_at: str) -> float | None:
        """Unix time of a run's last stored request or sample (runs without a heartbeat)."""
        try:
            start = datetime.fromisoformat(started_at).timestamp()
        except (TypeError, ValueError):
            return None
        ends = self.db.execute(
            "SELECT MAX(COALESCE(end_s, start_s)) FROM requests WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        sampled = self.db.execute(
            "SELECT MAX(t_s) FROM server_metrics WHERE run_id = ?", (run_id,)
        ).fetchone()[0]
        return start + max(float(ends or 0.0), float(sampled or 0.0))

    def close(self) -> None:
        self._close_quietly()


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (a zombie, killed but not yet reaped by
    its parent, counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal check is all there is


def _why(path: str | Path, exc: sqlite3.DatabaseError) -> str:
    """One line for a file SQLite would not open or write."""
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return f"{path} is not a gpusizer database ({text})"
    if "readonly" in text or "read-only" in text:
        return f"{path} cannot be written ({text}); check its and its folder's permissions"
    if "unable to open" in text:
        return f"cannot open {path} ({text}); check that it is a file you may read and write"
    return f"{path}: {text}"


def record_dict(r: RequestRecord) -> dict[str, Any]:
    return asdict(r)
