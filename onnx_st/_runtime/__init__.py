"""The private runtime core: config values, tokenizer, ONNX sessions, file choice and run budgets.

Nothing here is public API; the model classes, the surfaces and the exporter use what the
``onnx_st`` package and its public modules export.
"""
