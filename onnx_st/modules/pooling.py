"""Pooling: token embeddings to one sentence embedding (``1_Pooling/config.json``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import read_module_config
from ..errors import ConfigError
from ..functional import POOLING_MODES, exclude_prompt, pool
from .base import Features, LoadContext

_LEGACY_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def parse_pooling_modes(config: dict[str, object]) -> tuple[str, ...]:
    """The pooling modes of a config, new (``pooling_mode``) or legacy (``pooling_mode_*_tokens``) keys."""
    mode = config.get("pooling_mode")
    if mode is None:
        modes = tuple(m for key, m in _LEGACY_KEYS.items() if config.get(key))
        modes = modes or ("mean",)
    else:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)  # type: ignore[arg-type]
    for m in modes:
        if m not in POOLING_MODES:
            raise ConfigError(f"Invalid pooling mode {m!r}; valid pooling modes are {POOLING_MODES}")
    return modes


class Pooling:
    """Pools ``token_embeddings`` into ``sentence_embedding`` (modes concatenated in order)."""

    def __init__(self, embedding_dimension: int, modes: tuple[str, ...], include_prompt: bool = True) -> None:
        self.modes = modes
        self.include_prompt = include_prompt
        self.embedding_dimension = embedding_dimension * len(modes)

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext) -> Pooling:
        """Read ``config.json`` of the pooling folder."""
        config = read_module_config(directory)
        dim = config.get("embedding_dimension", config.get("word_embedding_dimension"))
        if not isinstance(dim, int):
            raise ConfigError(f"{directory}/config.json needs an integer embedding_dimension")
        return cls(dim, parse_pooling_modes(config), bool(config.get("include_prompt", True)))

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding``."""
        tokens = features["token_embeddings"]
        mask = features.get("attention_mask")
        if mask is None or mask.shape[-1] != tokens.shape[1]:
            mask = np.ones(tokens.shape[:2], dtype=np.int64)
        prompt_length = features.get("prompt_length")
        if not self.include_prompt and prompt_length:
            mask_for_pooling = exclude_prompt(mask, int(prompt_length))
        else:
            mask_for_pooling = mask
        outputs = [pool(tokens, mask_for_pooling, mode, padding_mask=mask) for mode in self.modes]
        embedding = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=-1)
        return {**features, "sentence_embedding": embedding.astype(np.float32, copy=False)}

