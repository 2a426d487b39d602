"""The ``similarity_fn_name`` attribute shared by the dense and sparse encoders, and what they answer from it."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from onnx_st._runtime.config import SIMILARITY_FN_NAMES
from onnx_st.errors import InputError


def check_similarity_fn_name(name: Any) -> str:
    """``name`` (or a :class:`~onnx_st.util.SimilarityFunction`'s value) when it is one of
    :data:`SIMILARITY_FN_NAMES`, else :class:`InputError`."""
    name = getattr(name, "value", name)
    if name not in SIMILARITY_FN_NAMES:
        raise InputError(f"similarity_fn_name must be one of {SIMILARITY_FN_NAMES}, got {name!r}")
    return name


class _Embedder(Protocol):
    """What :class:`SimilarityNamed`'s answers ask of the model they are mixed into."""

    @property
    def similarity_fn_name(self) -> str: ...

    def get_embedding_dimension(self) -> int | None: ...

    def encode(self, inputs: Any) -> Any: ...

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray: ...


class SimilarityNamed:
    """A validated ``similarity_fn_name`` with a per-class default (cosine for dense, dot for sparse), and the
    model interface's answers built on it (``onnx-st info`` and ``onnx-st similarity``)."""

    default_similarity_fn_name = "cosine"
    _similarity_fn_name: str | None = None

    @property
    def similarity_fn_name(self) -> str:
        """``cosine``, ``dot``, ``euclidean`` or ``manhattan`` (the directory's, else the class default)."""
        return self._similarity_fn_name or self.default_similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        self._similarity_fn_name = check_similarity_fn_name(value)

    def describe(self: _Embedder) -> dict[str, Any]:
        """The dimension of the embeddings and the similarity function."""
        return {"embedding_dimension": self.get_embedding_dimension(), "similarity_fn_name": self.similarity_fn_name}

    def similarity_to_source(self: _Embedder, source: str, sentences: list[str]) -> np.ndarray:
        """The model's similarity of ``source``'s embedding with each sentence's."""
        return self.similarity(self.encode([source]), self.encode(sentences))[0]
