"""All-or-nothing output: a job either leaves every file it promised or none.

Files are written under a hidden staging folder beside the destination and moved
into place with :func:`os.replace` only when the whole job has succeeded, so an error
or Ctrl-C never leaves a half-written STL or a manifest that names missing files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


class Staging:
    """Collects files for a destination folder; see :func:`staged_output`."""

    def __init__(self, destination: Path, tmp: Path):
        self.destination = destination
        self.tmp = tmp

    def path(self, relative: str | os.PathLike) -> Path:
        """Where to write the file that will end up at ``destination/relative``."""
        p = self.tmp / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def final(self, relative: str | os.PathLike) -> Path:
        """Where the file will be once committed."""
        return self.destination / relative


@contextmanager
def staged_output(destination: str | os.PathLike):
    """Stage writes for ``destination`` and commit them only on success.

    Examples
    --------
    >>> with staged_output("out") as stage:            # doctest: +SKIP
    ...     write_stl(mesh, stage.path("vertebrae/L1.stl"))
    """
    destination = Path(destination)
    created = not destination.exists()
    destination.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".osteoprint-staging-", dir=destination))
    os.chmod(tmp, 0o777 & ~_umask())
    committed = False
    try:
        yield Staging(destination, tmp)
        for src in sorted(p for p in tmp.rglob("*") if p.is_file()):
            rel = src.relative_to(tmp)
            dst = destination / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        committed = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not committed and not any(destination.iterdir()):
            destination.rmdir()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write one file so that readers see either the old or the complete new content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp creates 0600; outputs are ordinary files the lab shares.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
