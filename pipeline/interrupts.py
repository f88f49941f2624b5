"""SIGINT and SIGTERM as exceptions, and the few steps they must not cut in half.

The command line turns both signals into :class:`Interrupted`, so that every
``finally`` runs and a job's staging folder is removed: an interrupted job leaves
no trace. The steps that put a result in place or take a staging folder away run
inside :func:`deferred`: a signal arriving then is held until the step is over, and
the step can ask :func:`pending` whether to roll back instead of finishing.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

HANDLED = (signal.SIGINT, signal.SIGTERM)
_held: list[int] = []
_depth = [0]
#: Result folders committed since :func:`install`: an interrupt after a commit
#: finds the result complete, not absent.
committed: list = []


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM (``signum``); not an error of the input."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum, frame):
    if _depth[0] > 0:
        if signum not in _held:
            _held.append(signum)
        return
    raise Interrupted(signum)


def install() -> dict:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` in the main thread.

    Returns the previous handlers, for :func:`restore`.
    """
    committed.clear()
    return {sig: signal.signal(sig, _handler) for sig in HANDLED}


def restore(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def ignore() -> None:
    """Ignore both signals (the result is in place; only a summary remains to print)."""
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_IGN)


def reset_in_worker() -> None:
    """Worker-process initializer: the parent handles Ctrl-C, SIGTERM kills quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def pending() -> int | None:
    """The signal held back by :func:`deferred`, if one arrived."""
    return _held[0] if _held else None


@contextmanager
def deferred():
    """Hold SIGINT/SIGTERM until the block ends, then act on the first one held.

    Works whether or not :func:`install` was called: in the main thread the
    recording handler is put in place for the block and the previous handlers get
    the held signal afterwards (a plain Python program then sees its usual
    KeyboardInterrupt or termination, after the block has finished).
    """
    main = threading.current_thread() is threading.main_thread()
    previous = None
    if main and _depth[0] == 0:
        current = {sig: signal.getsignal(sig) for sig in HANDLED}
        if any(h is not _handler for h in current.values()):
            previous = {sig: h for sig, h in current.items() if h is not _handler}
            for sig in previous:
                signal.signal(sig, _handler)
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        if _depth[0] == 0:
            held = list(_held)
            _held.clear()
            if previous is not None:
                restore(previous)
            if held:
                if previous is None or signal.getsignal(held[0]) is _handler:
                    raise Interrupted(held[0])
                signal.raise_signal(held[0])
