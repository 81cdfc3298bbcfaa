"""Small shared helpers: atomic output files, human-readable numbers."""

from __future__ import annotations

import os
import tempfile

from .errors import UsageError


def check_writable(path: str) -> None:
    """Fail early (before any work) when ``path`` cannot be written."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a directory")
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"cannot write {path}: directory {directory} is not writable")


def write_atomic(path: str, data: str | bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place.

    A failure at any point leaves no half-written file and keeps an existing
    ``path`` as it was.  The file gets the mode a plain ``open()`` would give it
    (an existing file's mode, else 0666 less the umask), not ``mkstemp``'s 0600.
    """
    check_writable(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".cnnir-", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, _mode_for(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _mode_for(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def human(n: float, unit: str = "") -> str:
    """``25557032 -> '25.56M'``, ``4089184256 -> '4.09G'``; small numbers stay exact.

    The one formatter of counts for reports, tables and diagrams; ``999996`` is
    ``'1.00M'`` (not ``'1000.00K'``)."""
    n = float(n)
    steps = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))
    for i, (div, suffix) in enumerate(steps):
        if abs(n) >= div:
            if i and abs(round(n / div, 2)) >= 1000:  # rounds up into the next unit
                div, suffix = steps[i - 1]
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{int(n) if n == int(n) else n}{unit}"


def human_bytes(n: float) -> str:
    """Bytes in binary units: ``'97.49 MiB'``."""
    n = float(n)
    for div, suffix in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}"
    return f"{int(n)} B"
