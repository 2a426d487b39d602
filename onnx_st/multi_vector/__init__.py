"""Late interaction (ColBERT-style): :class:`MultiVectorEncoder`, its legacy layouts and MaxSim."""

from onnx_st.multi_vector.multi_vector_encoder import MultiVectorEncoder

__all__ = ["MultiVectorEncoder"]
