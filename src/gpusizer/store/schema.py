"""The runs file's tables, how an older file is migrated in place, and how a file that is not
gpusizer's is recognised and refused before anything is written to it.

Older files are migrated by adding columns and tables, never by rewriting rows; a file
written by a newer gpusizer, a SQLite file that is not gpusizer's, or one that is not a
database at all is refused with one line and left as it is.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from gpusizer.errors import BadInputError

__all__ = ["SCHEMA_VERSION", "open_db"]

SCHEMA_VERSION = 4

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


def open_db(path: str | Path, *, read_only: bool, busy_timeout_s: float) -> tuple[sqlite3.Connection, bool]:
    """The connection to the runs file at ``path``, checked to be gpusizer's, and whether it
    still needs migrating (only ever True when ``read_only``: a writable file is migrated
    here, and a new one created). Every refusal is a one-line ``BadInputError``."""
    conn: sqlite3.Connection | None = None
    try:
        if read_only:
            uri = Path(path).absolute().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s)
        else:
            conn = sqlite3.connect(str(path), timeout=busy_timeout_s)
        _check_ours(conn, str(path), read_only)
        version = _version(conn)
        if version is not None and version > SCHEMA_VERSION:
            raise BadInputError("--db", f"{path} was written by a newer gpusizer (schema {version})")
        needs_migration = bool(_missing_columns(conn)) or (version or 0) < SCHEMA_VERSION
        if read_only:
            return conn, needs_migration  # the caller reopens it writable to migrate, or says why not
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        if needs_migration or not set(_TABLES) <= _tables(conn):
            _migrate(conn, str(path))
        return conn, False
    except BadInputError:
        _close_quietly(conn)
        raise
    except sqlite3.DatabaseError as exc:
        _close_quietly(conn)
        raise BadInputError("--db", _why(path, exc)) from exc


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _check_ours(conn: sqlite3.Connection, path: str, read_only: bool) -> None:
    """Refuse a SQLite file that holds other tables than gpusizer's, before writing to it."""
    tables = _tables(conn)
    if not tables:
        if read_only:
            raise BadInputError("--db", f"{path} is empty: not a gpusizer runs file")
        return  # a new file
    if _version(conn) is not None or ("runs" in tables and _columns(conn, "runs") >= _RUN_COLUMNS_V1):
        return
    shown = ", ".join(sorted(tables)[:4]) + (", …" if len(tables) > 4 else "")
    raise BadInputError(
        "--db",
        f"{path} is a SQLite database but not gpusizer's (its tables: {shown}); left untouched",
        "a gpusizer runs file, or a new path",
    )


def _missing_columns(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    have = {t: _columns(conn, t) for t in {t for t, _, _ in _ADD_COLUMNS}}
    return [(table, col, decl) for table, col, decl in _ADD_COLUMNS if col not in have[table]]


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Add what is missing, decided by the columns present rather than by the version
    alone, so a migration cut short is finished the next time the file is opened. The
    write lock is taken before looking: when two processes open a new or old file at
    once (a bench writing, a reader watching it), one migrates and the other then finds
    nothing left to do. A new file's tables are created in the same transaction, so
    another opener never sees half of them (and takes the file for someone else's)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        # again, under the lock: another opener may have just created it
        _check_ours(conn, path, read_only=False)
        for statement in (_SCHEMA_V1 + _TABLES_V2).split(";"):
            if statement.strip():
                conn.execute(statement)
        for table, col, decl in _missing_columns(conn):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        # A signal can land after COMMIT and before the block ends: roll back only what is
        # still open, so the interrupt (not a "no transaction" error) is what goes on up.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _version(conn: sqlite3.Connection) -> int | None:
    """The file's schema version, read without writing anything; None for a new file."""
    if "meta" not in _tables(conn):
        return None
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None
    except (sqlite3.DatabaseError, ValueError, TypeError):
        return None  # a table named meta that is not ours


def _close_quietly(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(sqlite3.Error):
            conn.close()


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
