"""A signal that lands where Python cannot raise (a weakref callback, a finaliser) is neither
printed as a crash nor lost: CI once caught Ctrl-C landing in the import system's module-lock
callback, which printed "Exception ignored in …" and a traceback."""

from __future__ import annotations

import signal
import sys
import weakref

import pytest

from gpusizer.bench.interrupt import Interrupt


class _Thing:
    pass


def _signal_inside_a_weakref_callback(interrupt: Interrupt) -> None:
    thing = _Thing()
    ref = weakref.ref(thing, lambda _r: interrupt.handle(signal.SIGINT))
    del thing  # the callback runs here; its KeyboardInterrupt cannot propagate
    assert ref() is None


def test_a_stop_lost_in_a_callback_is_quiet_and_raised_on_leaving(capsys: pytest.CaptureFixture[str]) -> None:
    interrupt = Interrupt()
    reached_end = False
    with interrupt.installed(), pytest.raises(KeyboardInterrupt), interrupt.raising():
        _signal_inside_a_weakref_callback(interrupt)
        reached_end = True  # the block's work went on: the exception was swallowed
    assert reached_end
    assert interrupt.requested and interrupt.exit_code == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_other_unraisable_errors_still_reach_the_previous_hook() -> None:
    seen: list[BaseException | None] = []
    before = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_value)
    try:
        interrupt = Interrupt()
        with interrupt.installed():
            thing = _Thing()

            def boom(_r: object) -> None:
                raise ValueError("not ours")

            ref = weakref.ref(thing, boom)
            del thing
            assert ref() is None
        assert sys.unraisablehook is not before  # our own test hook is back in place
        assert len(seen) == 1 and isinstance(seen[0], ValueError)
    finally:
        sys.unraisablehook = before


def test_the_hook_is_restored_when_the_handlers_are() -> None:
    before = sys.unraisablehook
    with Interrupt().installed():
        assert sys.unraisablehook is not before
    assert sys.unraisablehook is before
