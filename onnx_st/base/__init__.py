"""What the four model classes share: loading, calling conventions, the pipeline of modules, pools."""

from onnx_st.base.loading import load_by_kind, model_class
from onnx_st.base.model import BaseModel

__all__ = ["BaseModel", "load_by_kind", "model_class"]
