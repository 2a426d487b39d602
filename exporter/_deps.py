"""Fail fast, with the install command, when the build-time ``export`` extra is missing.

Importing this module raises :class:`onnx_st.errors.MissingExtraError` (an :class:`ImportError`);
every exporter module that needs torch imports it first, so torch-free helpers in the package stay
importable without the extra.
"""

from __future__ import annotations

from onnx_st.extras import install_command, missing_modules, require_extra

REQUIRED: tuple[str, ...] = ("torch", "sentence_transformers", "transformers", "onnx", "onnxruntime")
EXTRA = "export"
INSTALL_HINT = install_command(EXTRA)


def missing() -> list[str]:
    """Names of the required packages that cannot be imported."""
    return missing_modules(REQUIRED)


def require() -> None:
    """Raise :class:`~onnx_st.errors.MissingExtraError` naming the missing packages and the install command."""
    require_extra(EXTRA, "The onnx-st exporter", REQUIRED)


require()
