"""The run store keeps everything it is given; the SSE parser tolerates what servers send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gpusizer.bench.sse import DONE, parse_sse_lines
from gpusizer.errors import BadInputError
from gpusizer.store.runs import RequestRecord, RunStore


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


def test_sse_parser_skips_comments_and_garbage() -> None:
    lines = [
        ": keep-alive",
        "",
        'data: {"choices": [{"text": "a"}]}',
        "data: {not json",
        "event: x",
        'data: {"choices": [{"text": "b"}]}',
        "data: [DONE]",
        'data: {"after": 1}',
    ]

    async def feed() -> AsyncIterator[str]:
        for line in lines:
            yield line

    async def collect() -> list[object]:
        return [e async for e in parse_sse_lines(feed())]

    events = asyncio.run(collect())
    assert events[:2] == [{"choices": [{"text": "a"}]}, {"choices": [{"text": "b"}]}]
    assert events[-1] is DONE and len(events) == 3
