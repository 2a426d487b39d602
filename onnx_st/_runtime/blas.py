"""NumPy's BLAS kept on the calling thread while a model runs its batches.

OpenBLAS (the BLAS in NumPy's wheels) wakes its worker threads for a large enough matrix product and
leaves them spinning for a while afterwards, on the cores ONNX Runtime's next run needs: with a
multi-vector projection after every run of short texts, onnx-st did 80% of ONNX Runtime alone, and
97% with the product on one thread. The products after the graph (Dense layers) are small beside the
graph, so :func:`one_blas_thread` runs them on the calling thread for the length of a call.

The thread count is process-wide in OpenBLAS: the first of overlapping calls lowers it and the last
restores it, so NumPy products elsewhere in the process run on one thread while a call runs. Where
NumPy's BLAS is not an OpenBLAS this module can find (Accelerate, MKL), nothing changes.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# (get, set) thread-count functions: NumPy's own OpenBLAS build (scipy-openblas, 64-bit integers or
# not), then a plain OpenBLAS that a distribution's NumPy links
_SYMBOLS = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
            ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
            ("openblas_get_num_threads", "openblas_set_num_threads"))


@dataclass(frozen=True)
class BlasThreads:
    """The thread-count functions of one OpenBLAS library."""

    path: str
    get: Callable[[], int]
    set: Callable[[int], None]


def _library_paths() -> list[str]:
    """OpenBLAS libraries NumPy ships beside itself (wheels), else those this process has loaded."""
    import numpy

    package = Path(numpy.__file__).parent
    found = [str(p) for folder in (package.parent / "numpy.libs", package / ".dylibs")
             if folder.is_dir() for p in sorted(folder.iterdir()) if "openblas" in p.name.lower()]
    if found or not sys.platform.startswith("linux"):
        return found
    try:
        maps = Path("/proc/self/maps").read_text(errors="replace")
    except OSError:
        return []
    fields = (line.split(None, 5) for line in maps.splitlines())  # address perms offset dev inode path
    return sorted({f[5] for f in fields if len(f) == 6 and "openblas" in f[5].lower()})


def _bind(path: str) -> BlasThreads | None:
    try:
        library = ctypes.CDLL(path)
    except OSError:
        return None
    for get_name, set_name in _SYMBOLS:
        getter, setter = getattr(library, get_name, None), getattr(library, set_name, None)
        if getter is not None and setter is not None:
            getter.argtypes, getter.restype = [], ctypes.c_int
            setter.argtypes, setter.restype = [ctypes.c_int], None
            return BlasThreads(path, getter, setter)
    return None


@cache
def openblas() -> BlasThreads | None:
    """NumPy's OpenBLAS thread controls, or ``None`` where none is found."""
    for path in _library_paths():
        bound = _bind(path)
        if bound is not None:
            return bound
    return None


class _SharedLimit:
    """One thread for overlapping bodies: the first lowers the count, the last restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = 0

    def enter(self, threads: BlasThreads) -> None:
        with self._lock:
            if self._depth == 0:
                self._saved = threads.get()
                if self._saved > 1:
                    threads.set(1)
            self._depth += 1

    def exit(self, threads: BlasThreads) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._saved > 1:
                threads.set(self._saved)


_LIMIT = _SharedLimit()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the body with NumPy's OpenBLAS on one thread (restored when the last overlapping body ends)."""
    threads = openblas()
    if threads is None:
        yield
        return
    _LIMIT.enter(threads)
    try:
        yield
    finally:
        _LIMIT.exit(threads)
