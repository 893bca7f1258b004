"""The run store keeps everything it is given; the SSE parser tolerates what servers send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpusizer.bench.sse import DONE, MALFORMED, SseDecoder
from gpusizer.errors import BadInputError
from gpusizer.store.runs import SCHEMA_VERSION, RequestRecord, RunStore


def test_store_round_trip_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    recs = [
        RequestRecord(
            idx=i,
            warmup=i == 0,
            start_s=i * 0.1,
            first_token_s=i * 0.1 + 0.05,
            end_s=i * 0.1 + 0.5,
            prompt_tokens=100,
            output_tokens=10,
            itl_s=[0.01] * 9,
        )
        for i in range(3)
    ]
    s = RunStore(db)
    run = s.add_run(
        started_at="2026-11-28T00:00:00+00:00",
        url="http://x",
        model="m",
        api="completions",
        load="concurrency=1",
        settings={"a": 1},
        records=recs,
        summary={"ok": True},
    )
    s.close()
    again = RunStore(db)  # reopening keeps what was stored
    assert again.requests(run) == recs
    assert again.runs()[0]["load"] == "concurrency=1"
    again.close()


def test_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("these are my notes, not a database" * 100)
    with pytest.raises(BadInputError, match="--db"):
        RunStore(bad)
    assert "my notes" in bad.read_text()  # and nothing the user stored was touched


_SSE_LINES = [
    ": keep-alive comment",
    "",
    'data: {"choices": [{"text": "a"}]}',
    "data: {not json",
    "event: x",
    'data:{"choices": [{"text": "b"}]}',
    "data: [DONE]",
    'data: {"after": 1}',
]


def test_sse_decoder_skips_comments_and_flags_garbage() -> None:
    d = SseDecoder()
    events = d.feed("\n".join(_SSE_LINES).encode())
    events += d.close()  # the last line had no newline: it still counts
    assert events[0] == {"choices": [{"text": "a"}]}
    assert events[1] is MALFORMED  # reported, so the client can record the protocol error
    assert events[2] == {"choices": [{"text": "b"}]}
    assert events[3] is DONE
    assert events[4] == {"after": 1}  # the client stops at DONE; the decoder does not judge


@given(
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_sse_decoder_events_do_not_depend_on_how_the_bytes_were_chunked(
    cuts: list[int], newline: str
) -> None:
    raw = (newline.join(_SSE_LINES) + newline).encode()
    whole = SseDecoder().feed(raw)
    d = SseDecoder()
    pieces, last = [], 0
    for c in sorted(min(c, len(raw)) for c in cuts):
        pieces.append(raw[last:c])
        last = c
    pieces.append(raw[last:])
    split = [e for piece in pieces for e in d.feed(piece)] + d.close()
    assert len(whole) == 5
    assert [e if isinstance(e, dict) else id(e) for e in split] == [
        e if isinstance(e, dict) else id(e) for e in whole
    ]


_V1_ROW = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta VALUES ('schema_version', '1');"
    "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, url TEXT NOT NULL,"
    " model TEXT NOT NULL, api TEXT NOT NULL, load TEXT NOT NULL, settings TEXT NOT NULL, summary TEXT);"
    "CREATE TABLE requests (run_id INTEGER NOT NULL, idx INTEGER NOT NULL, warmup INTEGER NOT NULL,"
    " start_s REAL NOT NULL, first_token_s REAL, end_s REAL, prompt_tokens INTEGER, output_tokens INTEGER,"
    " itl_s TEXT, error TEXT, PRIMARY KEY (run_id, idx));"
    "INSERT INTO runs VALUES (1, '2026-01-01T00:00:00+00:00', 'http://old', 'm', 'chat', 'rate=1', '{}', '{\"x\": 1}');"
    "INSERT INTO requests VALUES (1, 0, 0, 0.0, 0.1, 0.5, 10, 5, '[0.1]', NULL);"
)


def test_a_version_1_file_is_migrated_in_place_with_its_runs(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as c:
        c.executescript(_V1_ROW)
    s = RunStore(db)
    (run,) = s.runs()
    assert run["url"] == "http://old" and run["status"] == "complete"
    (req,) = s.requests(1)
    assert req.first_token_s == 0.1 and req.first_answer_s is None and req.itl_s == [0.1]
    assert req.sent_s is None and req.origin_s == req.start_s  # old rows: timed from the start, as before
    new = s.start_run(started_at="t", url="http://new", model="m", api="chat", load="rate=2", settings={})
    s.close()
    again = RunStore(db)  # opening the migrated file again changes nothing
    assert [r["url"] for r in again.runs()] == ["http://old", "http://new"]
    assert again.run(new) is not None and again.run(new)["status"] == "running"  # type: ignore[index]
    again.close()


def test_a_version_2_file_gains_the_send_time_and_keeps_its_rows(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "v2.sqlite"
    with sqlite3.connect(db) as c:
        c.executescript(
            _V1_ROW.replace("'schema_version', '1'", "'schema_version', '2'")
            + "ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'complete';"
            "ALTER TABLE runs ADD COLUMN finished_at TEXT;"
            "ALTER TABLE requests ADD COLUMN first_answer_s REAL;"
            "CREATE TABLE server_metrics (run_id INTEGER NOT NULL, t_s REAL NOT NULL, running REAL,"
            " waiting REAL, kv_usage REAL, preemptions REAL);"
            "INSERT INTO server_metrics VALUES (1, 0.5, 3, 0, 0.2, 0);"
        )
    s = RunStore(db)
    (req,) = s.requests(1)
    assert (req.start_s, req.first_token_s, req.end_s, req.sent_s) == (0.0, 0.1, 0.5, None)
    assert len(s.metrics(1)) == 1
    s.add_request(1, RequestRecord(1, False, 1.0, 1.2, 1.5, 10, 5, [0.1], sent_s=1.05))
    s.close()
    again = RunStore(db)
    assert again.requests(1)[1].sent_s == 1.05 and again.requests(1)[1].origin_s == 1.05
    assert again.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    again.close()


def test_requests_are_durable_one_by_one(tmp_path: Path) -> None:
    # A second connection (another process after a crash) sees each request as soon as it is added.
    db = tmp_path / "r.sqlite"
    w = RunStore(db)
    run = w.start_run(started_at="t", url="http://x", model="m", api="completions", load="c=1", settings={})
    w.add_request(
        run,
        RequestRecord(
            idx=0,
            warmup=False,
            start_s=0,
            first_token_s=0.1,
            end_s=0.2,
            prompt_tokens=3,
            output_tokens=2,
            itl_s=[0.1],
        ),
    )
    reader = RunStore(db)
    assert len(reader.requests(run)) == 1 and reader.run(run)["status"] == "running"  # type: ignore[index]
    reader.close()
    w.close()


def test_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "future.sqlite"
    with sqlite3.connect(db) as c:
        c.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '99');"
        )
    with pytest.raises(BadInputError, match="newer gpusizer"):
        RunStore(db)
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT value FROM meta").fetchone() == ("99",)


def test_a_newer_schema_file_is_not_modified(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "future2.sqlite"
    with sqlite3.connect(db) as c:
        c.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION + 1}');"
        )
    before = db.read_bytes()
    with pytest.raises(BadInputError, match="--db"):
        RunStore(db)
    assert db.read_bytes() == before


@pytest.mark.parametrize("start", ["new", "version 1"])
def test_many_openers_at_once_migrate_once(tmp_path: Path, start: str) -> None:
    # A bench process creating the file while `runs` or a test polls it: each opener has its
    # own connection, as separate processes do, and they all start together.
    import sqlite3
    import threading

    db = tmp_path / "shared.sqlite"
    if start == "version 1":
        with sqlite3.connect(db) as c:
            c.executescript(_V1_ROW)
    gate = threading.Barrier(8)
    errors: list[BaseException] = []

    def open_it() -> None:
        gate.wait()
        try:
            RunStore(db).close()
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = RunStore(db)
    assert store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    if start == "version 1":
        assert [r.first_token_s for r in store.requests(1)] == [0.1]  # the old run survived
    store.close()


@pytest.mark.parametrize("interrupt_after", ["BEGIN IMMEDIATE", "CREATE TABLE", "COMMIT"])
def test_ctrl_c_while_creating_the_tables_is_a_ctrl_c(tmp_path: Path, interrupt_after: str) -> None:
    # A signal is handled between bytecodes, so it can land after any statement of the
    # migration, COMMIT included (CI once turned that case into "cannot rollback" and exit 2).
    import sqlite3

    from gpusizer.store import schema

    class Interrupted(sqlite3.Connection):
        fired = False

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            cur = super().execute(sql, *args)
            if not Interrupted.fired and sql.strip().startswith(interrupt_after):
                Interrupted.fired = True
                raise KeyboardInterrupt
            return cur

    conn = sqlite3.connect(tmp_path / "runs.sqlite", factory=Interrupted)
    with pytest.raises(KeyboardInterrupt):
        schema._migrate(conn, str(tmp_path / "runs.sqlite"))
    assert Interrupted.fired and not conn.in_transaction
    conn.close()
    store = RunStore(tmp_path / "runs.sqlite")  # the next bench finds a usable file either way
    assert store.runs() == []
    store.close()
