"""Progress for people: what the command line shows while a job runs.

Jobs report to any object with ``stage(name)``, ``note(message)`` and, optionally,
``detail(message)`` (see :class:`Quiet`). :class:`Progress` writes
them to standard error: a live status line when standard error is a terminal, plain
timestamped lines otherwise (logs, pipes, CI), nothing with ``verbosity=0``.
Standard output stays free for the ``--json`` summary.
"""

from __future__ import annotations

import sys
import threading
import time

from .errors import one_line


class Quiet:
    """Progress reporter that says nothing (the API default)."""

    def stage(self, name: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def detail(self, message: str) -> None:
        pass


class Progress:
    """Stage and note reporter for the command line.

    Parameters
    ----------
    verbosity : int
        0 errors only (``-q``), 1 stages, notes and warnings (default), 2 also
        details such as each vertebra meshed or each file skipped (``-v``).
    """

    def __init__(self, verbosity: int = 1):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.verbosity = verbosity
        self.t0 = time.perf_counter()
        self._status = None
        # a job's branches may report from two threads (pipeline.parallel.Background)
        self._lock = threading.Lock()

    @property
    def live(self) -> bool:
        """Whether a live status line is shown (only on a terminal)."""
        return self.console.is_terminal

    def stage(self, name: str) -> None:
        if self.verbosity < 1:
            return
        name = one_line(name)  # a file name with a newline cannot split a line
        with self._lock:
            self._stage(name)

    def _stage(self, name: str) -> None:
        if self.live:
            if self._status is None:
                self._status = self.console.status(name)
                self._status.start()
            else:
                self._status.update(name)
            self.console.log(name, markup=False, highlight=False)
        else:
            print(f"[{time.perf_counter() - self.t0:6.1f} s] {name}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        if self.verbosity >= 1:
            self._line(message)

    def detail(self, message: str) -> None:
        if self.verbosity >= 2:
            self._line(message)

    def _line(self, message: str) -> None:
        message = one_line(message)
        if self.live:
            self.console.log(f"  {message}", markup=False, highlight=False)
        else:
            print(f"         {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def detail(progress, message: str) -> None:
    """Report a detail to ``progress`` (as a note if it has no ``detail`` level)."""
    getattr(progress, "detail", progress.note)(message)
