"""Run a request's heavy work in a child process, within a time budget, and stop it when
the client leaves.

    endpoint ──await runner.run("plan", args, request)──▶ slot (at most ``max_jobs`` at once)
        │                                       zygote (web.zygote) forks a child: JOBS[name](args)
        │◀── reply ◀── job socket ◀──────────────┘
        ├── over ``budget_s``              → child killed, JobAbandoned(503)
        ├── client disconnected            → child killed, JobAbandoned(499)
        └── GpusizerError in the child     → JobRefused (422, same line, same field)

Why a process and not a thread: a thread cannot be stopped, so a simulation whose client
left would run on for minutes, and pure-Python work holds the GIL the event loop needs.
A killed child takes its memory with it; ``memory_bytes`` caps what one job may map.
A child is killed only while its job socket is open, so its pid cannot have been reused.
Without fork (Windows) a job runs in a thread instead: answered within the budget, but a
thread cannot be stopped, so it finishes its work unseen.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

import anyio
from starlette.requests import Request

from gpusizer.errors import GpusizerError
from gpusizer.web.zygote import decode_message, write_message

__all__ = ["CAN_FORK", "JobAbandoned", "JobRefused", "JobRunner"]

_PID = struct.Struct("<Q")
# The fork server needs fork() and fd passing (Linux, macOS, BSD); elsewhere jobs run in threads.
CAN_FORK = hasattr(os, "fork") and hasattr(socket, "send_fds")


class JobRefused(GpusizerError):
    """An expected error raised in the child (bad input, no feasible plan), carried back."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.field = field


class JobAbandoned(Exception):
    """The job was stopped: over its budget, all slots busy, the client gone, or the child died."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Zygote:
    """The fork server process and the control socket to it (started on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair()
        path = os.pathsep.join(os.path.abspath(p) for p in sys.path if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "gpusizer.web.zygote"],
            stdin=theirs.fileno(),
            cwd="/",  # a job never reads a relative path; nothing it does depends on our folder
            env={**os.environ, "PYTHONPATH": path},
        )
        theirs.close()
        self._control = ours
        return ours

    def fork(self, job: socket.socket) -> int:
        """A child for ``job`` (its end of a socketpair); its pid. Blocking: call in a thread."""
        with self._lock:
            for attempt in (1, 2):
                control = self._control or self._start()
                try:
                    socket.send_fds(control, [b"j"], [job.fileno()])
                    return int(_PID.unpack(_recv_exactly(control, _PID.size))[0])
                except (OSError, EOFError):
                    self.close()  # the zygote died: start a fresh one, once
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    def warm(self) -> None:
        with self._lock:
            if self._control is None:
                self._start()

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._proc is not None:  # it exits when it reads EOF on its control socket
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


class JobRunner:
    """Runs ``web.jobs.JOBS`` in child processes for one app; at most ``max_jobs`` at once."""

    def __init__(self, *, budget_s: float, max_jobs: int, memory_bytes: int | None) -> None:
        self.budget_s = budget_s
        self.max_jobs = max_jobs
        self.memory_bytes = memory_bytes
        self._zygote = _Zygote()
        self._slots = threading.BoundedSemaphore(max_jobs)  # TestClient runs a loop per request
        self._lock = threading.Lock()
        self._running: set[int] = set()

    def running_pids(self) -> list[int]:
        """Process ids of the children computing now (for tests and diagnostics)."""
        with self._lock:
            return sorted(self._running)

    def warm(self) -> None:
        """Start the fork server (it imports gpusizer once), so the first request is not slow."""
        self._zygote.warm()

    def close(self) -> None:
        """Stop the fork server (running children finish or are killed by their requests)."""
        self._zygote.close()

    async def _take_slot(self, deadline: float) -> None:
        while not self._slots.acquire(blocking=False):
            if time.monotonic() >= deadline:
                raise JobAbandoned(
                    503, f"the server is busy ({self.max_jobs} computations running); try again shortly"
                )
            await anyio.sleep(0.02)

    async def run(self, name: str, args: dict[str, Any], request: Request) -> Any:
        """``JOBS[name](args)`` in a child; its result, or JobRefused / JobAbandoned."""
        deadline = time.monotonic() + self.budget_s
        await self._take_slot(deadline)
        try:
            if CAN_FORK:
                reply = await self._run(name, args, request, deadline)
            else:
                reply = await self._run_in_thread(name, args, deadline)
        finally:
            self._slots.release()
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "error":
            raise JobRefused(reply[2], reply[1])
        raise JobAbandoned(int(reply[1]), str(reply[2]))

    async def _run_in_thread(self, name: str, args: dict[str, Any], deadline: float) -> tuple[Any, ...]:
        """Where there is no fork (Windows): a thread, abandoned — not stopped — at the budget."""
        from gpusizer.web.jobs import JOBS

        def job() -> tuple[Any, ...]:
            try:
                return ("ok", JOBS[name](args))
            except GpusizerError as exc:
                field = getattr(exc, "field", None) or getattr(exc, "kind", None)
                return ("error", str(field) if field else None, exc.message)

        with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
            return await anyio.to_thread.run_sync(job, abandon_on_cancel=True)
        return (
            "abandoned",
            503,
            f"the computation took longer than this server's {self.budget_s:g} s budget",
        )

    def _start(self, name: str, args: dict[str, Any], ours: socket.socket, theirs: socket.socket) -> int:
        pid = self._zygote.fork(theirs)
        theirs.close()
        write_message(ours, (name, args, self.memory_bytes))  # the child reads it first thing
        ours.shutdown(socket.SHUT_WR)
        with self._lock:
            self._running.add(pid)
        return pid

    async def _run(
        self, name: str, args: dict[str, Any], request: Request, deadline: float
    ) -> tuple[Any, ...]:
        ours, theirs = socket.socketpair()
        pid: int | None = None
        reply: bytes | None = None
        left = False
        try:
            try:
                pid = await anyio.to_thread.run_sync(self._start, name, args, ours, theirs)
            except (OSError, EOFError) as exc:
                raise JobAbandoned(503, f"the worker process could not be started ({exc})") from exc
            ours.setblocking(False)

            async def read_reply() -> None:
                nonlocal reply
                buf = bytearray()
                while True:
                    await anyio.wait_readable(ours)
                    try:
                        chunk = ours.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        reply = bytes(buf)  # EOF: the child finished (or died)
                        return
                    buf += chunk

            async def watch_client() -> None:
                nonlocal left
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                left = True

            with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
                async with anyio.create_task_group() as tg:

                    async def first(fn: Any) -> None:
                        await fn()
                        tg.cancel_scope.cancel()

                    tg.start_soon(first, read_reply)
                    tg.start_soon(first, watch_client)
        finally:
            if pid is not None:
                with self._lock:
                    self._running.discard(pid)
                if reply is None:  # no EOF yet: the child still holds its socket, so it is alive
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            ours.close()
            theirs.close()
        if reply is None:
            if left:
                raise JobAbandoned(499, "the client left; the computation was stopped")
            raise JobAbandoned(
                503,
                f"the computation took longer than this server's {self.budget_s:g} s budget and was "
                "stopped; narrow it (fewer GPU classes, max GPUs, users or requests)",
            )
        decoded = decode_message(reply)
        if not isinstance(decoded, tuple) or not decoded:
            return ("abandoned", 503, "the computation stopped without an answer")
        return decoded
