"""The ``similarity_fn_name`` attribute shared by the dense and sparse encoders."""

from __future__ import annotations

from typing import Any

from onnx_st._runtime.config import SIMILARITY_FN_NAMES
from onnx_st.errors import InputError


def check_similarity_fn_name(name: Any) -> str:
    """``name`` (or a :class:`~onnx_st.util.SimilarityFunction`'s value) when it is one of
    :data:`SIMILARITY_FN_NAMES`, else :class:`InputError`."""
    name = getattr(name, "value", name)
    if name not in SIMILARITY_FN_NAMES:
        raise InputError(f"similarity_fn_name must be one of {SIMILARITY_FN_NAMES}, got {name!r}")
    return name


class SimilarityNamed:
    """A validated ``similarity_fn_name`` with a per-class default (cosine for dense, dot for sparse)."""

    default_similarity_fn_name = "cosine"
    _similarity_fn_name: str | None = None

    @property
    def similarity_fn_name(self) -> str:
        """``cosine``, ``dot``, ``euclidean`` or ``manhattan`` (the directory's, else the class default)."""
        return self._similarity_fn_name or self.default_similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        self._similarity_fn_name = check_similarity_fn_name(value)
