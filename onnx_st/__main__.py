"""``python -m onnx_st``."""

from .cli import main

raise SystemExit(main())
