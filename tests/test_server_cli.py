"""``onnx-st serve`` in a subprocess: arguments, loopback binding, background loading, token."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from onnx_st.cli import build_parser, serve_models
from onnx_st.errors import InputError, ModelNotFoundError

from .conftest import fixture_dir
from .server_helpers import SEED_SENTENCES, SEED_SOURCE, wait_healthy


def test_model_arguments() -> None:
    dense, cross = str(fixture_dir("dense-mean")), str(fixture_dir("cross-1label"))
    assert serve_models([dense, f"rr={cross}"], None) == {"dense-mean": fixture_dir("dense-mean"),
                                                          "rr": fixture_dir("cross-1label")}
    assert list(serve_models([dense, cross], ["a", "b"])) == ["a", "b"]
    with pytest.raises(ModelNotFoundError):
        serve_models(["x=/no/such/dir"], None)
    with pytest.raises(InputError):
        serve_models([dense, dense], None)
    args = build_parser().parse_args(["serve", dense])
    assert (args.host, args.port, args.token, args.max_client_batch_size) == ("127.0.0.1", 8080, None, 32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_subprocess() -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "onnx_st", "serve", f"dense={fixture_dir('dense-mean')}",
           f"sparse={fixture_dir('sparse-max-relu')}", "--port", str(port), "--token", "tok",
           "--max-client-batch-size", "4", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, url)
        auth = {"Authorization": "Bearer tok"}
        body = {"inputs": {"source_sentence": SEED_SOURCE, "sentences": SEED_SENTENCES}}
        with httpx.Client(base_url=url, trust_env=False, timeout=30) as c:
            assert c.post("/models/dense", json=body).status_code == 401
            assert len(c.post("/models/dense", json=body, headers=auth).json()) == 3
            assert c.post("/embed_sparse", json={"inputs": ["a"] * 5}, headers=auth).status_code == 422
            assert c.post("/embed_sparse", json={"inputs": ["a"] * 4}, headers=auth).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_model_options_per_model() -> None:
    from onnx_st.options import per_model_options as model_options

    dense, cross = str(fixture_dir("dense-mean")), str(fixture_dir("cross-1label"))
    args = build_parser().parse_args(["serve", f"a={dense}", f"b={cross}", "--threads", "2",
                                      "--model-option", "a:file-name=onnx/model_qint8_avx2.onnx",
                                      "--model-option", "b:max_run_tokens=none", "--model-option", "b:threads=1",
                                      "--parallel-runs", "2", "--model-option", "b:parallel-runs=1"])
    options = model_options(args, ["a", "b"])
    assert (options["a"].file_name, options["a"].intra_op_num_threads) == ("onnx/model_qint8_avx2.onnx", 2)
    assert (options["a"].parallel_runs, options["b"].parallel_runs) == (2, 1)
    assert (options["b"].file_name, options["b"].intra_op_num_threads, options["b"].max_batch_tokens) == \
        (None, 1, None)
    for bad in ("c:threads=1", "a:threads", "a:colour=red", "a:threads=many", "a:parallel-runs=0",
                "a:parallel-runs=65"):
        with pytest.raises(InputError):
            model_options(build_parser().parse_args(["serve", dense, "--model-option", bad]), ["a"])


def test_a_directory_that_is_not_a_model_fails_at_start(tmp_path: Path) -> None:
    broken = tmp_path / "broken"  # its graph is not ONNX (a directory without one would be exported on load)
    shutil.copytree(fixture_dir("dense-mean"), broken)
    (broken / "onnx" / "model.onnx").write_bytes(b"not an onnx graph")
    empty = tmp_path / "empty"
    empty.mkdir()
    for path in (broken, empty):
        done = subprocess.run([sys.executable, "-m", "onnx_st", "serve", f"m={path}", "--port", str(_free_port())],
                              check=False, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "onnx-st: error:" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
