"""All-or-nothing output: a result folder is replaced whole, or not at all.

A job builds its complete new result in a hidden staging folder beside the
destination (``.OUT.osteoprint-new-<pid>-<random>``): new files are written there,
and the previous result's files that the new one keeps are hard-linked in. The
commit then swaps the two folders in one step (``renameat2(RENAME_EXCHANGE)`` on
Linux; elsewhere two renames) and removes the previous result. An error, SIGINT or
SIGTERM before or during the commit leaves the previous result untouched and the
staging folder removed (a signal during the swap is held, and the swap is rolled
back). A run killed outright (SIGKILL, power loss) can leave a staging folder; the
next run into the same parent folder removes it, and puts a previous result back
if the kill fell between the two renames.

Files in a previous result that osteoprint did not make (a lab's notes) are carried
over; only the entries listed in ``entries`` are osteoprint's.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError, OptionError, one_line
from ..interrupts import committed as committed_results
from ..interrupts import deferred, pending

#: The marker and top-level entries of a job's result folder.
MANIFEST = "manifest.json"
RESULT_ENTRIES = frozenset(
    {
        MANIFEST,
        "segmentation.nii.gz",
        "plan.json",
        "bone.json",
        "vertebrae",
        "scaffolds",
        "guides",
        "labels.png",
        "prints.3mf",
        "report.html",
        "dicom",
    }
)
_STAGING = re.compile(r"\.(?P<name>.+)\.osteoprint-(?P<kind>new|old)-(?P<pid>\d+)-[^/]+")
_PART = re.compile(r"\.(?P<name>.+)\.osteoprint-(?P<pid>\d+)-[^/]+\.part")
#: Longest output name: the staging folder's name adds about 35 characters to it.
MAX_NAME = 200


class Staging:
    """A result being built; see :func:`staged_output`.

    ``previous`` is the result folder being replaced (None if there is none): read
    it, never write it.
    """

    def __init__(self, destination: Path, tmp: Path, previous: Path | None, entries: frozenset):
        self.destination = destination
        self.tmp = tmp
        self.previous = previous
        self.entries = entries

    def path(self, relative: str | os.PathLike) -> Path:
        """Where to write the file that will end up at ``destination/relative``."""
        if not _inside(relative):
            raise ValueError(f"{relative!r} is not a path inside the result folder")
        p = self.tmp / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(p):
            # A file taken over from the previous result is a hard link to it:
            # writing through it would change the previous result before the commit.
            p.unlink()
        return p

    def final(self, relative: str | os.PathLike) -> Path:
        """Where the file will be once committed."""
        return self.destination / relative

    def has(self, relative: str | os.PathLike) -> bool:
        return (self.tmp / relative).is_file()

    def keep(self, relative: str | os.PathLike) -> bool:
        """Take ``relative`` over from the previous result unless already staged.

        Returns whether the new result holds the file. A path that would leave the
        folder (a tampered manifest naming ``../x``) is never followed.
        """
        if not _inside(relative):
            return False
        if self.has(relative):
            return True
        if self.previous is None or not (self.previous / relative).is_file():
            return False
        _link_or_copy(self.previous / relative, self.path(relative))
        return True

    def carry_foreign(self) -> None:
        """Hard-link the previous result's entries that are not osteoprint's."""
        if self.previous is None:
            return
        for entry in sorted(os.listdir(self.previous)):
            if entry in self.entries or _is_temporary(entry) or (self.tmp / entry).exists():
                continue
            src = self.previous / entry
            if src.is_dir() and not src.is_symlink():
                shutil.copytree(src, self.tmp / entry, symlinks=True, copy_function=_link_or_copy)
            else:
                _link_or_copy(src, self.tmp / entry)


def check_output_folder(
    path: str | os.PathLike,
    *,
    option: str = "-o",
    is_result: Callable[[Path], bool] | None = None,
    scan: str | os.PathLike | None = None,
) -> Path:
    """Where a result folder will go, checked before any work; raise OptionError if unusable.

    The folder may be missing (its parents are created), empty, or an earlier result
    (``is_result(folder)`` true); not a file, not a folder of other things, not the
    input ``scan`` or a folder holding it. Returns the absolute path (symbolic links
    in it resolved, so that the link itself is left alone).
    """
    text = os.fspath(path)
    if not str(text).strip():
        raise OptionError(option, repr(text), "no output folder given")
    dest = Path(os.path.realpath(text))
    shown = one_line(text)
    if dest.parent == dest:
        raise OptionError(option, shown, "the root folder cannot hold a result")
    if len(os.fsencode(dest.name)) > MAX_NAME:
        raise OptionError(option, shown, f"the folder name is longer than {MAX_NAME} bytes")
    if scan is not None:
        source = Path(os.path.realpath(os.fspath(scan)))
        if source == dest or dest in source.parents:
            raise OptionError(option, shown, "is the input scan's place or holds it; give another folder")
    if os.path.lexists(dest):
        if not dest.is_dir():
            raise OptionError(option, shown, "is an existing file, not a folder")
        try:
            entries = [e for e in os.listdir(dest) if not _is_temporary(e)]
        except OSError as exc:
            raise OptionError(option, shown, f"cannot be read ({exc.strerror})") from None
        if entries and (is_result is None or not is_result(dest)):
            raise OptionError(
                option,
                shown,
                "is a folder holding other files, not an earlier osteoprint result; give a new or empty folder",
            )
        problem = _probe(dest.parent, dest.name)
        if problem or not os.access(dest, os.W_OK | os.X_OK):
            raise OptionError(
                option, shown, f"cannot be replaced: {problem or 'permission denied'} in its parent folder"
            )
        return dest
    ancestor = dest.parent
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OptionError(option, shown, f"cannot be created: {one_line(ancestor)} is a file")
    problem = _probe(ancestor, dest.name)
    if problem:
        raise OptionError(option, shown, f"cannot be created: {problem} in {one_line(ancestor)}")
    return dest


def _probe(folder: Path, name: str) -> str | None:
    """Why a folder cannot be created in ``folder`` (None if it can): tried for real,
    and removed at once, because permissions do not tell (root, read-only mounts, /proc)."""
    try:
        with deferred():
            os.rmdir(tempfile.mkdtemp(prefix=f".{name[:MAX_NAME]}.osteoprint-new-{os.getpid()}-", dir=folder))
    except OSError as exc:
        return (exc.strerror or type(exc).__name__).lower()
    return None


def check_output_file(path: str | os.PathLike, *, option: str = "-o", not_same_as: tuple = ()) -> Path:
    """Where a single output file (a report) will go; raise OptionError if unusable."""
    text = os.fspath(path)
    shown = one_line(text)
    if not str(text).strip():
        raise OptionError(option, repr(text), "no output file given")
    dest = Path(os.path.realpath(text))
    for other in not_same_as:
        if other is not None and os.path.realpath(os.fspath(other)) == str(dest):
            raise OptionError(option, shown, f"would overwrite the input {one_line(other)}")
    if os.path.lexists(dest) and not dest.is_file():
        raise OptionError(option, shown, "is an existing folder or special file, not a file")
    ancestor = dest.parent
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OptionError(option, shown, f"cannot be created: {one_line(ancestor)} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK) or (dest.exists() and not os.access(dest, os.W_OK)):
        raise OptionError(option, shown, "cannot be written: permission denied")
    return dest


@contextmanager
def staged_output(
    destination: str | os.PathLike,
    *,
    is_result: Callable[[Path], bool] | None = None,
    entries: frozenset = RESULT_ENTRIES,
    scan: str | os.PathLike | None = None,
):
    """Build a result for ``destination`` and commit it whole, or leave no trace.

    Parameters
    ----------
    destination : path
        The result folder (see :func:`check_output_folder`).
    is_result : callable, optional
        Tells an earlier result that may be replaced (e.g. it holds an osteoprint
        manifest); without it the folder must be new or empty.
    entries : frozenset of str
        Top-level names that are osteoprint's in such a result; the previous
        result's other entries are carried over.
    scan : path, optional
        The input, which the destination must not be or hold.

    Examples
    --------
    >>> with staged_output("out") as stage:            # doctest: +SKIP
    ...     write_stl(mesh, stage.path("vertebrae/L1.stl"))
    """
    dest = check_output_folder(destination, is_result=is_result, scan=scan)
    created: list[Path] = []
    committed = False
    tmp = None
    try:
        created = _make_parents(dest.parent)
        remove_stale(dest.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.osteoprint-new-{os.getpid()}-", dir=dest.parent))
        os.chmod(tmp, 0o777 & ~_umask())
        stage = Staging(dest, tmp, dest if dest.is_dir() else None, entries)
        yield stage
        stage.carry_foreign()
        _swap(tmp, dest)
        committed = True
        committed_results.append(dest)
    except OSError as exc:
        if tmp is not None and not _output_error(exc, dest, tmp):
            raise
        raise InputError(
            dest, f"cannot write the result ({exc.strerror or type(exc).__name__}); nothing was written"
        ) from None
    finally:
        with deferred():
            if tmp is not None and os.path.lexists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            if not committed:
                for folder in reversed(created):
                    try:
                        folder.rmdir()
                    except OSError:
                        break


def _output_error(exc: OSError, dest: Path, tmp: Path) -> bool:
    """Whether an OSError raised while a result was staged is about writing it."""
    if exc.filename is not None:
        name = str(os.fspath(exc.filename))
        return name.startswith(str(tmp)) or name == str(dest) or name.startswith(str(dest) + os.sep)
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO)


def _swap(tmp: Path, dest: Path) -> None:
    """Put ``tmp`` at ``dest`` in one step; afterwards ``tmp`` holds what is to be removed.

    A signal held during the swap rolls it back: ``dest`` is as before.
    """
    with deferred():
        if not os.path.lexists(dest):
            os.rename(tmp, dest)
            if pending():
                os.rename(dest, tmp)
            return
        if _exchange(tmp, dest):
            if pending():
                _exchange(tmp, dest)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.osteoprint-old-{os.getpid()}-", dir=dest.parent))
        os.rmdir(old)
        os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except BaseException:
            os.rename(old, dest)
            raise
        if pending():
            os.rename(dest, tmp)
            os.rename(old, dest)
        else:
            os.rename(old, tmp)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))


def remove_stale(folder: Path) -> None:
    """Remove staging folders and part files left in ``folder`` by killed runs, and
    put back a previous result set aside by a run killed in the middle of its commit."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in sorted(names):
        m = _STAGING.fullmatch(name) or _PART.fullmatch(name)
        if m is None or _alive(int(m["pid"])):
            continue
        path = folder / name
        with deferred():
            if m.re is _STAGING and m["kind"] == "old" and not os.path.lexists(folder / m["name"]):
                os.rename(path, folder / m["name"])
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _inside(relative) -> bool:
    """Whether ``relative`` names a place inside a folder (not absolute, no '..')."""
    p = Path(relative)
    return bool(p.parts) and not p.is_absolute() and ".." not in p.parts


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_temporary(name: str) -> bool:
    """Hidden leftovers that never belong to a result (ours, or older versions')."""
    return (
        name.startswith(".osteoprint-")
        or bool(_STAGING.fullmatch(name) or _PART.fullmatch(name))
        or (name.startswith(".") and name.endswith(".part"))
    )


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first."""
    missing = []
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for f in reversed(missing):
        f.mkdir()
    return list(reversed(missing))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: str | os.PathLike):
    """A binary file handle whose content replaces ``path`` whole when the block ends.

    Readers see either the old file or the complete new one: the data goes to a
    hidden ``.part`` file beside ``path`` (missing folders are made), renamed over
    ``path`` on success and removed, with the folders made for it, on any error or
    signal. The one permission policy of every file osteoprint writes: that of an
    ordinary new file under the user's umask (``0o666 & ~umask``), since mkstemp's
    0600 would hide outputs the lab shares.
    """
    path = Path(path)
    created = _make_parents(path.parent)
    remove_stale(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.osteoprint-{os.getpid()}-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())
        with deferred():
            os.replace(tmp, path)
    except BaseException:
        with deferred():
            Path(tmp).unlink(missing_ok=True)
            for folder in reversed(created):
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write one file so that readers see either the old or the complete new content."""
    with atomic_file(path) as fh:
        fh.write(data)
