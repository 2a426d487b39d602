"""RuntimeOptions: one object, the same names from keywords, flags and environment variables."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pytest

from onnx_st import InputError, RuntimeOptions, SentenceTransformer, SparseEncoder
from onnx_st.cpu import cpu_count
from onnx_st.modules.transformer import Transformer
from onnx_st.options import CPU, DEFAULT_LOGITS_BUDGET_MIB, DEFAULT_MAX_BATCH_TOKENS, MAX_PARALLEL_RUNS

from .conftest import fixture_dir, fixture_inputs


def _parse(argv: list[str]) -> RuntimeOptions:
    parser = argparse.ArgumentParser()
    RuntimeOptions.add_arguments(parser)
    return RuntimeOptions.from_args(parser.parse_args(argv))


def test_defaults_are_the_same_from_every_surface() -> None:
    default = RuntimeOptions()
    assert RuntimeOptions.from_kwargs() == default == _parse([]) == RuntimeOptions.from_env({})
    assert default.providers == (CPU,) and default.max_batch_tokens == DEFAULT_MAX_BATCH_TOKENS
    assert default.logits_budget_mib == DEFAULT_LOGITS_BUDGET_MIB


def test_flags_and_environment_build_the_same_object_as_keywords() -> None:
    kwargs = RuntimeOptions.from_kwargs(provider="CUDAExecutionProvider", provider_options={"device_id": 1},
                                        file_name="onnx/model_O2.onnx", intra_op_num_threads=2,
                                        inter_op_num_threads=1, max_batch_tokens=None, logits_budget_mib=32.0,
                                        parallel_runs=2)
    flags = _parse(["--provider", "CUDAExecutionProvider", "--provider-option", "device_id=1", "--file-name",
                    "onnx/model_O2.onnx", "--threads", "2", "--inter-op-threads", "1", "--max-run-tokens", "none",
                    "--logits-budget-mib", "32", "--parallel-runs", "2"])
    env = RuntimeOptions.from_env({"ONNX_ST_PROVIDER": "CUDAExecutionProvider",
                                   "ONNX_ST_PROVIDER_OPTIONS": '{"device_id": 1}',
                                   "ONNX_ST_FILE_NAME": "onnx/model_O2.onnx", "ONNX_ST_THREADS": "2",
                                   "ONNX_ST_INTER_OP_THREADS": "1", "ONNX_ST_MAX_RUN_TOKENS": "none",
                                   "ONNX_ST_LOGITS_BUDGET_MIB": "32", "ONNX_ST_PARALLEL_RUNS": "2"})
    assert kwargs == flags == env
    assert kwargs.providers == (("CUDAExecutionProvider", {"device_id": 1}), CPU)


def test_device_picks_the_provider() -> None:
    assert RuntimeOptions.from_kwargs(device="cpu").providers == (CPU,)
    assert RuntimeOptions.from_kwargs(device="cuda:1").providers == (("CUDAExecutionProvider", {"device_id": 1}),
                                                                      CPU)
    assert _parse(["--device", "cuda"]).provider == "CUDAExecutionProvider"


@pytest.mark.parametrize("kwargs", [
    {"provider": 123}, {"providers": "CPUExecutionProvider"}, {"providers": [("CPU", "x")]}, {"providers": []},
    {"provider_options": ["a"]}, {"file_name": ""}, {"file_name": 3}, {"intra_op_num_threads": "two"},
    {"intra_op_num_threads": 0}, {"inter_op_num_threads": -1}, {"intra_op_num_threads": True},
    {"max_batch_tokens": 0}, {"max_batch_tokens": 1.5}, {"logits_budget_mib": 0}, {"logits_budget_mib": "big"},
    {"logits_budget_mib": float("nan")}, {"device": "tpu"}, {"device": "cuda:x"}, {"device": 0},
    {"parallel_runs": 0}, {"parallel_runs": -2}, {"parallel_runs": True}, {"parallel_runs": 2.0},
    {"parallel_runs": "2"}, {"parallel_runs": None}, {"parallel_runs": MAX_PARALLEL_RUNS + 1},
])
def test_bad_values_are_input_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        RuntimeOptions.from_kwargs(**kwargs)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("THREADS", "two", "ONNX_ST_THREADS"), ("PROVIDER_OPTIONS", "{", "ONNX_ST_PROVIDER_OPTIONS"),
    ("LOGITS_BUDGET_MIB", "x", "ONNX_ST_LOGITS_BUDGET_MIB"), ("MAX_RUN_TOKENS", "-3", "max_batch_tokens"),
    ("PROVIDER_OPTIONS", "[1]", "provider_options"), ("PARALLEL_RUNS", "two", "ONNX_ST_PARALLEL_RUNS"),
    ("PARALLEL_RUNS", "-1", "parallel_runs"), ("PARALLEL_RUNS", "0", "parallel_runs"), ("PARALLEL_RUNS", "100000", "parallel_runs"),
])
def test_bad_environment_values_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        RuntimeOptions.from_env({f"ONNX_ST_{name}": value})


def test_front_classes_take_the_options_object_and_keywords_override_it() -> None:
    path = fixture_dir("dense-mean")
    options = RuntimeOptions(max_batch_tokens=64, intra_op_num_threads=1)
    model = SentenceTransformer(path, options=options)
    assert model.options == options
    transformer = model.modules[0]
    assert isinstance(transformer, Transformer) and transformer.max_batch_tokens == 64
    both = SentenceTransformer(path, options=options, max_batch_tokens=None, model_kwargs={"intra_op_num_threads": 2})
    assert both.options.max_batch_tokens is None and both.options.intra_op_num_threads == 2
    texts = fixture_inputs("dense-mean")
    np.testing.assert_allclose(model.encode(texts), both.encode(texts), atol=1e-6)


def test_sparse_logits_budget_is_a_runtime_option() -> None:
    path = fixture_dir("sparse-max-relu")
    assert SparseEncoder(path, logits_budget_mib=1.0).options.logits_budget_mib == 1.0
    assert SparseEncoder(path, options=RuntimeOptions(logits_budget_mib=2.0)).logits_budget_mib == 2.0


def test_unknown_model_kwargs_and_wrong_options_type_are_refused() -> None:
    with pytest.raises(InputError, match="Unknown model_kwargs"):
        SentenceTransformer(fixture_dir("dense-mean"), model_kwargs={"fil_name": "x"})
    with pytest.raises(InputError, match="RuntimeOptions"):
        SentenceTransformer(fixture_dir("dense-mean"), options={"file_name": "x"})  # type: ignore[arg-type]


def test_options_travel_by_value_through_a_dict() -> None:
    options = RuntimeOptions.from_kwargs(provider="CUDAExecutionProvider", provider_options={"device_id": 0},
                                         file_name="onnx/model_O2.onnx", max_batch_tokens=None,
                                         logits_budget_mib=8.0)
    assert RuntimeOptions.from_dict(options.to_dict()) == options
    import json

    assert RuntimeOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    with pytest.raises(InputError, match="Unknown runtime options"):
        RuntimeOptions.from_dict({"provider": "x"})


def test_parallel_runs_share_the_cores_unless_threads_are_set() -> None:
    assert RuntimeOptions().run_threads() == 0  # ONNX Runtime's default: every core
    assert RuntimeOptions(parallel_runs=2).run_threads() == max(1, cpu_count() // 2)
    assert RuntimeOptions(parallel_runs=MAX_PARALLEL_RUNS).run_threads() == 1
    assert RuntimeOptions(parallel_runs=2, intra_op_num_threads=3).run_threads() == 3
    model = SentenceTransformer(str(fixture_dir("dense-mean")), model_kwargs={"parallel_runs": 3})
    assert model.options.parallel_runs == 3 and model.pipeline.parallel_runs == 3
    assert SentenceTransformer(str(fixture_dir("dense-mean")), options=RuntimeOptions(parallel_runs=2),
                               model_kwargs={"file_name": "onnx/model.onnx"}).options.parallel_runs == 2
