"""onnx-st: sentence-transformers models on ONNX Runtime and NumPy, without PyTorch."""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from onnx_st._runtime.session import available_providers
from onnx_st.cross.cross_encoder import CrossEncoder, Reranker
from onnx_st.dense.sentence_transformer import Encoder, SentenceTransformer
from onnx_st.errors import (
    ConfigError,
    InputError,
    ModelLoadError,
    ModelNotFoundError,
    OnnxModelError,
    OnnxSTError,
    ProviderError,
    UnsupportedModuleError,
)
from onnx_st.maxsim import maxsim, maxsim_pairwise, to_qdrant_multivector
from onnx_st.options import RuntimeOptions
from onnx_st.quantization import quantize_embeddings
from onnx_st.similarity import SimilarityFunction
from onnx_st.sparse.sparse_encoder import SparseEncoder
from onnx_st.sparse_embeddings import SparseEmbeddings, SparseVector
from onnx_st.util import cos_sim, dot_score, semantic_search

if _TYPE_CHECKING:
    from onnx_st._runtime.variants import Variant, list_variants
    from onnx_st.multi_vector.multi_vector_encoder import MultiVectorEncoder

# Imported on first use: a cold start of the other kinds does not pay for them.
_LAZY = {"MultiVectorEncoder": "multi_vector", "Variant": "_runtime.variants", "list_variants": "_runtime.variants"}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'onnx_st' has no attribute {name!r}")
    value = getattr(_import_module(f"onnx_st.{module}"), name)
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
