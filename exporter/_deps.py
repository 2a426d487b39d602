"""Fail fast, with the install command, when the build-time ``export`` extra is missing.

Importing this module raises :class:`ImportError`; every exporter module that needs torch
imports it first, so torch-free helpers in the package stay importable without the extra.
"""

from __future__ import annotations

import importlib.util

REQUIRED: tuple[str, ...] = ("torch", "sentence_transformers", "transformers", "onnx", "onnxruntime")
INSTALL_HINT = 'pip install "onnx-st[export]"'


def missing() -> list[str]:
    """Names of the required packages that cannot be imported."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def require() -> None:
    """Raise :class:`ImportError` naming the missing packages and the install command."""
    absent = missing()
    if absent:
        raise ImportError(
            f"The onnx-st exporter needs {', '.join(absent)} (missing). "
            f"Install the build-time extra with: {INSTALL_HINT}"
        )


require()
