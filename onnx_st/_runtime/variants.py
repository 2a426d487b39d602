"""The ONNX variants of a model directory and their parity records (``onnx/parity.json``).

The exporter (``onnx-st-export --optimize ... --quantize ...``) writes files named as
sentence-transformers names them (``onnx/model_O2.onnx``, ``onnx/model_qint8_avx512_vnni.onnx``,
...) and, next to them, ``onnx/parity.json``: file name -> record of how that file's end-to-end
outputs compare with sentence-transformers (``max_abs_diff``, ``min_cosine``, ``mean_cosine``,
``texts``, ``passed``, ``thresholds``, ``created_by``). Pick a file with ``file_name=``, or let
:func:`choose_file` pick with ``file_name="auto"``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onnx_st._runtime.config import read_json
from onnx_st.cpu import int8_families
from onnx_st.errors import ConfigError, ModelNotFoundError
from onnx_st.fastload import data_file

logger = logging.getLogger(__name__)

PARITY_FILE = "parity.json"
_LEVEL = re.compile(r"model_(O[1-4])\.onnx$")
_INT8 = re.compile(r"model_(q(?:u)?int8)_(\w+?)(?:_hq)?\.onnx$")  # ``_hq``: the near-lossless int8 file


@dataclass(frozen=True)
class Variant:
    """One ONNX file of a model directory, with its parity record when the exporter wrote one."""

    file_name: str
    module_dir: str
    size_bytes: int
    parity: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        """``fp32``, ``O1``-``O4`` or ``int8`` (from the file name, as sentence-transformers names files)."""
        name = Path(self.file_name).name
        if (level := _LEVEL.search(name)) is not None:
            return level.group(1)
        return "int8" if _INT8.search(name) else "fp32" if name == "model.onnx" else "other"

    @property
    def cpu_family(self) -> str | None:
        """``avx2``, ``avx512``, ``avx512_vnni``, ``arm64`` for int8 files, else ``None``."""
        match = _INT8.search(Path(self.file_name).name)
        return match.group(2) if match else None

    @property
    def passed(self) -> bool | None:
        """Whether the file met its parity thresholds; ``None`` without a record."""
        return None if self.parity is None else bool(self.parity.get("passed"))

    @property
    def created_by(self) -> dict[str, Any]:
        """How the exporter made the file (its record's ``created_by``; empty without one).

        Raises:
            ConfigError: the record's ``created_by`` is not a JSON object.
        """
        created = (self.parity or {}).get("created_by") or {}
        if not isinstance(created, dict):
            raise ConfigError(f"{PARITY_FILE}: the record of {self.file_name} has a 'created_by' that is not an object")
        return created

    @property
    def fast_load_source(self) -> str | None:
        """The file this one is the fast-load copy of (:mod:`onnx_st.fastload`), from its parity record."""
        created = self.created_by
        source = created.get("source")
        return source if created.get("method") == "fast_load" and isinstance(source, str) else None

    @property
    def gpu_only(self) -> bool:
        """Whether the file is meant for GPUs (float16, ``O4``)."""
        return bool(self.parity.get("gpu_only")) if self.parity is not None else self.kind == "O4"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: file, folder, kind, size, and the parity numbers when recorded."""
        out: dict[str, Any] = {"file_name": self.file_name, "module_dir": self.module_dir, "kind": self.kind,
                               "cpu_family": self.cpu_family, "size_bytes": self.size_bytes,
                               "gpu_only": self.gpu_only, "passed": self.passed}
        if self.parity is not None:
            out.update({k: self.parity.get(k) for k in ("max_abs_diff", "min_cosine", "mean_cosine", "texts",
                                                        "thresholds")})
        return out

    def summary(self) -> str:
        """One line: file, kind, size and the parity numbers (or ``no parity record``)."""
        head = f"{self.file_name:36s} {self.kind:5s} {self.size_bytes / 2**20:7.1f} MB"
        if self.parity is None:
            return f"{head}  no parity record"
        cos = self.parity.get("min_cosine"), self.parity.get("mean_cosine")
        cosines = f"min cos {cos[0]:.6f}  mean cos {cos[1]:.6f}" if None not in cos else "cosine n/a"
        status = "ok" if self.passed else "MISSED THRESHOLDS"
        gpu = "  [GPU-only]" if self.gpu_only else ""
        return (f"{head}  max|diff| {float(self.parity.get('max_abs_diff', float('nan'))):.2e}  {cosines}  "
                f"({self.parity.get('texts')} texts){gpu}  {status}")


def read_parity(onnx_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The records of ``<onnx_dir>/parity.json`` (empty when absent).

    Raises:
        ConfigError: the file is not a JSON object of objects.
    """
    path = Path(onnx_dir) / PARITY_FILE
    data = read_json(path, required=False)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path} must map file names to records")
    return data


def list_variants(path: str | Path) -> list[Variant]:
    """Every ONNX file of a model directory (each Transformer folder), with its parity record if any.

    ``file_name`` is relative to the Transformer folder (``module_dir``, ``""`` for the root), as
    ``model_kwargs={"file_name": ...}`` takes it. Sorted by folder, then ``model.onnx`` first.

    Raises:
        ModelNotFoundError: ``path`` is not a directory.
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelNotFoundError(f"Model directory not found: {path}")
    variants = []
    records: dict[Path, dict[str, dict[str, Any]]] = {}
    for onnx_path in root.rglob("*.onnx"):
        module_dir = onnx_path.parent.parent if onnx_path.parent.name == "onnx" else onnx_path.parent
        if module_dir not in records:
            records[module_dir] = read_parity(module_dir / "onnx")
        file_name = onnx_path.relative_to(module_dir).as_posix()
        relative = module_dir.relative_to(root).as_posix()
        variants.append(Variant(file_name, "" if relative == "." else relative, onnx_path.stat().st_size,
                                records[module_dir].get(file_name)))
    order = {"fp32": 0, "O1": 1, "O2": 2, "O3": 3, "O4": 4, "int8": 5, "other": 6}
    return sorted(variants, key=lambda v: (v.module_dir, order[v.kind], v.file_name))


AUTO = "auto"
# ``file_name="auto"``: fastest first, as measured on CPUs (README, Benchmarks). int8 files by family
# (best for this CPU first), then ``onnx/model.onnx``: exported with eager attention, it already runs as
# fast as O2 on CPU (0.9-1.05x across the four model kinds), so the O-levels, which add their own
# differences, are picked only where no ``onnx/model.onnx`` is present.
_SPEED_ORDER = {"int8": 0, "fp32": 1, "O2": 2, "O3": 3, "O1": 4}


@dataclass(frozen=True)
class FileChoice:
    """The file ``file_name="auto"`` picked in one Transformer folder, and why the faster ones were passed over."""

    file_name: str
    reason: str
    rejected: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        """One line: the file, why, and each faster file left out with its reason."""
        left = "; ".join(f"{name}: {why}" for name, why in self.rejected)
        return f"auto -> {self.file_name} ({self.reason})" + (f"; not taken: {left}" if left else "")


def _rejection(variant: Variant, families: list[str]) -> str | None:
    """Why ``variant`` may not be picked automatically on this CPU (``None``: it may)."""
    if variant.kind not in _SPEED_ORDER:
        return "not an exporter variant"
    if variant.gpu_only:
        return "GPU-only (float16)"
    if variant.parity is None:
        return None if variant.kind == "fp32" else "no parity record"
    if not variant.passed:
        return "missed its parity thresholds"
    if variant.kind == "int8":
        if variant.cpu_family not in families:
            return f"this CPU lacks the {variant.cpu_family} instruction set"
        settings = variant.created_by.get("settings")
        if not isinstance(settings, dict) or settings.get("batch_invariant") is not True:
            return "activations quantized per batch (outputs would depend on the rest of the batch)"
    return None


def _copy_rejection(copy: Variant, directory: Path) -> str | None:
    """Why the fast-load copy of the chosen file may not stand in for it (``None``: it may).

    The copy holds ONNX Runtime's own fused operators: it is taken only from the ONNX Runtime line
    (major.minor) that wrote it, with a passed parity record and its weights file (``<file>_data``) present.
    """
    if copy.parity is None or not copy.passed:
        return "no passed parity record"
    import onnxruntime

    written, running = str(copy.created_by.get("onnxruntime", "")), onnxruntime.__version__
    if written.split(".")[:2] != running.split(".")[:2]:
        return f"written by onnxruntime {written or 'unknown'}, this is {running}"
    if not data_file(directory / copy.file_name).is_file():
        return "its weights file is missing"
    return None


def choose_file(directory: str | Path, families: list[str] | None = None, *,
                records: dict[str, dict[str, Any]] | None = None) -> FileChoice:
    """The fastest ONNX file of one Transformer folder that this CPU may use (``file_name="auto"``).

    A file qualifies when its parity record passed its thresholds, it is not GPU-only, and, for
    int8 files, this CPU has the family's instruction set (``families``, default
    :func:`onnx_st.cpu.int8_families`) and the file is batch-invariant. Faster kinds first (int8,
    ``onnx/model.onnx``, then O2, O3, O1 where it is missing); among int8 files, the family order of ``families``.
    The chosen file's fast-load copy (``<name>_fast.onnx``, same outputs, about half the load time) stands in
    for it when its record passed and this ONNX Runtime line wrote it.
    ``records``: the folder's parity records when already read (:meth:`onnx_st.model_dir.ModelDir.parity`).

    Raises:
        ModelNotFoundError: no file qualifies (not even ``onnx/model.onnx`` or ``model.onnx``).
    """
    directory = Path(directory)
    families = int8_families() if families is None else families
    if records is None:
        records = read_parity(directory / "onnx")
    variants = [Variant(p.relative_to(directory).as_posix(), "", p.stat().st_size,
                        records.get(p.relative_to(directory).as_posix()))
                for p in sorted(directory.glob("onnx/*.onnx")) + sorted(directory.glob("*.onnx"))]
    rank = {f: i for i, f in enumerate(families)}

    def order(v: Variant) -> tuple[int, int, str]:
        return _SPEED_ORDER.get(v.kind, 9), rank.get(v.cpu_family or "", len(rank)), v.file_name

    copies = {v.fast_load_source: v for v in variants if v.fast_load_source is not None}
    variants = [v for v in variants if v.fast_load_source is None]
    rejected: list[tuple[str, str]] = []
    for variant in sorted(variants, key=order):
        why = _rejection(variant, families)
        if why is not None:
            rejected.append((variant.file_name, why))
            continue
        record = variant.parity
        reason = ("the default file" if record is None else
                  f"fastest qualifying file: {variant.kind}, parity passed on {record.get('texts')} texts "
                  f"(thresholds {record.get('thresholds')})")
        if variant.kind == "int8":
            reason += f"; CPU families {families}"
        chosen = variant.file_name
        copy = copies.get(chosen)
        if copy is not None:
            why = _copy_rejection(copy, directory)
            if why is None:
                chosen, reason = copy.file_name, f"the fast-load copy of {variant.file_name}: {reason}"
            else:
                rejected.append((copy.file_name, why))
        choice = FileChoice(chosen, reason, tuple(rejected))
        logger.info("%s: %s", directory, choice.summary())
        return choice
    raise ModelNotFoundError(f"file_name='auto': no usable ONNX file in {directory} "
                             f"({'; '.join(f'{n}: {w}' for n, w in rejected) or 'no .onnx files'})")


__all__ = ["AUTO", "PARITY_FILE", "FileChoice", "Variant", "choose_file", "list_variants", "read_parity"]
