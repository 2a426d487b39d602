"""The ONNX variants of a model directory and their parity records (``onnx/parity.json``).

The exporter (``onnx-st-export --optimize ... --quantize ...``) writes files named as
sentence-transformers names them (``onnx/model_O2.onnx``, ``onnx/model_qint8_avx512_vnni.onnx``,
...) and, next to them, ``onnx/parity.json``: file name -> record of how that file's end-to-end
outputs compare with sentence-transformers (``max_abs_diff``, ``min_cosine``, ``mean_cosine``,
``texts``, ``passed``, ``thresholds``, ``created_by``). Pick a file with ``file_name=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import read_json
from .errors import ConfigError, ModelNotFoundError

PARITY_FILE = "parity.json"
_LEVEL = re.compile(r"model_(O[1-4])\.onnx$")
_INT8 = re.compile(r"model_(q(?:u)?int8)_(\w+)\.onnx$")


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


__all__ = ["PARITY_FILE", "Variant", "list_variants", "read_parity"]
