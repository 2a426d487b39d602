"""ColBERT-style query expansion and per-task lengths of a Transformer, as sentence-transformers 6 applies them.

``sentence_bert_config.json`` may carry ``query_length``, ``document_length`` and ``query_expansion``
(``{"strategy": "fixed" | "min", "attend": bool, "token": str | None, "length": int}``). With
expansion, query batches are padded to ``length`` tokens and the padding positions within it become
the expansion token (the tokenizer's mask token by default), marked in ``query_expansion_positions``
so :class:`~onnx_st.modules.multi_vector_mask.MultiVectorMask` scores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from onnx_st.errors import ConfigError

STRATEGIES = ("fixed", "min")
_KEYS = {"strategy", "attend", "token", "length"}


@dataclass(frozen=True)
class QueryExpansion:
    """A validated ``query_expansion`` config."""

    strategy: str
    length: int
    attend: bool = False
    token: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> QueryExpansion | None:
        """Validate the config dict as sentence-transformers does; ``None`` means no expansion.

        Raises:
            ConfigError: unknown keys, an unknown strategy, a non-bool ``attend`` or a bad ``length``.
        """
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise ConfigError(f"query_expansion must be an object or null, got {raw!r}")
        unknown = set(raw) - _KEYS
        if unknown:
            raise ConfigError(f"query_expansion has unknown keys {sorted(unknown)}; valid keys: {sorted(_KEYS)}")
        strategy = raw.get("strategy")
        if strategy not in STRATEGIES:
            raise ConfigError(f"query_expansion['strategy'] must be one of {STRATEGIES}, got {strategy!r}")
        attend = raw.get("attend", False)
        if not isinstance(attend, bool):
            raise ConfigError(f"query_expansion['attend'] must be a bool, got {attend!r}")
        length = raw.get("length")
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise ConfigError(f"query_expansion strategy={strategy!r} requires 'length', a positive integer, "
                              f"got {length!r}")
        token = raw.get("token")
        if token is not None and not isinstance(token, str):
            raise ConfigError(f"query_expansion['token'] must be a string or null, got {token!r}")
        return cls(strategy, length, attend, token)

    def query_max_length(self, query_length: int | None, default: int | None) -> int | None:
        """Truncation length of query batches: ``length`` (fixed), else at least ``length``."""
        if self.strategy == "fixed":
            return self.length
        return max(query_length, self.length) if query_length is not None else default

    def apply(self, features: dict[str, np.ndarray], expansion_id: int | None) -> dict[str, np.ndarray]:
        """Widen the batch to ``length``, swap its padding within ``length`` for ``expansion_id``, mark it."""
        ids, mask = features["input_ids"], features["attention_mask"]
        out = dict(features)
        missing = self.length - ids.shape[1]
        if missing > 0:
            for key in ("input_ids", "attention_mask", "token_type_ids"):
                if key in out:
                    out[key] = np.pad(out[key], ((0, 0), (0, missing)))
            ids, mask = out["input_ids"], out["attention_mask"]
        positions = (mask == 0) & (np.arange(ids.shape[1])[None, :] < self.length)
        if expansion_id is not None:
            out["input_ids"] = np.where(positions, expansion_id, ids)
        out["query_expansion_positions"] = positions
        if self.attend:
            out["attention_mask"] = np.where(positions, 1, mask).astype(mask.dtype)
        return out
