"""Is it a CT in Hounsfield units, and can this machine hold it? Checked as input enters.

Two families of checks, shared by the DICOM and NIfTI readers:

* sizes, before anything is allocated: what a header declares must fit in the file
  that carries it and in a memory budget (a 2 KB file declaring 1024³ voxels is
  refused without allocating 2 GB);
* values, once read: finite, within the range CT can give, and showing both fat
  or air (negative HU) and soft tissue. Values that fail cannot be CT HU (stored
  values without their rescale, MR or PET images, a label map, a blank image), and
  a segmentation of them would be a confident wrong print. Fat is enough: a scan
  cropped tightly around the spine holds no air, but always paraspinal fat.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from ..errors import InputError

#: Range of values a CT can hold, HU: scanner padding reaches -3024 and extended
#: HU scales (metal) about +30 000.
HU_LIMITS = (-10_000.0, 40_000.0)
#: Fat (about -100 HU), lung and air lie below this, HU; stored values without
#: their rescale, MR and PET images have nothing below 0.
FAT_OR_AIR_BELOW_HU = -50.0
#: Soft tissue (fat, muscle, organs, blood) lies in this range, HU.
SOFT_TISSUE_HU = (-200.0, 200.0)
#: Smallest share of voxels that must be fat or air: outside the body, in the
#: lungs or bowel, the padding around the reconstruction circle, the body's fat.
MIN_FAT_OR_AIR_FRACTION = 0.005
#: Smallest share of voxels that must be soft tissue in a scan of a body.
MIN_SOFT_TISSUE_FRACTION = 0.05
#: Working memory of a job per voxel of the scan, bytes (measured: the ``model``
#: job peaks at 1.1 GiB on 512x512x400 voxels, ~11 bytes each).
JOB_BYTES_PER_VOXEL = 12
#: Above this compression ratio a gzip stream's declared size is verified by
#: decompressing (CT data compresses about 2-4 times; masks far more).
SUSPICIOUS_GZIP_RATIO = 200


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"  # pragma: no cover


def memory_budget() -> int:
    """Bytes a job may use: 80 % of the physical memory (or of the container's
    limit when lower); ``OSTEOPRINT_MEMORY_GB`` overrides it."""
    override = os.environ.get("OSTEOPRINT_MEMORY_GB")
    if override:
        try:
            return int(float(override) * 1e9)
        except ValueError:
            pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        total = 16 * 1024**3
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file) as fh:
                text = fh.read().strip()
            if text.isdigit():
                total = min(total, int(text))
        except OSError:
            continue
    return int(0.8 * total)


def check_memory(n_voxels: int, source, what: str) -> None:
    """Refuse a scan whose job would need more memory than :func:`memory_budget`."""
    need = int(n_voxels) * JOB_BYTES_PER_VOXEL
    budget = memory_budget()
    if need > budget:
        raise InputError(
            source,
            f"{what}: {int(n_voxels):,} voxels would need about {human_bytes(need)} "
            f"of memory, more than the {human_bytes(budget)} available",
        )


def check_file_holds(path, needed: int, what: str) -> None:
    """Refuse an uncompressed file shorter than its header says (before reading it)."""
    size = os.path.getsize(path)
    if size < needed:
        raise InputError(path, f"truncated: {what} need {human_bytes(needed)} but the file holds {human_bytes(size)}")


def check_gzip_holds(path, needed: int, what: str) -> None:
    """Refuse a gzip file whose stream is shorter than ``needed`` bytes.

    The gzip trailer's size (modulo 4 GiB) is trusted when it agrees and the
    compression ratio is ordinary; otherwise the stream is decompressed and counted,
    without keeping it.
    """
    size = os.path.getsize(path)
    trailer = None
    if size >= 18:
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            trailer = int.from_bytes(fh.read(4), "little")
    if trailer == needed % 2**32 and needed <= SUSPICIOUS_GZIP_RATIO * size:
        return
    count = 0
    try:
        with gzip.open(path, "rb") as fh:
            while count < needed:
                block = fh.read(min(1 << 22, needed - count))
                if not block:
                    break
                count += len(block)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"corrupt or truncated gzip data ({type(exc).__name__}: {exc})") from None
    if count < needed:
        raise InputError(
            path, f"truncated: {what} need {human_bytes(needed)} but the file's data holds {human_bytes(count)}"
        )


def _sample(hu: np.ndarray, target: int = 2_000_000) -> np.ndarray:
    """A regular subsample of about ``target`` voxels (enough for fractions)."""
    step = max(int(round((hu.size / target) ** (1 / 3))), 1)
    return hu[::step, ::step, ::step]


def check_hounsfield(hu: np.ndarray, source, hint: str = "") -> None:
    """Refuse values that cannot be CT Hounsfield units.

    Parameters
    ----------
    hu : ndarray
        The scan as read, HU.
    source : path
        File or folder named in the message.
    hint : str
        Why the values might be wrong, appended to the message when they are.

    Raises
    ------
    InputError
        Non-finite voxels, values outside :data:`HU_LIMITS`, too narrow a range, no
        fat or air, or no soft tissue.
    """
    hint = f" ({hint})" if hint else ""
    if hu.size == 0:
        raise InputError(source, "the image holds no voxels")
    if np.issubdtype(hu.dtype, np.floating):
        bad = int(hu.size - np.count_nonzero(np.isfinite(hu)))
        if bad:
            raise InputError(
                source,
                f"{bad:,} voxels ({100 * bad / hu.size:.3g} %) are NaN or infinite: not CT Hounsfield units{hint}",
            )
    lo, hi = float(hu.min()), float(hu.max())
    if lo < HU_LIMITS[0] or hi > HU_LIMITS[1]:
        raise InputError(
            source,
            f"values {lo:.6g}..{hi:.6g} lie outside the {HU_LIMITS[0]:.0f}..{HU_LIMITS[1]:.0f} "
            f"a CT can hold in Hounsfield units{hint}",
        )
    if hi - lo < 200 or lo > 0 or hi < 200:
        raise InputError(source, f"values {lo:.0f}..{hi:.0f} do not look like CT Hounsfield units{hint}")
    sample = _sample(hu)
    fat_or_air = float(np.count_nonzero(sample < FAT_OR_AIR_BELOW_HU)) / sample.size
    soft = float(np.count_nonzero((sample >= SOFT_TISSUE_HU[0]) & (sample <= SOFT_TISSUE_HU[1]))) / sample.size
    if fat_or_air < MIN_FAT_OR_AIR_FRACTION:
        raise InputError(
            source,
            f"only {100 * fat_or_air:.2g} % of voxels are fat, air or lung (below "
            f"{FAT_OR_AIR_BELOW_HU:.0f} HU), a CT of a body shows more: the values do not look "
            f"like Hounsfield units{hint}",
        )
    if soft < MIN_SOFT_TISSUE_FRACTION:
        raise InputError(
            source,
            f"only {100 * soft:.2g} % of voxels are soft tissue ({SOFT_TISSUE_HU[0]:.0f}.."
            f"{SOFT_TISSUE_HU[1]:.0f} HU): not a CT of a body{hint}",
        )
