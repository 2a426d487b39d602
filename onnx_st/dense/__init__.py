"""Dense embeddings: :class:`SentenceTransformer` (alias :class:`Encoder`)."""

from onnx_st.dense.sentence_transformer import Encoder, SentenceTransformer

__all__ = ["Encoder", "SentenceTransformer"]
