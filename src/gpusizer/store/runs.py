"""SQLite store of benchmark runs and every request they made. Writes are append-only and
committed per run, so nothing measured is lost; the schema carries a version for migrations."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpusizer.errors import BadInputError

__all__ = ["SCHEMA_VERSION", "RequestRecord", "RunStore"]

SCHEMA_VERSION = 1

_SCHEMA = """
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


class RunStore:
    """Open (or create) the database at ``path``; ``:memory:`` for tests."""

    def __init__(self, path: str | Path) -> None:
        try:
            self.conn = sqlite3.connect(str(path))
            self.conn.executescript(_SCHEMA)
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise BadInputError("--db", f"{path} was written by a newer gpusizer (schema {row[0]})")
            self.conn.commit()
        except sqlite3.DatabaseError as exc:
            raise BadInputError("--db", f"{path} is not a gpusizer database ({exc})") from exc

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
        with self.conn:  # one transaction: the run and all its requests, or nothing
            cur = self.conn.execute(
                "INSERT INTO runs (started_at, url, model, api, load, settings, summary) VALUES (?,?,?,?,?,?,?)",
                (started_at, url, model, api, load, json.dumps(dict(settings)), json.dumps(dict(summary))),
            )
            run_id = int(cur.lastrowid or 0)
            self.conn.executemany(
                "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
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
                    )
                    for r in records
                ],
            )
        return run_id

    def requests(self, run_id: int) -> list[RequestRecord]:
        rows = self.conn.execute(
            "SELECT idx, warmup, start_s, first_token_s, end_s, prompt_tokens, output_tokens, itl_s, error "
            "FROM requests WHERE run_id = ? ORDER BY idx",
            (run_id,),
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
            )
            for r in rows
        ]

    def runs(self) -> list[dict[str, Any]]:
        cols = ("id", "started_at", "url", "model", "api", "load", "settings", "summary")
        rows = self.conn.execute(f"SELECT {', '.join(cols)} FROM runs ORDER BY id").fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def close(self) -> None:
        self.conn.close()


def record_dict(r: RequestRecord) -> dict[str, Any]:
    return asdict(r)
