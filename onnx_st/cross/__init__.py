"""Rerankers: :class:`CrossEncoder` (alias :class:`Reranker`)."""

from onnx_st.cross.cross_encoder import CrossEncoder, Reranker

__all__ = ["CrossEncoder", "Reranker"]
