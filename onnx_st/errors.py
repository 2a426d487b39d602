"""The one exception tree of onnx-st.

::

    OnnxSTError                      base of every error raised on purpose
    ├── ModelLoadError               a model directory cannot be used
    │   ├── ModelNotFoundError       missing directory, repo or file (also FileNotFoundError)
    │   ├── ConfigError              a JSON config is unreadable or holds a value we cannot run
    │   │   └── ConfigImportError    a config names a class that cannot be imported (also ImportError)
    │   │       └── ConfigModuleNotFoundError   ... because its module does not exist (also ModuleNotFoundError)
    │   ├── UnsupportedModuleError   modules.json names a module type the runtime does not run
    │   └── OnnxModelError           an ONNX file is corrupt or its graph does not fit
    ├── ProviderError                an execution provider that is not available was asked for
    ├── MissingExtraError            an optional extra is not installed (also ImportError); names it
    └── InputError                   bad input to encode/predict (also ValueError)

Foreign errors (onnxruntime, tokenizers, json, safetensors) are wrapped with ``raise ... from``
so the original cause stays visible.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "ConfigError",
    "ConfigImportError",
    "ConfigModuleNotFoundError",
    "InputError",
    "MissingExtraError",
    "ModelLoadError",
    "ModelNotFoundError",
    "OnnxModelError",
    "OnnxSTError",
    "ProviderError",
    "UnsupportedModuleError",
    "foreign_errors",
]


class OnnxSTError(Exception):
    """Base class of every error raised by onnx-st."""


class ModelLoadError(OnnxSTError):
    """A model directory cannot be loaded."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """A model directory, Hub repository or required file does not exist."""


class ConfigError(ModelLoadError, ValueError):
    """A configuration file is unreadable or holds an unsupported value."""


class ConfigImportError(ConfigError, ImportError):
    """A config names a class path that cannot be imported (an ImportError, as sentence-transformers raises)."""


class ConfigModuleNotFoundError(ConfigImportError, ModuleNotFoundError):
    """A config names a class in a module that does not exist (a ModuleNotFoundError, as sentence-transformers
    raises)."""


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


@contextmanager
def foreign_errors(error: type[OnnxSTError], context: str) -> Iterator[None]:
    """The one boundary where foreign exceptions become ours: inside the block, any exception that is
    not an :class:`OnnxSTError` is raised again as ``error(f"{context}: {type}: {message}")`` from it.

    Memory errors and interrupts pass through unchanged.
    """
    try:
        yield
    except (OnnxSTError, MemoryError):
        raise
    except RecursionError as exc:
        raise error(f"{context}: nested too deeply ({exc})") from exc
    except Exception as exc:
        raise error(f"{context}: {type(exc).__name__}: {exc}"[:1000]) from exc
