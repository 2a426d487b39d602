"""StaticEmbedding: mean of per-token vectors, no ONNX graph at all (model2vec-style models)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from ..errors import ConfigError, ModelNotFoundError
from ..weights import load_safetensors
from .base import Features, LoadContext


def fold_model2vec(tensors: dict[str, np.ndarray]) -> np.ndarray:
    """One embedding matrix from ``embedding.weight`` or model2vec's ``embeddings``/``mapping``/``weights``."""
    if "embedding.weight" in tensors:
        return tensors["embedding.weight"].astype(np.float32)
    if "embeddings" not in tensors:
        raise ConfigError(f"Static embedding weights need 'embedding.weight' or 'embeddings'; got {sorted(tensors)}")
    table = tensors["embeddings"].astype(np.float32)
    if "mapping" in tensors:
        table = table[tensors["mapping"].astype(np.int64)]
    if "weights" in tensors:
        table = table * tensors["weights"].astype(np.float32)[:, None]
    return np.ascontiguousarray(table)


class StaticEmbedding:
    """Tokenizes without special tokens or padding and averages the token vectors (EmbeddingBag mean)."""

    def __init__(self, tokenizer: Tokenizer, table: np.ndarray) -> None:
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.table = table
        self.embedding_dimension = int(table.shape[1])
        self.max_seq_length = math.inf  # no truncation, as sentence-transformers reports it

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext) -> StaticEmbedding:
        """Read ``tokenizer.json`` (as is) and ``model.safetensors``."""
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise ModelNotFoundError(f"{directory} has no tokenizer.json")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise ConfigError(f"Cannot read {path}: {exc}") from exc
        return cls(tokenizer, fold_model2vec(load_safetensors(directory / "model.safetensors")))

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        """Token ids of each text, flattened, with offsets."""
        if prompt:
            texts = [prompt + t for t in texts]
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        lengths = np.array([len(i) for i in ids], dtype=np.int64)
        flat = np.fromiter((t for seq in ids for t in seq), dtype=np.int64, count=int(lengths.sum()))
        return {"input_ids": flat, "lengths": lengths}

    def forward(self, features: Features) -> Features:
        """Mean of the token vectors of each text; an empty text gives zeros."""
        lengths = features["lengths"]
        vectors = self.table[features["input_ids"]]
        sums = np.zeros((len(lengths), self.embedding_dimension), dtype=np.float32)
        owners = np.repeat(np.arange(len(lengths)), lengths)
        np.add.at(sums, owners, vectors)
        return {**features, "sentence_embedding": sums / np.maximum(lengths, 1)[:, None].astype(np.float32)}
