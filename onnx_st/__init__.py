"""onnx-st: sentence-transformers models on ONNX Runtime and NumPy, without PyTorch."""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .cross import CrossEncoder, Reranker
from .dense import Encoder, SentenceTransformer
from .errors import (
    ConfigError,
    InputError,
    ModelLoadError,
    ModelNotFoundError,
    OnnxModelError,
    OnnxSTError,
    ProviderError,
    UnsupportedModuleError,
)
from .maxsim import maxsim, maxsim_pairwise, to_qdrant_multivector
from .options import RuntimeOptions
from .quantization import quantize_embeddings
from .session import available_providers
from .similarity import SimilarityFunction
from .sparse import SparseEncoder
from .sparse_types import SparseEmbeddings, SparseVector
from .util import cos_sim, dot_score, semantic_search

if _TYPE_CHECKING:
    from .multi_vector import MultiVectorEncoder
    from .variants import Variant, list_variants

# Imported on first use: a cold start of the other kinds does not pay for them.
_LAZY = {"MultiVectorEncoder": "multi_vector", "Variant": "variants", "list_variants": "variants"}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'onnx_st' has no attribute {name!r}")
    value = getattr(_import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CrossEncoder",
    "Encoder",
    "InputError",
    "ModelLoadError",
    "ModelNotFoundError",
    "MultiVectorEncoder",
    "OnnxModelError",
    "OnnxSTError",
    "ProviderError",
    "Reranker",
    "RuntimeOptions",
    "SentenceTransformer",
    "SimilarityFunction",
    "SparseEmbeddings",
    "SparseEncoder",
    "SparseVector",
    "UnsupportedModuleError",
    "Variant",
    "__version__",
    "available_providers",
    "cos_sim",
    "dot_score",
    "list_variants",
    "maxsim",
    "maxsim_pairwise",
    "quantize_embeddings",
    "semantic_search",
    "to_qdrant_multivector",
]
