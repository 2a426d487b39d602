"""Batch embedding jobs: a corpus file in, Parquet parts out, on one process or on Ray Data.

``onnx-st embed INPUT OUTPUT --model DIR`` is :func:`onnx_st.jobs.runner.run_embed_job`; the
Ray Data callable is :class:`onnx_st.jobs.ray_engine.EmbedBatches`. The modules here import
pyarrow (the ``embed`` extra) and ray (the ``ray`` extra) only when they run, and nothing in
this package is imported by ``import onnx_st``.
"""

from __future__ import annotations
