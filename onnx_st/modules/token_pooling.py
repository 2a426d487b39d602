"""HierarchicalTokenPooling: fewer document token vectors by Ward clustering (needs SciPy)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnx_st._runtime.config import read_module_config
from onnx_st.errors import ConfigError
from onnx_st.functional import normalize
from onnx_st.modules.base import Features, LoadContext, Module


def _ward_labels(vectors: np.ndarray, num_clusters: int) -> np.ndarray:
    """Cluster labels (0-based) of Ward linkage on cosine distance, cut at ``num_clusters``."""
    try:
        from scipy.cluster import hierarchy
        from scipy.spatial.distance import squareform
    except ImportError as exc:
        raise ConfigError("HierarchicalTokenPooling needs SciPy: pip install scipy") from exc
    distances = np.clip(1 - vectors @ vectors.T, 0, 2)
    linkage = hierarchy.linkage(squareform(distances, checks=False), method="ward")
    return np.asarray(hierarchy.fcluster(linkage, t=num_clusters, criterion="maxclust")) - 1


class HierarchicalTokenPooling(Module):
    """Keeps the first ``num_protected_tokens`` vectors and replaces the others by the means of
    ``n // pool_factor`` Ward clusters; L2-normalizes every output vector when ``normalize_embeddings``.

    Applies to inputs encoded for a task in ``tasks`` (documents by default; no task counts as a document).
    """

    module_input_name = "token_embeddings"
    module_output_name = "token_embeddings"

    def __init__(self, pool_factor: float = 1.0, *, num_protected_tokens: int = 1, normalize_embeddings: bool = True,
                 tasks: str | Sequence[str] | None = None) -> None:
        if isinstance(pool_factor, bool) or not isinstance(pool_factor, (int, float)) or pool_factor < 1:
            raise ConfigError(f"pool_factor must be a number >= 1, got {pool_factor!r}")
        if isinstance(num_protected_tokens, bool) or not isinstance(num_protected_tokens, int) \
                or num_protected_tokens < 0:
            raise ConfigError(f"num_protected_tokens must be an integer >= 0, got {num_protected_tokens!r}")
        self.pool_factor = float(pool_factor)
        self.num_protected_tokens = num_protected_tokens
        self.normalize_embeddings = bool(normalize_embeddings)
        self.tasks = [tasks] if isinstance(tasks, str) else list(tasks) if tasks is not None else ["document"]

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext) -> HierarchicalTokenPooling:
        """Read ``config.json``; a saved config without ``normalize_embeddings`` loads with ``False``."""
        config: dict[str, Any] = read_module_config(directory) if directory.is_dir() else {}
        return cls(config.get("pool_factor", 1.0), num_protected_tokens=config.get("num_protected_tokens", 1),
                   normalize_embeddings=config.get("normalize_embeddings", False), tasks=config.get("tasks"))

    def applies_to(self, task: str | None) -> bool:
        """Whether inputs encoded for ``task`` are pooled (``None`` counts as ``"document"``)."""
        return (task or "document") in self.tasks

    def pool_one(self, embedding: np.ndarray) -> np.ndarray:
        """Pool one ``(tokens, dim)`` matrix."""
        protected, to_pool = embedding[:self.num_protected_tokens], embedding[self.num_protected_tokens:]
        num_clusters = max(int(len(to_pool) // self.pool_factor), 1)
        if num_clusters < len(to_pool):
            labels = _ward_labels(to_pool.astype(np.float32), num_clusters)
            _, inverse = np.unique(labels, return_inverse=True)
            sums = np.zeros((int(inverse.max()) + 1, embedding.shape[1]), dtype=embedding.dtype)
            np.add.at(sums, inverse, to_pool)
            counts = np.bincount(inverse).astype(embedding.dtype)
            embedding = np.concatenate([protected, sums / counts[:, None]])
        return normalize(embedding) if self.normalize_embeddings else embedding

    def pool(self, embeddings: list[np.ndarray], task: str | None = None) -> list[np.ndarray]:
        """Pool a list of ``(tokens, dim)`` matrices encoded for ``task`` (unchanged for other tasks)."""
        if not self.applies_to(task):
            return embeddings
        return [self.pool_one(np.asarray(e, dtype=np.float32)) for e in embeddings]

    def forward(self, features: Features) -> Features:
        """Pool the masked token vectors of each row and right-pad them again with a new mask."""
        task = features.get("task")
        if not self.applies_to(task) or len(features["token_embeddings"]) == 0:
            return features
        tokens = features["token_embeddings"]
        if self.pool_factor <= 1:
            return {**features, "token_embeddings": normalize(tokens)} if self.normalize_embeddings else features
        mask = features["attention_mask"].astype(bool)
        pooled = [self.pool_one(row[m]) for row, m in zip(tokens, mask)]
        width = max(len(p) for p in pooled)
        padded = np.zeros((len(pooled), width, tokens.shape[-1]), dtype=tokens.dtype)
        for i, p in enumerate(pooled):
            padded[i, :len(p)] = p
        new_mask = np.arange(width)[None, :] < np.array([len(p) for p in pooled])[:, None]
        return {**features, "token_embeddings": padded, "attention_mask": new_mask}
