"""The web app's fork server: ``python -m gpusizer.web.zygote``, started by ``web.worker``.

    server ──(socket on fd 0: one byte + a job socket, SCM_RIGHTS)──▶ zygote
    zygote: imported gpusizer.web.jobs once; forks a child per job, answers its pid
    child:  reads (name, args) from the job socket, runs JOBS[name](args), writes the reply, exits

It imports the jobs (numpy, the catalogue code) once, so a job starts in milliseconds, and
it is single-threaded where it forks (the server, with its event loop and thread pool, never
forks). Unlike ``multiprocessing``'s forkserver it never re-imports the program's main module
in a child. Children are reaped automatically (SIGCHLD ignored); the zygote exits when the
server closes its end of the socket.

Wire format on a job socket, both ways: an 8-byte little-endian length, then a pickle. Only
the server and its own children speak it (a socketpair; no address anyone else can reach).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import struct
from typing import Any

from gpusizer.errors import GpusizerError

__all__ = ["decode_message", "read_message", "write_message"]

_LENGTH = struct.Struct("<Q")


def write_message(sock: socket.socket, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LENGTH.pack(len(data)) + data)


def decode_message(raw: bytes) -> Any | None:
    """The message ``raw`` holds whole (all a peer sent before closing), or None if cut short."""
    if len(raw) < _LENGTH.size or len(raw) != _LENGTH.size + _LENGTH.unpack(raw[: _LENGTH.size])[0]:
        return None
    return pickle.loads(raw[_LENGTH.size :])


def read_message(sock: socket.socket) -> Any:
    """One message; EOFError if the peer closed first."""
    head = _read_exactly(sock, _LENGTH.size)
    return pickle.loads(_read_exactly(sock, _LENGTH.unpack(head)[0]))


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _limit_memory(extra_bytes: int | None) -> None:
    """Cap this process's address space at what it maps now plus ``extra_bytes`` (Linux)."""
    if not extra_bytes:
        return
    with contextlib.suppress(OSError, ValueError, ImportError):
        import resource

        with open("/proc/self/statm", encoding="ascii") as fh:
            mapped = int(fh.read().split()[0]) * resource.getpagesize()
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = mapped + extra_bytes
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _run_job(sock: socket.socket) -> None:
    """In the child: one job in, one reply out — ('ok', result), ('error', field, line) for
    an expected error, or ('abandoned', status, line)."""
    from gpusizer.web.jobs import JOBS

    name, args, memory_bytes = read_message(sock)
    _limit_memory(memory_bytes)
    try:
        reply: tuple[Any, ...] = ("ok", JOBS[name](args))
    except GpusizerError as exc:
        field = getattr(exc, "field", None) or getattr(exc, "kind", None)
        reply = ("error", str(field) if field else None, exc.message)
    except MemoryError:
        reply = ("abandoned", 503, "the computation needed more memory than one request may use")
    write_message(sock, reply)


def main() -> None:
    from gpusizer.web.jobs import prime

    with contextlib.suppress(Exception):  # a catalogue error surfaces in the job that needs it
        prime()  # imported and loaded once, shared by every child

    control = socket.socket(fileno=0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished children
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which closes fd 0
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(control, 1, 1)
        except OSError:
            return
        if not fds:
            return  # the server closed its end
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                with socket.socket(fileno=fds[0]) as job:
                    _run_job(job)
            except (OSError, EOFError):
                code = 1  # the server hung up (client left, budget spent): nothing to say
            except BaseException:
                code = 1
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(fds[0])
        control.sendall(_LENGTH.pack(pid))


if __name__ == "__main__":
    main()
