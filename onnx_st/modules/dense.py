"""Dense: a linear layer from safetensors plus its activation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from onnx_st._runtime.config import config_bool, config_int, config_str, read_module_config
from onnx_st._runtime.weights import load_safetensors
from onnx_st.errors import ConfigError, InputError, ModelNotFoundError, OnnxModelError
from onnx_st.functional import activation
from onnx_st.modules.base import Features, LoadContext, Module, module_context

logger = logging.getLogger("onnx_st")
# sentence-transformers' Dense constructor parameters: other config keys are dropped with a warning, as there
_INIT_PARAMETERS = ("in_features", "out_features", "bias", "activation_function", "init_weight", "init_bias",
                    "module_input_name", "module_output_name", "use_residual")


class Dense(Module):
    """``out = activation(x @ W.T + b)`` (plus an optional residual), on ``sentence_embedding`` by default."""

    config_keys = ("in_features", "out_features", "bias", "activation_function", "module_input_name",
                   "module_output_name", "use_residual")
    module_input_name: str

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, activation_name: str | None,
                 module_input_name: str = "sentence_embedding", module_output_name: str | None = None,
                 residual: np.ndarray | None = None, use_residual: bool = False) -> None:
        if weight.ndim != 2:
            raise ConfigError(f"Dense linear.weight must be 2-D (out_features, in_features), got shape {weight.shape}")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ConfigError(f"Dense linear.bias must have shape ({weight.shape[0]},), got {bias.shape}")
        if residual is not None and residual.shape != (weight.shape[0], weight.shape[1]):
            raise ConfigError(f"Dense residual.weight must have shape {weight.shape}, got {residual.shape}")
        if use_residual and residual is None and weight.shape[0] != weight.shape[1]:
            raise ConfigError(f"Dense use_residual without residual.weight needs in_features == out_features, "
                              f"got weight shape {weight.shape}")
        if activation_name == "":
            raise ConfigError("'activation_function' must name a torch activation, got ''")
        try:
            self.activation = activation(activation_name)
        except InputError as exc:
            raise ConfigError(f"'activation_function': {exc}") from exc
        self.activation_function = activation_name
        self.weight_t = np.ascontiguousarray(weight.T.astype(np.float32))
        self.bias = None if bias is None else bias.astype(np.float32)
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name
        self.residual_t = None if residual is None else np.ascontiguousarray(residual.T.astype(np.float32))
        self.use_residual = use_residual
        self.in_features, self.out_features = int(weight.shape[1]), int(weight.shape[0])

    def get_embedding_dimension(self) -> int:
        """``out_features``."""
        return self.out_features

    @property
    def bias_enabled(self) -> bool:
        """Whether the layer adds a bias."""
        return self.bias is not None

    def get_config_dict(self) -> dict[str, Any]:
        """The config sentence-transformers saves (``bias`` as a flag)."""
        return {**super().get_config_dict(), "bias": self.bias_enabled}

    def save(self, output_path: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` (``linear.weight``, ``linear.bias``, ``residual.weight``)."""
        from safetensors.numpy import save_file

        super().save(output_path)
        tensors = {"linear.weight": np.ascontiguousarray(self.weight_t.T)}
        if self.bias is not None:
            tensors["linear.bias"] = self.bias
        if self.residual_t is not None:
            tensors["residual.weight"] = np.ascontiguousarray(self.residual_t.T)
        save_file(tensors, str(Path(output_path) / "model.safetensors"))

    @classmethod
    def load(cls, directory: str | Path, ctx: LoadContext | None = None) -> Dense:
        """Read ``config.json`` and ``model.safetensors`` (``linear.weight``, ``linear.bias``).

        Without ``ctx`` (a Dense loaded on its own) a config without ``module_input_name`` reads
        ``sentence_embedding``; keys that are not Dense parameters are ignored with a warning.
        """
        directory, ctx = module_context(directory, ctx)
        config = read_module_config(directory)
        unknown = sorted(set(config) - set(_INIT_PARAMETERS))
        if unknown:
            logger.warning("Ignoring unrecognized Dense config key(s) %s from %r: not constructor parameters of "
                           "Dense.", unknown, str(directory))
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
        config_path = directory / "config.json"
        if weight.ndim != 2:
            raise ConfigError(f"{path}: linear.weight must be 2-D (out_features, in_features), got shape {weight.shape}")
        expected = (config_int(config, "out_features", None, config_path),
                    config_int(config, "in_features", None, config_path))
        if None not in expected and tuple(weight.shape) != expected:
            raise ConfigError(f"{path}: weight shape {weight.shape} does not match config {expected}")
        use_bias = config_bool(config, "bias", True, config_path)
        if use_bias and "linear.bias" not in tensors:
            raise ConfigError(f"{path} has no 'linear.bias' while {config_path} says bias: true")
        try:
            return cls(weight, tensors["linear.bias"] if use_bias else None,
                       config_str(config, "activation_function", "torch.nn.modules.activation.Tanh", config_path),
                       config_str(config, "module_input_name", ctx.dense_input_name, config_path),
                       config_str(config, "module_output_name", None, config_path),
                       tensors.get("residual.weight"), config_bool(config, "use_residual", False, config_path))
        except ConfigError as exc:
            raise ConfigError(f"{config_path}: {exc}") from exc

    def forward(self, features: Features) -> Features:
        """Apply the layer."""
        x = features[self.module_input_name]
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise OnnxModelError(f"Dense expects {self.module_input_name!r} of size {self.in_features}, "
                                 f"got shape {x.shape}")
        rows = x.reshape(-1, self.in_features)  # one 2-D product: NumPy runs a stacked one outside BLAS (16x slower)
        out = rows @ self.weight_t
        if self.bias is not None:
            out += self.bias
        out = self.activation(out)
        if self.use_residual:
            out = out + (rows if self.residual_t is None else rows @ self.residual_t)
        out = out.reshape(*x.shape[:-1], out.shape[-1])
        return {**features, self.module_output_name: out.astype(np.float32, copy=False)}
