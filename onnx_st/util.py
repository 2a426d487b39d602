"""What code imports from ``sentence_transformers.util`` for inference, on NumPy: ``from onnx_st.util import ...``.

Similarity functions (dense arrays or onnx-st sparse embeddings), semantic search, paraphrase mining,
community detection, quantization and the small embedding helpers. Results are NumPy arrays where
sentence-transformers returns tensors.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from onnx_st.errors import InputError
from onnx_st.quantization import quantize_embeddings
from onnx_st.retrieval import (
    community_detection,
    information_retrieval,
    paraphrase_mining,
    paraphrase_mining_embeddings,
    semantic_search,
)
from onnx_st.similarity import (
    SimilarityFunction,
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    normalize_embeddings,
    pairwise_angle_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
    pytorch_cos_sim,
    select_max_active_dims,
    truncate_embeddings,
)

__all__ = [
    "SimilarityFunction",
    "community_detection",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "information_retrieval",
    "manhattan_sim",
    "normalize_embeddings",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "paraphrase_mining",
    "paraphrase_mining_embeddings",
    "pytorch_cos_sim",
    "quantize_embeddings",
    "select_max_active_dims",
    "semantic_search",
    "similarity_fn",
    "truncate_embeddings",
]


def similarity_fn(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The all-pairs function of a similarity name (``cosine``, ``dot``, ``euclidean``, ``manhattan``).

    Raises:
        InputError: an unknown name.
    """
    if not isinstance(name, (str, SimilarityFunction)):
        raise InputError(f"Unknown similarity {name!r}; known: {SimilarityFunction.possible_values()}")
    return SimilarityFunction.to_similarity_fn(name)
