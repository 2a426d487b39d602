"""Graph-level check of an exported directory: PyTorch Transformer outputs vs. ONNX Runtime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from sentence_transformers.base.modules.transformer import Transformer

from . import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from .export import iter_transformer_modules, load_st_model, model_kind
from .limits import DEFAULT_ATOL
from .onnx_export import ONNX_FILE, ONNX_SUBDIR, masked_max_abs_diff, sample_features

SAMPLE_TEXTS: tuple[str, ...] = (
    "",
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "MIXED case Text With CAPITALS and lower case.",
    "Punctuation: commas, periods... semicolons; dashes - and (parentheses)!?",
    "Numbers such as 42, 3.14159 and 2024-01-01 appear in texts.",
    "a",
    "   leading and trailing spaces   ",
    "Ünïcödé characters: café, naïve, Zürich, 東京, emoji 🙂.",
    "How do I export a sentence-transformers model to ONNX?",
    "Sparse retrieval weighs vocabulary terms; dense retrieval compares vectors.",
    "The cat sat on the mat. The dog sat on the log.",
    "Short.",
    " ".join(f"word{i % 17} and more text number {i}." for i in range(60)),
)
_BATCH_SIZE = 4


@dataclass(frozen=True)
class GraphCheck:
    """Comparison of one exported graph with its PyTorch module."""

    module_dir: str
    output_name: str
    max_abs_diff: float
    num_inputs: int


@dataclass
class VerifyReport:
    """Result of :func:`verify_export`; ``checks`` is empty for models without a Transformer."""

    st_dir: Path
    kind: str
    checks: list[GraphCheck] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        """Largest difference over all graphs (0.0 when nothing was exported)."""
        return max((check.max_abs_diff for check in self.checks), default=0.0)

    def passed(self, atol: float = DEFAULT_ATOL) -> bool:
        """Whether every graph is within ``atol`` of PyTorch."""
        return self.max_abs_diff <= atol

    def summary(self) -> str:
        """Human-readable one line per graph."""
        if not self.checks:
            return f"{self.st_dir} ({self.kind}): no ONNX graph (model has no Transformer module)"
        lines = [f"{self.st_dir} ({self.kind}): largest difference {self.max_abs_diff:.3e}"]
        for check in self.checks:
            where = check.module_dir or "."
            graph = f"{where}/{ONNX_SUBDIR}/{ONNX_FILE}"
            lines.append(f"  {graph} [{check.output_name}] max |diff| = {check.max_abs_diff:.3e}")
        return "\n".join(lines)


def _compare_module(module: Transformer, onnx_path: Path, texts: Sequence[str]) -> tuple[str, float]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_names = [i.name for i in session.get_inputs()]
    output_name = session.get_outputs()[0].name
    worst = 0.0
    for start in range(0, len(texts), _BATCH_SIZE):
        features = sample_features(module, texts[start : start + _BATCH_SIZE])
        with torch.inference_mode():
            expected = module(dict(features))[module.module_output_name].float().numpy()
        feeds = {name: features[name].to(torch.long).numpy() for name in input_names}
        actual = session.run([output_name], feeds)[0]
        worst = max(worst, masked_max_abs_diff(expected, actual, features["attention_mask"].numpy()))
    return output_name, worst


def verify_export(st_dir: str | Path, sample_texts: Sequence[str] | None = None) -> VerifyReport:
    """Compare raw Transformer outputs (``last_hidden_state`` / ``logits``) of PyTorch and ONNX Runtime.

    Loads ``st_dir`` with sentence-transformers, tokenizes ``sample_texts`` (default
    :data:`SAMPLE_TEXTS`; pairs of neighbouring texts for cross-encoders) with each Transformer
    module, and records the attention-masked maximum absolute difference per graph.
    """
    st_dir = Path(st_dir)
    texts = list(sample_texts) if sample_texts is not None else list(SAMPLE_TEXTS)
    model = load_st_model(str(st_dir))
    for module in model.modules():
        if hasattr(module, "auto_model"):
            module.auto_model.float()
    report = VerifyReport(st_dir=st_dir, kind=model_kind(model))
    for folder, module in iter_transformer_modules(model):
        onnx_path = st_dir / folder / ONNX_SUBDIR / ONNX_FILE
        if not onnx_path.is_file():
            report.checks.append(GraphCheck(folder, "missing", float("inf"), 0))
            continue
        output_name, diff = _compare_module(module, onnx_path, texts)
        report.checks.append(GraphCheck(folder, output_name, diff, len(texts)))
    return report


def print_report(report: VerifyReport) -> None:
    """Print :meth:`VerifyReport.summary`."""
    print(report.summary())


__all__ = ["SAMPLE_TEXTS", "GraphCheck", "VerifyReport", "print_report", "verify_export"]
