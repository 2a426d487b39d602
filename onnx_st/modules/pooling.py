"""Pooling: token embeddings to one sentence embedding (``1_Pooling/config.json``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from onnx_st._runtime.config import check_init_keys, config_bool, read_module_config
from onnx_st.errors import ConfigError, OnnxModelError
from onnx_st.functional import POOLING_MODES, exclude_prompt, pool
from onnx_st.modules.base import Features, LoadContext, Module, module_context

_LEGACY_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# the keys a Pooling config may hold: sentence-transformers' constructor parameters, the old name of
# embedding_dimension and the legacy boolean modes (both converted on load there too)
_CONFIG_KEYS = ("embedding_dimension", "pooling_mode", "include_prompt", "word_embedding_dimension", *_LEGACY_KEYS)


def check_pooling_modes(modes: tuple[str, ...]) -> None:
    """Raises ConfigError (a ValueError) on the first invalid mode, in sentence-transformers' wording."""
    for m in modes:
        if m not in POOLING_MODES:
            raise ConfigError(f"Invalid pooling mode: {m!r}. Valid pooling modes are: {POOLING_MODES}.")


def parse_pooling_modes(config: dict[str, object]) -> tuple[str, ...]:
    """The pooling modes of a config, new (``pooling_mode``) or legacy (``pooling_mode_*_tokens``) keys."""
    mode = config.get("pooling_mode")
    if mode is None:
        modes = tuple(m for key, m in _LEGACY_KEYS.items() if config.get(key))
        modes = modes or ("mean",)
    elif isinstance(mode, str):
        modes = (mode,)
    elif isinstance(mode, list) and mode and all(isinstance(m, str) for m in mode):
        modes = tuple(mode)
    else:
        raise ConfigError(f"must be a pooling mode or a non-empty list of them ({POOLING_MODES}), "
                          f"got {mode!r}")
    check_pooling_modes(modes)
    return modes


class Pooling(Module):
    """Pools ``token_embeddings`` into ``sentence_embedding`` (modes concatenated in order)."""

    config_keys = ("embedding_dimension", "pooling_mode", "include_prompt")
    module_input_name = "token_embeddings"

    def __init__(self, embedding_dimension: int, modes: str | tuple[str, ...], include_prompt: bool = True) -> None:
        modes = (modes,) if isinstance(modes, str) else tuple(modes)
        check_pooling_modes(modes)
        self.embedding_dimension = embedding_dimension  # of each token embedding
        self.modes = modes
        self.include_prompt = include_prompt

    @property
    def pooling_mode(self) -> str | list[str]:
        """The mode, or the list of modes, as saved."""
        return self.modes[0] if len(self.modes) == 1 else list(self.modes)

    def get_embedding_dimension(self) -> int:
        """Token embedding size times the number of modes."""
        return self.embedding_dimension * len(self.modes)

    @classmethod
    def load(cls, directory: str | Path, ctx: LoadContext | None = None) -> Pooling:
        """Read ``config.json`` of the pooling folder.

        Raises:
            ConfigError: an invalid pooling mode, or a key that is not a Pooling parameter.
        """
        directory, ctx = module_context(directory, ctx)
        config = read_module_config(directory)
        path = directory / "config.json"
        check_init_keys(config, _CONFIG_KEYS, "Pooling", path)
        dim = config.get("embedding_dimension", config.get("word_embedding_dimension"))
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ConfigError(f"{path}: embedding_dimension must be a positive integer, got {dim!r}")
        try:
            modes = parse_pooling_modes(config)
        except ConfigError as exc:
            raise ConfigError(f"{path}: 'pooling_mode': {exc}") from exc
        return cls(dim, modes, config_bool(config, "include_prompt", True, path))

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding``."""
        tokens = features["token_embeddings"]
        if tokens.ndim != 3 or tokens.shape[-1] != self.embedding_dimension:
            raise OnnxModelError(f"Pooling expects token embeddings of shape (batch, seq, {self.embedding_dimension}), "
                                 f"the model gave {tokens.shape}")
        mask = features.get("attention_mask")
        if mask is None:
            mask = np.ones(tokens.shape[:2], dtype=np.int64)
        elif mask.shape != tokens.shape[:2]:
            raise OnnxModelError(f"Pooling expects token embeddings for (batch, seq) = {mask.shape}, "
                                 f"the model gave {tokens.shape}")
        prompt_length = features.get("prompt_length")
        if not self.include_prompt and prompt_length:
            mask_for_pooling = exclude_prompt(mask, int(prompt_length))
        else:
            mask_for_pooling = mask
        outputs = [pool(tokens, mask_for_pooling, mode, padding_mask=mask) for mode in self.modes]
        embedding = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=-1)
        return {**features, "sentence_embedding": embedding.astype(np.float32, copy=False)}

