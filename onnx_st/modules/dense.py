"""Dense (a linear layer from safetensors plus its activation) and Normalize."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import read_module_config
from ..errors import ConfigError, ModelNotFoundError
from ..functional import activation, normalize
from ..weights import load_safetensors
from .base import Features, LoadContext


class Dense:
    """``out = activation(x @ W.T + b)`` (plus an optional residual), on ``sentence_embedding`` by default."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, activation_name: str | None,
                 input_name: str = "sentence_embedding", output_name: str | None = None,
                 residual: np.ndarray | None = None, use_residual: bool = False) -> None:
        self.weight_t = np.ascontiguousarray(weight.T.astype(np.float32))
        self.bias = None if bias is None else bias.astype(np.float32)
        self.activation = activation(activation_name)
        self.input_name = input_name
        self.output_name = output_name or input_name
        self.residual_t = None if residual is None else np.ascontiguousarray(residual.T.astype(np.float32))
        self.use_residual = use_residual
        self.embedding_dimension = int(weight.shape[0])

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext) -> Dense:
        """Read ``config.json`` and ``model.safetensors`` (``linear.weight``, ``linear.bias``)."""
        config = read_module_config(directory)
        path = directory / "model.safetensors"
        if not path.is_file():
            hint = " (pickle weights are never loaded: re-save with safetensors, e.g. via onnx-st-export)" \
                if (directory / "pytorch_model.bin").is_file() else ""
            raise ModelNotFoundError(f"Dense weights {path} not found{hint}")
        tensors = load_safetensors(path)
        try:
            weight = tensors["linear.weight"]
        except KeyError as exc:
            raise ConfigError(f"{path} has no 'linear.weight'; keys: {sorted(tensors)}") from exc
        expected = (config.get("out_features"), config.get("in_features"))
        if None not in expected and tuple(weight.shape) != expected:
            raise ConfigError(f"{path}: weight shape {weight.shape} does not match config {expected}")
        return cls(weight, tensors.get("linear.bias") if config.get("bias", True) else None,
                   config.get("activation_function", "torch.nn.modules.activation.Tanh"),
                   config.get("module_input_name", ctx.dense_input_name), config.get("module_output_name"),
                   tensors.get("residual.weight"), bool(config.get("use_residual", False)))

    def forward(self, features: Features) -> Features:
        """Apply the layer."""
        x = features[self.input_name]
        out = x @ self.weight_t
        if self.bias is not None:
            out = out + self.bias
        out = self.activation(out)
        if self.use_residual:
            out = out + (x if self.residual_t is None else x @ self.residual_t)
        return {**features, self.output_name: out.astype(np.float32, copy=False)}


class Normalize:
    """L2-normalizes ``sentence_embedding`` (or the configured key)."""

    embedding_dimension = None

    def __init__(self, input_name: str = "sentence_embedding", output_name: str | None = None) -> None:
        self.input_name = input_name
        self.output_name = output_name or input_name

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext) -> Normalize:
        """Read the optional ``config.json`` (the folder may not exist at all)."""
        config = read_module_config(directory) if directory.is_dir() else {}
        return cls(config.get("module_input_name", "sentence_embedding"), config.get("module_output_name"))

    def forward(self, features: Features) -> Features:
        """Normalize."""
        return {**features, self.output_name: normalize(features[self.input_name])}
