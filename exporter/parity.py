"""Parity records: each ONNX file of an exported directory, run by onnx-st, against sentence-transformers.

A record compares end-to-end outputs (``encode`` embeddings, sparse ``encode`` weights as dense
rows, or ``predict`` scores) of sentence-transformers (PyTorch) and of the onnx-st runtime loading
that very file, on a fixed sample of texts (:func:`exporter.corpus.benchmark_sentences`). Records
are kept in ``<transformer dir>/onnx/parity.json``: file name (relative to the Transformer folder,
as the runtime's ``file_name``) -> record.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sentence_transformers.base.model import BaseModel

from onnx_st.base import model_class
from onnx_st.cpu import cpu_flags
from onnx_st.kinds import get_kind

from . import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from .corpus import benchmark_sentences, sample_pairs
from .export import ResolvedKind, load_st_model, model_kind

PARITY_FILE = "parity.json"
PARITY_KINDS = ("dense", "sparse", "cross", "multi-vector")  # the kinds ParityChecker compares end to end
DEFAULT_TEXTS = 500
BATCH_SIZE = 32
# Thresholds by variant class: "max_*" are upper bounds, the others lower bounds.
THRESHOLDS: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_diff": 1e-5},  # model.onnx, O1, O2: the same arithmetic, reordered at most
    "gelu_approx": {"max_abs_diff": 2e-3, "min_cosine": 0.9999},  # O3: tanh GELU replaces erf GELU
    "fp16": {"min_cosine": 0.999, "mean_cosine": 0.9999},  # O4, GPU-only
    "int8": {"mean_cosine": 0.99, "min_cosine": 0.98},
}
# Cross-encoders score each pair with one number: the correlation of all scores replaces the cosines.
CROSS_THRESHOLDS: dict[str, dict[str, float]] = {
    "fp32": {"max_abs_diff": 1e-5},
    "gelu_approx": {"max_abs_diff": 2e-3, "score_correlation": 0.9999},
    "fp16": {"score_correlation": 0.9999},
    "int8": {"score_correlation": 0.99},
}


def thresholds_for(variant_class: str, kind: str) -> dict[str, float]:
    """Thresholds of a variant class (``fp32``, ``gelu_approx``, ``fp16``, ``int8``) for a model kind."""
    return dict((CROSS_THRESHOLDS if get_kind(kind).scores_pairs else THRESHOLDS)[variant_class])


@dataclass
class ParityRecord:
    """How one ONNX file's outputs compare with sentence-transformers."""

    file_name: str
    max_abs_diff: float
    mean_abs_diff: float
    min_cosine: float | None
    mean_cosine: float | None
    texts: int
    score_correlation: float | None
    thresholds: dict[str, float]
    passed: bool = False
    gpu_only: bool = False
    provider: str = "CPUExecutionProvider"
    created_by: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.passed = not self.failures()

    def failures(self) -> list[str]:
        """Each threshold missed, as ``"name value < bound"`` text (empty when all are met)."""
        missed = []
        for name, bound in self.thresholds.items():
            value = getattr(self, name, None)
            if value is None:
                missed.append(f"{name} not measured")
            elif name.startswith("max_") and not value <= bound:
                missed.append(f"{name} {value:.3g} > {bound:g}")
            elif not name.startswith("max_") and not value >= bound:
                missed.append(f"{name} {value:.6f} < {bound:g}")
        return missed

    def to_json(self) -> dict[str, Any]:
        """The record as stored in ``parity.json`` (without the file name, which is its key)."""
        data = asdict(self)
        del data["file_name"]
        return data

    def summary(self) -> str:
        """One line: the numbers and ``ok`` or what was missed."""
        cos = (f"min cos {self.min_cosine:.6f}  mean cos {self.mean_cosine:.6f}"
               if self.min_cosine is not None and self.mean_cosine is not None
               else f"score corr {self.score_correlation:.6f}" if self.score_correlation is not None else "")
        status = "ok" if self.passed else "FAILED: " + "; ".join(self.failures())
        gpu = "  [GPU-only]" if self.gpu_only else ""
        return (f"{self.file_name:36s} max|diff| {self.max_abs_diff:.2e}  {cos}  "
                f"({self.texts} texts, {self.provider}){gpu}  {status}")


def compare(expected: np.ndarray, actual: np.ndarray) -> dict[str, float | None]:
    """Largest and mean absolute difference, min/mean row cosine (rows of 2+ values) and the correlation of all values."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.shape != actual.shape:
        raise ValueError(f"output shapes differ: {expected.shape} vs {actual.shape}")
    diff = np.abs(expected - actual)
    result: dict[str, float | None] = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
                                       "min_cosine": None, "mean_cosine": None, "score_correlation": None}
    if expected.ndim == 2 and expected.shape[1] > 1:
        norms = np.linalg.norm(expected, axis=1) * np.linalg.norm(actual, axis=1)
        both_zero = norms == 0
        cos = np.where(both_zero, 1.0, (expected * actual).sum(axis=1) / np.where(both_zero, 1.0, norms))
        result["min_cosine"], result["mean_cosine"] = float(cos.min()), float(cos.mean())
    if expected.size > 1:
        a, b = expected.ravel() - expected.mean(), actual.ravel() - actual.mean()
        scale = float(np.linalg.norm(a) * np.linalg.norm(b))
        result["score_correlation"] = float((a * b).sum() / scale) if scale > 0 else float(np.array_equal(a, b))
    return result


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import sentence_transformers
    import torch

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__, "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_flags": _cpu_flags()}


def _cpu_flags() -> list[str]:
    """The int8-relevant instruction sets this CPU reports (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    return sorted(cpu_flags() & {"avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})


class ParityChecker:
    """Computes the sentence-transformers reference once, then compares any ONNX file of the directory with it."""

    def __init__(self, model_dir: str | Path, n_texts: int = DEFAULT_TEXTS, model: BaseModel | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.model = model if model is not None else load_st_model(str(self.model_dir))
        self.kind: ResolvedKind = model_kind(self.model)
        # Drawn after sentence_transformers is imported: the corpus reads stdlib docstrings that imports can alter.
        self.inputs = sample_inputs(self.kind, n_texts)
        digest = hashlib.sha256(json.dumps(self.inputs, ensure_ascii=False).encode("utf8")).hexdigest()[:16]
        self.sample = {"source": sample_source(self.kind),
                       "n": n_texts, "sha256_16": digest}
        self._reference: np.ndarray | None = None

    @property
    def reference(self) -> np.ndarray:
        """sentence-transformers outputs on the sample (computed on first use)."""
        if self._reference is None:
            self._reference = _st_outputs(self.model, self.kind, self.inputs)
        return self._reference

    def thresholds(self, variant_class: str) -> dict[str, float]:
        """:func:`thresholds_for` this model's kind."""
        return thresholds_for(variant_class, self.kind)

    def check(self, file_name: str, thresholds: Mapping[str, float], *, gpu_only: bool = False,
              provider: str | None = None, created_by: Mapping[str, Any] | None = None) -> ParityRecord:
        """Compare ``file_name`` (relative to each Transformer folder) with the reference."""
        chosen = provider or _default_provider(gpu_only)
        actual = onnx_st_outputs(self.model_dir, self.kind, self.inputs, {"file_name": file_name, "provider": chosen})
        metrics = compare(self.reference, actual)
        origin = {"tool": "onnx-st-export", **dict(created_by or {}), "sample": self.sample, "versions": _versions()}
        return ParityRecord(file_name=file_name, texts=len(self.inputs), thresholds=dict(thresholds),
                            gpu_only=gpu_only, provider=chosen, created_by=origin, **metrics)  # type: ignore[arg-type]


def _default_provider(gpu_only: bool) -> str:
    import onnxruntime as ort

    return "CUDAExecutionProvider" if gpu_only and "CUDAExecutionProvider" in ort.get_available_providers() \
        else "CPUExecutionProvider"


def sample_inputs(kind: ResolvedKind, n: int, *, seed: int = 0) -> list[Any]:
    """The sample a model kind is judged on: (query, document) pairs for rerankers, sentences otherwise."""
    return list(sample_pairs(n, seed=seed)) if get_kind(kind).scores_pairs else benchmark_sentences(n, seed=seed)


def sample_source(kind: ResolvedKind) -> str:
    """The :mod:`exporter.corpus` function a kind's sample is drawn from, as parity records name it."""
    return get_kind(kind).sample_source


def onnx_st_outputs(model_dir: str | Path, kind: ResolvedKind, inputs: Sequence[Any],
                    model_kwargs: Mapping[str, Any]) -> np.ndarray:
    """onnx-st's outputs on ``inputs`` as one array, comparable with :func:`_st_outputs`.

    Embeddings (dense), vocabulary-wide vectors (sparse), scores (cross), or every document token
    vector as one row (multi-vector): the model's ``parity_outputs``.
    """
    model = model_class(kind)(str(model_dir), model_kwargs=dict(model_kwargs))
    return model.parity_outputs(list(inputs), batch_size=BATCH_SIZE)


# sentence-transformers' outputs that onnx-st's ``parity_outputs`` equal, by the class name (ModelKind.model_type)
_ST_OUTPUTS: dict[str, Callable[[Any, list[Any]], np.ndarray]] = {
    "SentenceTransformer": lambda model, texts: np.asarray(model.encode(
        texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)),
    "SparseEncoder": lambda model, texts: model.encode(
        texts, batch_size=BATCH_SIZE, show_progress_bar=False).to_dense().numpy(),
    "MultiVectorEncoder": lambda model, texts: np.concatenate(model.encode_document(
        texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)),
    "CrossEncoder": lambda model, texts: np.asarray(model.predict(
        texts, batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)),
}


def _st_outputs(model: BaseModel, kind: ResolvedKind, inputs: Sequence[Any]) -> np.ndarray:
    return _ST_OUTPUTS[get_kind(kind).model_type](model, list(inputs))


def parity_path(onnx_dir: str | Path) -> Path:
    """``<onnx_dir>/parity.json``."""
    return Path(onnx_dir) / PARITY_FILE


def write_records(onnx_dir: str | Path, records: Sequence[ParityRecord]) -> Path:
    """Merge ``records`` into ``<onnx_dir>/parity.json`` (other files' records are kept); returns its path."""
    path = parity_path(onnx_dir)
    existing: dict[str, Any] = json.loads(path.read_text("utf8")) if path.is_file() else {}
    existing.update({r.file_name: r.to_json() for r in records})
    path.write_text(json.dumps(dict(sorted(existing.items())), indent=2) + "\n", encoding="utf8")
    return path


__all__ = [
    "CROSS_THRESHOLDS",
    "PARITY_FILE",
    "PARITY_KINDS",
    "THRESHOLDS",
    "ParityChecker",
    "ParityRecord",
    "compare",
    "onnx_st_outputs",
    "parity_path",
    "sample_inputs",
    "thresholds_for",
    "write_records",
]
