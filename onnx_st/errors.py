"""The one exception tree of onnx-st.

::

    OnnxSTError                      base of every error raised on purpose
    ├── ModelLoadError               a model directory cannot be used
    │   ├── ModelNotFoundError       missing directory, repo or file (also FileNotFoundError)
    │   ├── ConfigError              a JSON config is unreadable or holds a value we cannot run
    │   ├── UnsupportedModuleError   modules.json names a module type the runtime does not run
    │   └── OnnxModelError           an ONNX file is corrupt or its graph does not fit
    ├── ProviderError                an execution provider that is not available was asked for
    ├── MissingExtraError            an optional extra is not installed (also ImportError); names it
    └── InputError                   bad input to encode/predict (also ValueError)

Foreign errors (onnxruntime, tokenizers, json, safetensors) are wrapped with ``raise ... from``
so the original cause stays visible.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InputError",
    "MissingExtraError",
    "ModelLoadError",
    "ModelNotFoundError",
    "OnnxModelError",
    "OnnxSTError",
    "ProviderError",
    "UnsupportedModuleError",
]


class OnnxSTError(Exception):
    """Base class of every error raised by onnx-st."""


class ModelLoadError(OnnxSTError):
    """A model directory cannot be loaded."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """A model directory, Hub repository or required file does not exist."""


class ConfigError(ModelLoadError, ValueError):
    """A configuration file is unreadable or holds an unsupported value."""


class UnsupportedModuleError(ConfigError):
    """``modules.json`` names a module type the runtime cannot run."""


class OnnxModelError(ModelLoadError):
    """An ONNX file is corrupt or its inputs and outputs do not fit the model."""


class ProviderError(OnnxSTError, ValueError):
    """A requested ONNX Runtime execution provider is not available."""


class MissingExtraError(OnnxSTError, ImportError):
    """A package of an optional extra (``export``, ``embed``, ``ray``...) is missing; the message names the extra."""


class InputError(OnnxSTError, ValueError):
    """Invalid input passed to ``encode``, ``predict`` or a helper."""
