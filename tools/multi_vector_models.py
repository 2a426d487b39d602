"""A multi-vector (ColBERT-style) model on real weights for parity tests and benchmarks.

No PyPI package carries a trained ColBERT model, so this copies all-MiniLM-L6-v2's encoder and
tokenizer files (no sentence-transformers files) into a folder and loads it with
sentence-transformers' ``MultiVectorEncoder`` under ``torch.manual_seed(0)``, which adds a seeded
384->128 token-level ``Dense``, a ``MultiVectorMask`` and a token-level ``Normalize``; it saves that
and exports it with :func:`exporter.export_model`. Both directories are cached under
:func:`tools.pypi_models.exported` until the export code changes.
"""

from __future__ import annotations

import shutil
import string
from pathlib import Path

from tools.pypi_models import exported, minilm_dir, source_digest

SEED = 0
_BARE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.txt")


def _stamp() -> str:
    return source_digest("export.py", "onnx_export.py", "multi_vector_models.py", seed=f"{SEED}")


def build_minilm_multi_vector(target: Path, *, seed: int = SEED) -> Path:
    """Save a ``MultiVectorEncoder`` built from MiniLM's bare encoder under ``torch.manual_seed(seed)``."""
    import torch
    from sentence_transformers import MultiVectorEncoder

    bare = target.parent / f"{target.name}-bare"
    if bare.exists():
        shutil.rmtree(bare)
    bare.mkdir(parents=True)
    for name in _BARE_FILES:
        if (minilm_dir() / name).is_file():
            shutil.copy(minilm_dir() / name, bare / name)
    torch.manual_seed(seed)
    model = MultiVectorEncoder(str(bare), device="cpu")
    if target.exists():
        shutil.rmtree(target)
    model.save_pretrained(str(target))
    shutil.rmtree(bare)
    return target


def build_expansion_variant(base: Path, target: Path) -> Path:
    """The base model with ColBERT's settings: queries expanded with [MASK] to 32 tokens, documents cut
    at 180 tokens, punctuation skipped in documents, ``[Q] `` / ``[D] `` prompts."""
    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask

    model = MultiVectorEncoder(str(base), device="cpu", prompts={"query": "[Q] ", "document": "[D] "})
    model[0].query_expansion = {"strategy": "fixed", "length": 32}
    model[0].document_length = 180
    mask = next(m for m in model if isinstance(m, MultiVectorMask))
    mask.skiplist_words = list(string.punctuation)
    mask.resolve_with_tokenizer(model.tokenizer)
    if target.exists():
        shutil.rmtree(target)
    model.save_pretrained(str(target))
    return target


def minilm_multi_vector(variant: str = "base") -> tuple[Path, Path]:
    """``(sentence-transformers directory, exported onnx-st directory)`` of the MiniLM multi-vector model.

    ``variant``: ``"base"`` (as sentence-transformers builds it) or ``"expansion"`` (see
    :func:`build_expansion_variant`).
    """
    from exporter import export_model

    name = "minilm-multi-vector" if variant == "base" else f"minilm-multi-vector-{variant}"
    source, target = exported(f"{name}-st"), exported(name)
    stamp = target / ".export-stamp"
    if stamp.is_file() and stamp.read_text() == _stamp() and source.is_dir():
        return source, target
    if variant == "base":
        build_minilm_multi_vector(source)
    elif variant == "expansion":
        build_expansion_variant(minilm_multi_vector("base")[0], source)
    else:
        raise ValueError(f"unknown variant {variant!r}; known: base, expansion")
    export_model(str(source), target, kind="multi-vector", overwrite=True)
    stamp.write_text(_stamp())
    return source, target


if __name__ == "__main__":
    for name in ("base", "expansion"):
        print(name, "\t".join(str(p) for p in minilm_multi_vector(name)))
