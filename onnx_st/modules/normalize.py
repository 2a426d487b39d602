"""Normalize: L2 normalization of the sentence embedding."""

from __future__ import annotations

from pathlib import Path

from onnx_st._runtime.config import config_str, read_module_config
from onnx_st.functional import normalize
from onnx_st.modules.base import Features, LoadContext, Module, module_context


class Normalize(Module):
    """L2-normalizes ``sentence_embedding`` (or the configured ``module_input_name``)."""

    config_keys = ("module_input_name", "module_output_name")
    module_input_name: str

    def __init__(self, module_input_name: str = "sentence_embedding", module_output_name: str | None = None) -> None:
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name

    @classmethod
    def load(cls, directory: str | Path, ctx: LoadContext | None = None) -> Normalize:
        """Read the optional ``config.json`` (the folder may not exist at all); other keys are ignored."""
        directory, ctx = module_context(directory, ctx)
        config = read_module_config(directory) if directory.is_dir() else {}
        path = directory / "config.json"
        return cls(config_str(config, "module_input_name", "sentence_embedding", path),
                   config_str(config, "module_output_name", None, path))

    def forward(self, features: Features) -> Features:
        """Normalize."""
        return {**features, self.module_output_name: normalize(features[self.module_input_name])}
