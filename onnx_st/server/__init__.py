"""HTTP serving of onnx-st models (the ``server`` extra: FastAPI and uvicorn).

``create_app`` serves dense, sparse and reranker models by id with text-embeddings-inference,
Hugging Face Inference API and OpenAI compatible routes; ``lambda_handler.handler`` answers the
same payloads on AWS Lambda. Nothing here is imported by ``import onnx_st``.
"""

from __future__ import annotations

from .app import create_app
from .registry import ModelRegistry, load_model

__all__ = ["ModelRegistry", "create_app", "load_model"]
