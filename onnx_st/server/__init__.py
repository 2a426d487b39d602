"""HTTP serving of onnx-st models (the ``server`` extra: FastAPI and uvicorn).

``create_app`` serves dense, sparse and reranker models by id with text-embeddings-inference,
Hugging Face Inference API and OpenAI compatible routes; :mod:`onnx_st.serverless` answers the same
payloads on AWS Lambda. Nothing here is imported by ``import onnx_st``.
"""

from __future__ import annotations

from onnx_st.server.app import create_app
from onnx_st.server.registry import ModelRegistry, load_served_model

__all__ = ["ModelRegistry", "create_app", "load_served_model"]
