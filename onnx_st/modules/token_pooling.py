"""HierarchicalTokenPooling: fewer document token vectors by Ward clustering (needs SciPy)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnx_st._runtime.config import read_module_config
from onnx_st.errors import ConfigError, InputError
from onnx_st.functional import normalize
from onnx_st.modules.base import Features, LoadContext, Module


def _ward_linkage(vectors: np.ndarray) -> np.ndarray:
    """Ward linkage of ``vectors`` on cosine distance (``1 - dot``, clipped to ``[0, 2]``)."""
    try:
        from scipy.cluster import hierarchy
        from scipy.spatial.distance import squareform
    except ImportError as exc:
        raise ConfigError("HierarchicalTokenPooling needs SciPy: pip install scipy") from exc
    vectors = vectors.astype(np.float32)
    distances = np.clip(1 - vectors @ vectors.T, 0, 2)
    return np.asarray(hierarchy.linkage(squareform(distances, checks=False), method="ward"))


def _ward_labels(vectors: np.ndarray, num_clusters: int | None = None, distance: float | None = None) -> np.ndarray:
    """Cluster labels (0-based, dense) of the Ward tree cut at ``num_clusters`` clusters or at ``distance``."""
    from scipy.cluster import hierarchy

    linkage = _ward_linkage(vectors)
    if distance is not None:
        labels = hierarchy.fcluster(linkage, t=distance, criterion="distance")
    else:
        labels = hierarchy.fcluster(linkage, t=num_clusters, criterion="maxclust")
    return np.unique(np.asarray(labels), return_inverse=True)[1]


class HierarchicalTokenPooling(Module):
    """Keeps the first ``num_protected_tokens`` vectors and replaces the others by the means of Ward
    clusters; L2-normalizes every output vector when ``normalize_embeddings``.

    The Ward tree (cosine distance) of each document is cut at ``n // pool_factor`` clusters, at
    ``max_tokens`` output vectors (protected ones included; shorter documents are kept), or at the
    merge distance ``distance_threshold`` (the three are mutually exclusive).

    Applies to inputs encoded for a task in ``tasks`` (documents by default; no task counts as a document).
    """

    module_input_name = "token_embeddings"
    module_output_name = "token_embeddings"

    def __init__(self, pool_factor: float = 1.0, *, max_tokens: int | None = None,
                 distance_threshold: float | None = None, num_protected_tokens: int = 1,
                 normalize_embeddings: bool = True, tasks: str | Sequence[str] | None = None,
                 use_kernels: bool | None = None, kernel_config: object | None = None) -> None:
        if isinstance(pool_factor, bool) or not isinstance(pool_factor, (int, float)) or not math.isfinite(pool_factor) \
                or pool_factor < 1:
            raise ConfigError(f"pool_factor must be >= 1 and finite, got {pool_factor}.")
        if isinstance(num_protected_tokens, bool) or not isinstance(num_protected_tokens, int) \
                or num_protected_tokens < 0:
            raise ConfigError(f"num_protected_tokens must be >= 0 and an integer, got {num_protected_tokens}.")
        if distance_threshold is not None:
            if isinstance(distance_threshold, bool) or not isinstance(distance_threshold, (int, float)) \
                    or not math.isfinite(distance_threshold) or distance_threshold < 0:
                raise ConfigError("distance_threshold must be finite and >= 0.")
            if pool_factor != 1 or max_tokens is not None:
                raise ConfigError("distance_threshold, max_tokens and a non-default pool_factor are mutually exclusive.")
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
                raise ConfigError(f"max_tokens must be an integer, got {max_tokens!r}.")
            if pool_factor != 1:
                raise ConfigError(f"pool_factor and max_tokens are mutually exclusive, got pool_factor={pool_factor} "
                                  f"and max_tokens={max_tokens}.")
            if max_tokens <= num_protected_tokens:
                raise ConfigError(f"max_tokens must exceed num_protected_tokens to leave room for at least one pooled "
                                  f"token, got max_tokens={max_tokens} and num_protected_tokens={num_protected_tokens}.")
        if use_kernels or kernel_config is not None:
            raise ConfigError("use_kernels and kernel_config require the torch backend")
        self.pool_factor = float(pool_factor)
        self.max_tokens = max_tokens
        self.distance_threshold = None if distance_threshold is None else float(distance_threshold)
        self.num_protected_tokens = num_protected_tokens
        self.normalize_embeddings = bool(normalize_embeddings)
        self.tasks = [tasks] if isinstance(tasks, str) else list(tasks) if tasks is not None else ["document"]

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext) -> HierarchicalTokenPooling:
        """Read ``config.json``; a saved config without ``normalize_embeddings`` loads with ``False``."""
        config: dict[str, Any] = read_module_config(directory) if directory.is_dir() else {}
        return cls(config.get("pool_factor", 1.0), max_tokens=config.get("max_tokens"),
                   distance_threshold=config.get("distance_threshold"),
                   num_protected_tokens=config.get("num_protected_tokens", 1),
                   normalize_embeddings=config.get("normalize_embeddings", False), tasks=config.get("tasks"))

    @property
    def pools(self) -> bool:
        """Whether token vectors are clustered (else only normalized)."""
        return self.pool_factor > 1 or self.max_tokens is not None or self.distance_threshold is not None

    def applies_to(self, task: str | None) -> bool:
        """Whether inputs encoded for ``task`` are pooled (``None`` counts as ``"document"``)."""
        return (task or "document") in self.tasks

    def pool_one(self, embedding: np.ndarray) -> np.ndarray:
        """Pool one ``(tokens, dim)`` matrix."""
        protected, to_pool = embedding[:self.num_protected_tokens], embedding[self.num_protected_tokens:]
        n = len(to_pool)
        if self.max_tokens is not None:
            num_clusters = max(min(self.max_tokens - self.num_protected_tokens, n), 1)
        else:
            num_clusters = max(int(n // self.pool_factor), 1)
        if n > 1 and (self.distance_threshold is not None or num_clusters < n):
            labels = _ward_labels(to_pool, num_clusters, self.distance_threshold)
            sums = np.zeros((int(labels.max()) + 1, embedding.shape[1]), dtype=embedding.dtype)
            np.add.at(sums, labels, to_pool)
            counts = np.bincount(labels).astype(embedding.dtype)
            embedding = np.concatenate([protected, sums / counts[:, None]])
        return normalize(embedding) if self.normalize_embeddings else embedding

    @staticmethod
    def calibrate_distance_threshold(embeddings: Iterable[np.ndarray], *, target_tokens: float,
                                     num_protected_tokens: int = 1) -> float | None:
        """A ``distance_threshold`` that pools these L2-normalized ``(tokens, dim)`` documents to at most
        ``target_tokens`` vectors on average (protected ones included), or ``None`` when no pooling is needed.

        Raises:
            InputError: a non-2D input, no documents, or a budget below the protected tokens.
        """
        from scipy.cluster.hierarchy import maxdists

        if isinstance(target_tokens, bool) or not isinstance(target_tokens, (int, float)) \
                or not math.isfinite(target_tokens) or target_tokens <= 0:
            raise InputError("target_tokens must be finite and > 0.")
        if num_protected_tokens < 0:
            raise InputError(f"num_protected_tokens must be >= 0, got {num_protected_tokens}.")
        heights: list[np.ndarray] = []
        count = total_tokens = minimum_tokens = 0
        for embedding in embeddings:
            array = np.asarray(embedding)
            if array.ndim != 2:
                raise InputError("Calibration embeddings must be 2D arrays.")
            count += 1
            total_tokens += len(array)
            protected = min(num_protected_tokens, len(array))
            to_pool = array[protected:]
            minimum_tokens += protected + min(len(to_pool), 1)
            if len(to_pool) > 1:
                heights.append(maxdists(_ward_linkage(to_pool)))
        if count == 0:
            raise InputError("Provide at least one calibration document.")
        if target_tokens * count < minimum_tokens:
            raise InputError(f"target_tokens must be at least {minimum_tokens / count:g} for these protected tokens.")
        merges = math.ceil(total_tokens - target_tokens * count)
        if merges > 0:
            return float(np.partition(np.concatenate(heights), merges - 1)[merges - 1])
        return None

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
        if not self.pools:
            return {**features, "token_embeddings": normalize(tokens)} if self.normalize_embeddings else features
        mask = features["attention_mask"].astype(bool)
        pooled = [self.pool_one(row[m]) for row, m in zip(tokens, mask)]
        width = max(len(p) for p in pooled)
        padded = np.zeros((len(pooled), width, tokens.shape[-1]), dtype=tokens.dtype)
        for i, p in enumerate(pooled):
            padded[i, :len(p)] = p
        new_mask = np.arange(width)[None, :] < np.array([len(p) for p in pooled])[:, None]
        return {**features, "token_embeddings": padded, "attention_mask": new_mask}
