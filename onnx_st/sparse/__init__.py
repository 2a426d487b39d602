"""Sparse SPLADE embeddings: :class:`SparseEncoder` and its :class:`SparseEmbeddings`."""

from onnx_st.sparse.sparse_encoder import SparseEncoder
from onnx_st.sparse_embeddings import SparseEmbeddings, SparseVector

__all__ = ["SparseEmbeddings", "SparseEncoder", "SparseVector"]
