"""MultiVectorMask: the per-token scoring mask of a late-interaction (ColBERT-style) model."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from onnx_st._runtime.config import read_module_config
from onnx_st._runtime.tokenizer import TextTokenizer
from onnx_st.errors import ConfigError
from onnx_st.modules.base import Features, LoadContext, Module

logger = logging.getLogger("onnx_st")
CONFIG_KEYS = ("skiplist_words", "skiplist_tasks", "keep_only_token_ids")


def _string_list(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"MultiVectorMask {key} must be a list of strings, got {value!r}")
    return list(value)


class MultiVectorMask(Module):
    """Replaces ``attention_mask`` with the mask of the token vectors that are returned and scored.

    Real tokens count; for ``task="query"`` the query expansion positions count too; for tasks in
    ``skiplist_tasks`` (documents by default, no task counts as a document) tokens whose id is in
    the skiplist are dropped; for non-query tasks ``keep_only_token_ids`` restricts to those ids.
    Reads the task from ``features["task"]``.
    """

    module_input_name = "token_embeddings"
    module_output_name = "attention_mask"

    def __init__(self, skiplist_words: Sequence[str] | None = None, *, skiplist_tasks: str | Sequence[str] | None = None,
                 keep_only_token_ids: Sequence[int] | None = None) -> None:
        self.skiplist_words = list(skiplist_words or [])
        tasks = [skiplist_tasks] if isinstance(skiplist_tasks, str) else skiplist_tasks
        self.skiplist_tasks = list(tasks) if tasks is not None else ["document"]
        self.keep_only_token_ids = None if keep_only_token_ids is None else [int(i) for i in keep_only_token_ids]
        self.skiplist_ids: np.ndarray | None = None

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext) -> MultiVectorMask:
        """Read ``config.json`` (``skiplist_words``, ``skiplist_tasks``, ``keep_only_token_ids``)."""
        config = read_module_config(directory) if directory.is_dir() else {}
        tasks = config.get("skiplist_tasks")
        keep = config.get("keep_only_token_ids")
        if keep is not None and (not isinstance(keep, list) or not all(isinstance(i, int) for i in keep)):
            raise ConfigError(f"MultiVectorMask keep_only_token_ids must be a list of integers, got {keep!r}")
        return cls(_string_list(config.get("skiplist_words") or [], "skiplist_words"),
                   skiplist_tasks=tasks if tasks is None or isinstance(tasks, str)
                   else _string_list(tasks, "skiplist_tasks"),
                   keep_only_token_ids=keep)

    def resolve_with_tokenizer(self, tokenizer: TextTokenizer) -> None:
        """Turn ``skiplist_words`` into token ids; words that are not one vocabulary token are dropped."""
        ids: list[int] = []
        unresolved: list[str] = []
        for word in self.skiplist_words:
            token_id = tokenizer.token_id(word)
            if token_id is None:
                unresolved.append(word)
            else:
                ids.append(token_id)
        if unresolved:
            logger.warning("Skiplist words %s are not single vocabulary tokens for this tokenizer; dropping them",
                           unresolved)
        self.skiplist_ids = np.array(sorted(set(ids)), dtype=np.int64) if ids else None

    def config(self) -> dict[str, Any]:
        """The module's ``config.json`` content."""
        return {"skiplist_words": self.skiplist_words, "skiplist_tasks": self.skiplist_tasks,
                "keep_only_token_ids": self.keep_only_token_ids}

    def forward(self, features: Features) -> Features:
        """Write the scoring mask into ``attention_mask`` (a bool array)."""
        if "input_ids" not in features:
            return features
        task = features.get("task")
        input_ids = features["input_ids"]
        mask = features["attention_mask"].astype(bool)
        positions = features.get("query_expansion_positions")
        if task == "query" and positions is not None:
            mask = mask | positions.astype(bool)
        if (task or "document") in self.skiplist_tasks and self.skiplist_ids is not None:
            mask = mask & ~np.isin(input_ids, self.skiplist_ids)
        if task != "query" and self.keep_only_token_ids:
            mask = mask & np.isin(input_ids, np.asarray(self.keep_only_token_ids, dtype=np.int64))
        return {**features, "attention_mask": mask}
