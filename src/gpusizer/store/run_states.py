"""The states a stored run goes through, and how a run left ``running`` by a process that
died (kill -9, a crash, power) is told from one still going.

A run starts ``running`` and ends in one final state: ``complete``, ``interrupted`` (Ctrl-C
or SIGTERM), ``failed`` (the bench itself hit an error) or ``abandoned``: its process died
without saying. A run stores the pid and host of the process writing it and a heartbeat
(Unix time) that process renews as requests complete; ``stale_runs`` finds the ``running``
runs whose process is gone from this host, or whose heartbeat stopped ``STALE_AFTER_S`` ago
(another host, a reused pid).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Container
from datetime import datetime
from typing import Literal

__all__ = [
    "FINAL_STATUSES",
    "LOCAL_STALE_FACTOR",
    "STALE_AFTER_S",
    "RunStatus",
    "pid_alive",
    "stale_runs",
]

RunStatus = Literal["running", "complete", "interrupted", "failed", "abandoned"]
FINAL_STATUSES: tuple[RunStatus, ...] = ("complete", "interrupted", "failed", "abandoned")
STALE_AFTER_S = 300.0  # a running run whose heartbeat is older than this is abandoned
LOCAL_STALE_FACTOR = 12  # … or, when its process is still alive on this host, this many times older


def stale_runs(
    db: sqlite3.Connection, *, decided: Container[int], now: float | None, stale_after_s: float
) -> list[int]:
    """The ``running`` runs nobody is running any more: their process is gone from this
    host, or their heartbeat (for runs from before it existed: their last stored
    activity) is older than ``stale_after_s``. A process still alive on this host gets
    ``LOCAL_STALE_FACTOR`` times longer (it may be busy predicting, or suspended with
    Ctrl-Z); past that its pid is taken for a reused one. Runs in ``decided`` (a final
    state already decided by this reader) are left out."""
    now = time.time() if now is None else now
    host = socket.gethostname()
    rows = db.execute(
        "SELECT id, pid, host, heartbeat_at, started_at FROM runs WHERE status = 'running'"
    ).fetchall()
    stale = []
    for run_id, pid, run_host, beat, started_at in rows:
        if run_id in decided:
            continue
        local = pid is not None and run_host == host
        if local and not pid_alive(int(pid)):
            stale.append(run_id)
            continue
        last = beat if beat is not None else _last_activity(db, run_id, started_at)
        limit = stale_after_s * (LOCAL_STALE_FACTOR if local else 1)
        if last is not None and now - last > limit:
            stale.append(run_id)
    return stale


def _last_activity(db: sqlite3.Connection, run_id: int, started_at: str) -> float | None:
    """Unix time of a run's last stored request or sample (runs without a heartbeat)."""
    try:
        start = datetime.fromisoformat(started_at).timestamp()
    except (TypeError, ValueError):
        return None
    ends = db.execute(
        "SELECT MAX(COALESCE(end_s, start_s)) FROM requests WHERE run_id = ?", (run_id,)
    ).fetchone()[0]
    sampled = db.execute("SELECT MAX(t_s) FROM server_metrics WHERE run_id = ?", (run_id,)).fetchone()[0]
    return start + max(float(ends or 0.0), float(sampled or 0.0))


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
