"""Using the lab PC's cores: worker counts and a process map for independent prints.

Meshing and checking a vertebra is mostly Python-level work (trimesh, graph
bookkeeping) that holds the GIL, so threads barely overlap; separate processes do.
Forked workers start in milliseconds and share the parent's memory copy-on-write,
so only each job's small inputs and its finished mesh cross between processes.
Where fork is unavailable (Windows, macOS defaults), there is one core or one
job, or this process may not have children (a daemonic worker, as Dask's are),
the map runs in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: More workers than this add memory without adding speed on a lab workstation.
MAX_WORKERS = 4


def workers() -> int:
    """CPU cores this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def map_processes(fn: Callable[[T], R], items: Iterable[T], *, on_result: Callable[[R], None] | None = None) -> list[R]:
    """``[fn(x) for x in items]``, in forked worker processes where that helps.

    ``fn`` must be a module-level function; results come back in input order, and
    ``on_result`` (progress display) is called in this process as each arrives.
    An exception in a worker is raised here.
    """
    items = list(items)
    n = min(len(items), workers(), MAX_WORKERS)
    if n <= 1 or "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        results = []
        for item in items:
            results.append(fn(item))
            if on_result is not None:
                on_result(results[-1])
        return results
    results = []
    from .interrupts import reset_in_worker

    # Workers leave SIGINT and SIGTERM to this process, which stops the pool and
    # removes the job's staging folder; a worker killed by the pool dies quietly.
    with multiprocessing.get_context("fork").Pool(n, initializer=reset_in_worker) as pool:
        for result in pool.imap(fn, items):
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


class Background:
    """``fn(*args, **kwargs)`` running in a thread while this one goes on.

    For two independent branches of a job that are mostly numpy and scipy work
    (which release the GIL inside their loops), so that on two cores they overlap.
    The thread is a daemon: an interrupted job does not wait for it to finish. Do
    not fork (:func:`map_processes`) while one runs: a child forked while another
    thread holds a lock can hang on it.
    """

    def __init__(self, fn: Callable[..., R], *args, **kwargs):
        import threading

        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, fn, args, kwargs) -> None:
        try:
            self._value = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the waiting thread by result()
            self._error = exc

    def result(self):
        """Wait for the branch; return its value or raise its exception here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
