"""Where an internal error's traceback is kept for the bug report.

Never in the output folder (a failed job leaves that untouched): in
``$OSTEOPRINT_LOG_DIR``, else ``$XDG_STATE_HOME/osteoprint``, else
``~/.local/state/osteoprint``, else the system's temporary folder. The file's name
holds only the time and a random part, no input name.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def log_folder() -> Path:
    """The folder crash logs go to (see the module's docstring)."""
    if os.environ.get("OSTEOPRINT_LOG_DIR"):
        return Path(os.environ["OSTEOPRINT_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "osteoprint"


def write_crash_log(text: str) -> Path:
    """Write ``text`` (a traceback) to a new log file and return its path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (log_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix=f"osteoprint-crash-{stamp}-", suffix=".log", dir=folder)
        except OSError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
            fh.write(text)
        return Path(path)
    raise OSError(2, "no writable folder for the log")
