"""A reranker on real weights for parity tests and benchmarks.

No PyPI package carries a trained cross-encoder, so this builds one from all-MiniLM-L6-v2's real
encoder (its BERT layers and pooler) under a seeded classification head, saves it with
sentence-transformers' ``CrossEncoder`` and exports it with :func:`exporter.export_model`.
Both directories are cached under :func:`tools.pypi_models.exported` until the export code changes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tools.pypi_models import exported, minilm_dir, source_digest

MAX_LENGTH = 128
SEED = 0
HEAD_STD = 1.0  # logits with a standard deviation near 0.75 over varied pairs


def _stamp(num_labels: int) -> str:
    return source_digest("export.py", "onnx_export.py", "reranker_models.py", seed=f"{num_labels}-{SEED}-{MAX_LENGTH}-{HEAD_STD}")


def build_minilm_reranker(num_labels: int, target: Path, *, seed: int = SEED) -> Path:
    """Save a ``CrossEncoder`` with MiniLM's encoder and a seeded ``num_labels`` head into ``target``."""
    import torch
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules.transformer import Transformer

    torch.manual_seed(seed)
    transformer = Transformer(str(minilm_dir()), transformer_task="sequence-classification",
                              config_kwargs={"num_labels": num_labels}, max_seq_length=MAX_LENGTH)
    head = transformer.auto_model.classifier
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # far wider than the 0.02 default: MiniLM's pooled outputs differ little between pairs
        head.weight.copy_(HEAD_STD * torch.randn(head.weight.shape, generator=generator))
        head.bias.copy_(0.1 * torch.randn(head.bias.shape, generator=generator))
    model = CrossEncoder(modules=[transformer], device="cpu")
    if target.exists():
        shutil.rmtree(target)
    model.save(str(target), safe_serialization=True)
    return target


def minilm_reranker(num_labels: int = 1) -> tuple[Path, Path]:
    """``(sentence-transformers directory, exported onnx-st directory)`` of the MiniLM reranker."""
    from exporter import export_model

    name = f"minilm-reranker-{num_labels}label"
    source, target = exported(f"{name}-st"), exported(name)
    stamp = target / ".export-stamp"
    if stamp.is_file() and stamp.read_text() == _stamp(num_labels) and source.is_dir():
        return source, target
    build_minilm_reranker(num_labels, source)
    export_model(str(source), target, kind="cross", overwrite=True)
    stamp.write_text(_stamp(num_labels))
    return source, target
