"""Errors a user can cause and fix.

Every stage raises :class:`InputError` (or a subclass) for bad input, never a bare
exception: the CLI prints ``str(error)`` as one line and exits non-zero, without a
stack trace. Anything else escaping a stage is a bug in osteoprint.
"""

from __future__ import annotations

import os


class OsteoprintError(Exception):
    """Base class of errors caused by the input or the options, not by a bug."""


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


class DesignError(OsteoprintError):
    """A requested design (lattice, guide, plan) cannot be built as asked."""
