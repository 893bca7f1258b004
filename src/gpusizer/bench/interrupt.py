"""Ctrl-C (SIGINT) and SIGTERM, handled alike while a bench runs.

The first signal asks the run to stop: a load point in progress is woken at once (its event
loop is bound with ``bind``), cancels the requests in flight, records them as ``cancelled``
and returns; the caller then closes the run as ``interrupted`` and exits 128 + the signal's
number. Outside a load point the caller either checks ``requested`` at its next step or, in
a ``raising()`` section (blocking work with nothing to save, such as sizing prompts), gets a
``KeyboardInterrupt`` straight away. The handler never raises inside a load point, so a
signal can never land half-way through storing a request, and is never swallowed.

Python runs a signal handler between any two bytecodes, including inside a weakref callback
or a finaliser (the import system's module-lock callback, say), where an exception cannot
propagate: Python prints it as "Exception ignored in …" with a traceback and carries on. While
the handlers are installed such a stray ``KeyboardInterrupt`` is dropped quietly, and the
``raising()`` section it was meant for raises on leaving instead, so the stop is neither lost
nor shown to the user as a crash.

A second signal does not wait for anything: ``on_second`` (the CLI's: close the run as
``interrupted`` with a short lock wait, then end the process) is called from the handler.

    ┌ signal ┐  first ─▶ requested = True ─▶ loop bound? ─ yes ─▶ wake the load point
    └────────┘                                    └─ no ─▶ raising()? ─ yes ─▶ KeyboardInterrupt
               second ─▶ on_second(signum): never returns
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, NoReturn

__all__ = ["SIGNALS", "Interrupt"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt:
    """One bench command's view of the stop signals."""

    def __init__(self, on_second: Callable[[int], None] | None = None) -> None:
        self.signum: int | None = None  # the first signal received
        self.count = 0
        self.on_second = on_second
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._raising = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + (self.signum or signal.SIGINT)

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        self.count += 1
        if self.signum is None:
            self.signum = signum
        if self.count > 1 and self.on_second is not None:
            self.on_second(signum)
        if self._raising:
            raise KeyboardInterrupt
        if self._loop is not None and self._event is not None:
            self._loop.call_soon_threadsafe(self._event.set)

    @contextmanager
    def installed(self) -> Iterator[Interrupt]:
        """Handle SIGINT and SIGTERM here until the block ends, then restore the handlers
        (signals can only be handled in the main thread; elsewhere nothing is installed)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        before: dict[signal.Signals, Any] = {sig: signal.getsignal(sig) for sig in SIGNALS}
        hook_before = sys.unraisablehook
        for sig in SIGNALS:
            signal.signal(sig, self.handle)
        sys.unraisablehook = self._unraisable(hook_before)
        try:
            yield self
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
            sys.unraisablehook = hook_before

    def _unraisable(self, chain: Callable[[Any], object]) -> Callable[[Any], object]:
        """A ``sys.unraisablehook`` that drops the ``KeyboardInterrupt`` this handler raised
        where it could not propagate; anything else goes to the hook that was there."""

        def hook(unraisable: Any) -> object:
            if isinstance(unraisable.exc_value, KeyboardInterrupt) and self.requested:
                return None
            return chain(unraisable)

        return hook

    def exit_now(self) -> NoReturn:
        """End an interrupted command with ``exit_code`` once its work is stored and shown:
        flush the output and leave without Python's shutdown, which resets the signal
        handlers to the default — a second Ctrl-C landing there killed the process with
        SIGINT (exit -2) instead of 130."""
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        os._exit(self.exit_code)

    @contextmanager
    def raising(self) -> Iterator[None]:
        """A block where a signal raises ``KeyboardInterrupt`` at once (blocking work that
        stores nothing); one that came before the block raises on entry, and one whose
        ``KeyboardInterrupt`` was lost (raised where Python cannot propagate it) on leaving."""
        if self.requested:
            raise KeyboardInterrupt
        self._raising = True
        try:
            yield
        finally:
            self._raising = False
        if self.requested:
            raise KeyboardInterrupt

    def bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.Event:
        """The event a load point waits on; set already when a signal came first."""
        self._event = asyncio.Event()
        self._loop = loop
        if self.requested:
            self._event.set()
        return self._event

    def unbind(self) -> None:
        self._loop = None
        self._event = None
