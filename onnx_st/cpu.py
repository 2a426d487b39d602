"""This CPU's model name and the instruction sets that decide which int8 file it can run fast."""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path

# Instruction sets that matter for ONNX Runtime's float and int8 kernels (Linux /proc/cpuinfo names).
WATCHED_FLAGS: tuple[str, ...] = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16",
                                  "asimddp", "i8mm")
# int8 file families (``onnx/model_qint8_<family>.onnx``), best first, and the flags each needs.
FAMILY_FLAGS: dict[str, tuple[str, ...]] = {
    "avx512_vnni": ("avx512f", "avx512bw", "avx512_vnni"),
    "avx512": ("avx512f", "avx512bw"),
    "avx2": ("avx2",),
    "arm64": ("asimd",),
}


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text("utf8", errors="replace")
    except OSError:
        return ""


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask on Linux), at least 1."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    for line in _cpuinfo().splitlines():
        if line.startswith(("model name", "Model", "Hardware")) and ":" in line:
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """Every instruction-set flag the CPU reports (empty where ``/proc/cpuinfo`` is unavailable)."""
    for line in _cpuinfo().splitlines():
        if line.startswith(("flags", "Features")) and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def watched_flags() -> list[str]:
    """The flags of :data:`WATCHED_FLAGS` this CPU has, e.g. ``["avx2", "avx512_vnni", "amx_int8"]``."""
    flags = cpu_flags()
    return [f for f in WATCHED_FLAGS if f in flags]


def int8_families(flags: frozenset[str] | None = None) -> list[str]:
    """int8 file families this CPU runs natively, best first (``["avx512_vnni", "avx512", "avx2"]``)."""
    flags = cpu_flags() if flags is None else flags
    machine = platform.machine().lower()
    if flags and machine not in ("aarch64", "arm64"):
        flags = flags - {"asimd"}
    elif machine in ("aarch64", "arm64"):
        flags = flags | {"asimd"}
    return [family for family, needed in FAMILY_FLAGS.items() if all(f in flags for f in needed)]


def cpu_header() -> str:
    """One line for benchmark headers: model name, cores and the watched instruction sets."""
    import os

    return f"CPU: {cpu_model()} ({os.cpu_count()} logical cores; {', '.join(watched_flags()) or 'no AVX2/AVX-512/VNNI/AMX'})"


__all__ = ["FAMILY_FLAGS", "WATCHED_FLAGS", "cpu_flags", "cpu_header", "cpu_model", "int8_families", "watched_flags"]
