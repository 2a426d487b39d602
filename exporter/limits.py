"""Accepted differences of an export, shared by the exporter command and export on load (no torch import)."""

DEFAULT_ATOL = 1e-3
"""Largest accepted difference between an ONNX graph and PyTorch (``onnx-st-export --atol``)."""
