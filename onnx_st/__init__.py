"""onnx-st: sentence-transformers models on ONNX Runtime and NumPy, without PyTorch."""


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
from .multi_vector import MultiVectorEncoder
from .options import RuntimeOptions
from .quantization import quantize_embeddings
from .session import available_providers
from .similarity import SimilarityFunction
from .sparse import SparseEncoder
from .sparse_types import SparseEmbeddings, SparseVector
from .util import cos_sim, dot_score, semantic_search
from .variants import Variant, list_variants

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
