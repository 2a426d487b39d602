"""``python -m onnx_st``."""

from onnx_st.cli import main

raise SystemExit(main())
