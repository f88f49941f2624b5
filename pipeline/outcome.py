"""How a command ends: its exit status and, for every failure, one line on stderr.

A user's error (:class:`~pipeline.errors.OsteoprintError`) names the file or option
and why; an interrupt says whether anything was written; anything else is a bug:
its traceback goes to a log file (:mod:`pipeline.exchange.logs`) that the one line
names. With ``--json`` the same failure is also a JSON document on stdout.
"""

from __future__ import annotations

import argparse
import sys

from . import interrupts
from .errors import EXIT_INTERNAL, EXIT_USAGE, OsteoprintError, one_line
from .summary import emit_json


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit status 2) instead of a usage block."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"osteoprint: error: {one_line(message)} (see '{self.prog} --help')\n")


def run_command(args) -> int:
    """``args.func(args)`` with every way it can end turned into one line and a status."""
    import warnings

    import numpy as np

    try:
        # Library warnings (numpy's RuntimeWarnings on odd data, deprecations) are
        # not for the user: the checks say what matters, in one line.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return int(args.func(args) or 0)
    except OsteoprintError as exc:
        return _failed(args, f"error: {exc}", str(exc), exc.exit_code)
    except (interrupts.Interrupted, KeyboardInterrupt) as exc:
        signum = getattr(exc, "signum", 2)
        done = interrupts.committed
        what = f"the result in {done[-1]} was already complete" if done else "no output was written"
        return _failed(
            args, f"interrupted by {interrupts.Interrupted(signum).name}; {what}", "interrupted", 128 + signum
        )
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        return _internal_error(args, exc)


def _internal_error(args, exc: BaseException) -> int:
    """A bug (or the machine running out of memory): one line and the traceback's file."""
    import traceback

    from .exchange.logs import write_crash_log

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        where = f"full traceback in {write_crash_log(text)}"
    except OSError as err:
        where = f"the traceback could not be saved ({err.strerror})"
    if isinstance(exc, MemoryError):
        return _failed(args, f"error: out of memory; no output was written ({where})", "out of memory", EXIT_INTERNAL)
    detail = one_line(str(exc))[:200]
    return _failed(
        args,
        f"internal error (a bug): {type(exc).__name__}{': ' + detail if detail else ''}; no output "
        f"was written; please report it ({where})",
        "internal error",
        EXIT_INTERNAL,
    )


def _failed(args, line: str, error: str, code: int) -> int:
    print(f"osteoprint: {one_line(line)}", file=sys.stderr, flush=True)
    if getattr(args, "json", False):
        emit_json({"status": "error", "command": args.command, "error": one_line(error), "exit_code": code})
    return code
