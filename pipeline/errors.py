"""Errors a user can cause and fix, and the exit status each one gives.

Every stage raises an :class:`OsteoprintError` subclass for bad input, never a bare
exception, at the place where the input enters: :class:`InputError` for a file or
folder, :class:`OptionError` for a command-line option (or the API argument behind
it), :class:`NothingToPrint` when a job ran but found nothing to make. The CLI
prints ``str(error)`` as one line and exits with ``error.exit_code``, without a
stack trace. Anything else escaping a stage is a bug in osteoprint.

Exit statuses (also in README.md):

===  ==========================================================================
0    done (``check-guide``: every check passed)
1    finished, but something failed: a ``check-guide`` check, a ``batch`` scan
2    the input, an option or the output place cannot be used (nothing written)
3    the scan was read but the job found nothing to print (nothing written)
70   internal error (a bug): one line plus the file holding the traceback
130  interrupted by SIGINT (Ctrl-C), 143 by SIGTERM (nothing written)
===  ==========================================================================
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOTHING_TO_PRINT = 3
EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h)


def one_line(text: object) -> str:
    """``text`` as a single printable line: control characters (a newline in a
    file name, say) are shown escaped, as Python would show them in a string."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class OsteoprintError(Exception):
    """Base class of errors caused by the input or the options, not by a bug."""

    exit_code = EXIT_USAGE

    def __str__(self) -> str:
        return one_line(super().__str__())


class InputError(OsteoprintError):
    """A file or folder cannot be used.

    Parameters
    ----------
    path : str or os.PathLike or None
        The offending file or folder, named in the message.
    problem : str
        What is wrong, in the user's words (one line, no trailing period needed).
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class OptionError(OsteoprintError):
    """An option's value cannot be used; raised before any work starts.

    Parameters
    ----------
    option : str
        The option as the user typed it, e.g. ``"--hu-min"`` or ``"-o"``.
    value : object
        The value given (shown as typed).
    problem : str
        What is wrong with it, in the user's words.
    """

    def __init__(self, option: str, value, problem: str):
        self.option = option
        self.value = value
        self.problem = problem
        super().__init__(f"{option} {value}: {problem}")


class NothingToPrint(InputError):
    """The job ran on a readable scan but made no print: a failure, not a result.

    Takes the scan (or None) and the reason, as :class:`InputError` does.
    """

    exit_code = EXIT_NOTHING_TO_PRINT


class DesignError(OsteoprintError):
    """A requested design (lattice, guide, plan) cannot be built as asked."""
