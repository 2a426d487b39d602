"""The side-by-side benchmark runs and prints its rows (``python -m tools.bench``); nothing about speed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT, fixture_dir


@pytest.mark.parametrize(("kind", "fixture"), [("dense", "dense-mean"), ("sparse", "sparse-max-relu"),
                                               ("cross", "cross-1label"), ("multi-vector", "multi-vector-basic")])
def test_bench_prints_onnx_st_and_ort_alone_rows(kind: str, fixture: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--kind", kind, "--model", str(fixture_dir(fixture)), "--texts", "8",
         "--rounds", "1", "--engines", "onnx-st,ort-alone"],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line and not line.startswith("#")}
    assert "of ORT" in rows["engine"]
    assert "not run" not in rows["onnx-st"] and "not run" not in rows["ort-alone"]
    assert "%" in rows["onnx-st"]  # its share of ONNX Runtime alone on the same file
