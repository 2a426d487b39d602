"""``parallel_runs``: batches of one call computed at once give the same bits as one after the other.

Every kind, on its fixtures, with batches small enough that several are in flight; a call's own
settings (truncation side, task, prompt) travel with each batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import onnx_st
from onnx_st import CrossEncoder, MultiVectorEncoder, SentenceTransformer, SparseEncoder
from onnx_st._runtime.tokenizer import truncating_from

from .conftest import fixture_dir, fixture_inputs, fixture_names

RUNS = 3


def _pair(cls: type[Any], name: str, **kwargs: Any) -> tuple[Any, Any]:
    path = str(fixture_dir(name))
    one = cls(path, **kwargs)
    many = cls(path, model_kwargs={"parallel_runs": RUNS}, **kwargs)
    assert many.pipeline.parallel_runs == RUNS and one.pipeline.parallel_runs == 1
    return one, many


def _texts(name: str) -> list[str]:
    texts = list(fixture_inputs(name))
    return texts + [t.upper() for t in texts] + [" ".join(texts[: i + 1]) for i in range(len(texts))]


@pytest.mark.parametrize("name", fixture_names("dense-"))
def test_dense_embeddings_are_the_same_bits(name: str) -> None:
    one, many = _pair(SentenceTransformer, name)
    texts = _texts(name)
    kwargs: dict[str, Any] = {"task": "query"} if name == "dense-router" else {}
    np.testing.assert_array_equal(many.encode(texts, batch_size=2, **kwargs), one.encode(texts, batch_size=2, **kwargs))
    if name == "dense-static":  # a StaticEmbedding has no token embeddings
        return
    tokens_one = one.encode(texts, batch_size=3, output_value="token_embeddings", **kwargs)
    tokens_many = many.encode(texts, batch_size=3, output_value="token_embeddings", **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(tokens_one, tokens_many, strict=True))


@pytest.mark.parametrize("name", fixture_names("sparse-"))
def test_sparse_embeddings_are_the_same_bits(name: str) -> None:
    one, many = _pair(SparseEncoder, name)
    texts = _texts(name)
    kwargs = {"batch_size": 2, "convert_to_sparse_tensor": False}
    np.testing.assert_array_equal(np.stack(many.encode_document(texts, **kwargs)),
                                  np.stack(one.encode_document(texts, **kwargs)))


@pytest.mark.parametrize("name", fixture_names("cross-"))
def test_cross_scores_are_the_same_bits_with_either_truncation_side(name: str) -> None:
    one, many = _pair(CrossEncoder, name)
    inputs = fixture_inputs(name)
    pairs = [tuple(p) for p in inputs["pairs"]] * 3
    np.testing.assert_array_equal(many.predict(pairs, batch_size=2), one.predict(pairs, batch_size=2))
    one.max_length = many.max_length = 12  # long documents lose tokens: the side matters
    with truncating_from("left"):
        left = many.predict(pairs, batch_size=2)
        np.testing.assert_array_equal(left, one.predict(pairs, batch_size=2))
    assert not np.array_equal(left, many.predict(pairs, batch_size=2))


@pytest.mark.parametrize("name", fixture_names("multi-vector-"))
def test_multi_vector_tokens_are_the_same_bits(name: str) -> None:
    one, many = _pair(MultiVectorEncoder, name)
    texts = _texts(name)
    for method in ("encode_query", "encode_document"):
        got = getattr(many, method)(texts, batch_size=2)
        want = getattr(one, method)(texts, batch_size=2)
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True)), method


def test_parallel_runs_is_a_runtime_option_of_every_surface() -> None:
    assert onnx_st.RuntimeOptions.from_env({"ONNX_ST_PARALLEL_RUNS": "2"}).parallel_runs == 2
    model = SentenceTransformer(str(fixture_dir("dense-mean")), options=onnx_st.RuntimeOptions(parallel_runs=2))
    assert model.pipeline.parallel_runs == 2
    model._apply_options(parallel_runs=1)
    assert model.pipeline.parallel_runs == 1


def test_embed_job_with_parallel_runs_writes_the_same_rows(tmp_path: Path) -> None:
    from onnx_st.cli import main

    from .embed_helpers import output, text_rows, write_rows

    source = write_rows(tmp_path / "in.jsonl", text_rows(40))
    common = [str(source), "--model", str(fixture_dir("dense-mean")), "--batch-size", "4", "--no-progress"]
    assert main(["embed", common[0], str(tmp_path / "one"), *common[1:]]) == 0
    assert main(["embed", common[0], str(tmp_path / "two"), *common[1:], "--parallel-runs", "2",
                 "--threads", "2"]) == 0
    assert output(tmp_path / "one").equals(output(tmp_path / "two"))
    assert main(["embed", common[0], str(tmp_path / "bad"), *common[1:], "--parallel-runs", "0"]) == 2


def test_served_with_parallel_runs_answers_as_the_library() -> None:
    import subprocess
    import sys

    import httpx

    from .server_helpers import wait_healthy
    from .test_server_cli import _free_port

    path = fixture_dir("dense-mean")
    texts = _texts("dense-mean") * 2  # several batches of the server's encode
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "onnx_st", "serve", str(path), "--port", str(port),
                             "--parallel-runs", "2", "--max-client-batch-size", str(len(texts)),
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
        with httpx.Client(base_url=url, trust_env=False, timeout=60) as c:
            reply = c.post("/embed", json={"inputs": texts, "normalize": True, "truncate": True})
        assert reply.status_code == 200, reply.text
        want = SentenceTransformer(str(path)).encode(texts, normalize_embeddings=True)
        np.testing.assert_allclose(np.array(reply.json(), dtype=np.float32), want, atol=1e-6)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
