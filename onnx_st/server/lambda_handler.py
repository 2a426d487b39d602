"""The AWS Lambda handler under the path earlier releases documented; it lives in :mod:`onnx_st.serverless.handler`."""

from onnx_st.serverless.handler import handler

__all__ = ["handler"]
