"""StaticEmbedding: mean of per-token vectors, no ONNX graph at all (model2vec-style models)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from onnx_st._runtime.tokenizer import TextTokenizer
from onnx_st._runtime.weights import load_safetensors
from onnx_st.errors import ConfigError, ModelNotFoundError, foreign_errors
from onnx_st.modules.base import Features, InputModule, LoadContext, with_prompt


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


class StaticEmbedding(InputModule):
    """Tokenizes without special tokens and averages the token vectors of each text (EmbeddingBag mean).

    The ``tokenizer.json`` is used as it is saved: its own truncation, if any, stays.
    """

    config_keys = ()
    tokenizer: TextTokenizer

    def __init__(self, tokenizer: Tokenizer, table: np.ndarray) -> None:
        if table.ndim != 2:
            raise ConfigError(f"StaticEmbedding weights must be 2-D (vocabulary, dimension), got shape {table.shape}")
        vocab = tokenizer.get_vocab_size(with_added_tokens=True)
        if table.shape[0] < vocab:
            raise ConfigError(f"StaticEmbedding weights have {table.shape[0]} rows for a vocabulary of {vocab} tokens")
        truncation = tokenizer.truncation or {}
        self.tokenizer = TextTokenizer(tokenizer, truncation.get("max_length"), add_special_tokens=False,
                                       truncation_side=truncation.get("direction", "right"))
        self.table = table
        self.embedding_dimension = int(table.shape[1])

    def get_embedding_dimension(self) -> int:
        """Width of the embedding table."""
        return self.embedding_dimension

    @property
    def max_seq_length(self) -> float | None:  # type: ignore[override]
        """``math.inf``: static embeddings never truncate, as sentence-transformers reports it."""
        return math.inf if self.tokenizer.max_length is None else self.tokenizer.max_length

    @classmethod
    def load(cls, directory: str | Path, ctx: LoadContext | None = None) -> StaticEmbedding:
        """Read ``tokenizer.json`` (as is) and ``model.safetensors`` (no config, as sentence-transformers)."""
        directory = Path(directory)
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise ModelNotFoundError(f"{directory} has no tokenizer.json")
        with foreign_errors(ConfigError, f"Cannot read {path}"):
            tokenizer = Tokenizer.from_file(str(path))
        return cls(tokenizer, fold_model2vec(load_safetensors(directory / "model.safetensors")))

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        """Token ids of each text (no special tokens), padded to the longest."""
        return dict(self.tokenizer(with_prompt(texts, prompt)))

    def forward(self, features: Features) -> Features:
        """Mean of the token vectors of each text; an empty text gives zeros."""
        attended = features["attention_mask"] > 0
        lengths = attended.sum(axis=1) if attended.ndim == 2 else np.zeros(0, dtype=np.int64)
        vectors = self.table[features["input_ids"][attended]]
        sums = np.zeros((len(lengths), self.embedding_dimension), dtype=np.float32)
        owners = np.repeat(np.arange(len(lengths)), lengths)
        np.add.at(sums, owners, vectors)
        return {**features, "sentence_embedding": sums / np.maximum(lengths, 1)[:, None].astype(np.float32)}
