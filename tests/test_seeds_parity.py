"""The users' documents run on onnx-st with only the import line changed, and print what sentence-transformers prints.

The scripts in ``tests/seeds/`` are the code of the seed documents with ``sentence_transformers``
replaced by ``onnx_st`` in the import. They load ``sentence-transformers/all-MiniLM-L6-v2`` by
name, so each test lays the exported real model out as a Hugging Face cache and runs offline; one lays
out the model as the Hub serves it, without ONNX files, and the script exports it on first load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onnx_st.export_hook import EXPORT_CACHE_ENV

from .test_export_on_load import RUNTIME_ONLY
from .test_hub import make_hub_cache

pytestmark = pytest.mark.real
SEEDS = Path(__file__).parent / "seeds"
SHARED_SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def _run(script: str, cache: Path, cwd: Path, module: str = "onnx_st", code: str | None = None,
         **env_extra: str) -> str:
    code = code if code is not None else (SEEDS / script).read_text()
    if module != "onnx_st":
        code = code.replace("from onnx_st import", f"from {module} import")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(SEEDS.parents[1]),
           **env_extra}
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture()
def hub_cache(tmp_path: Path, minilm_onnx_dir: Path) -> Path:
    cache = tmp_path / "hub"
    make_hub_cache(cache, "sentence-transformers/all-MiniLM-L6-v2", minilm_onnx_dir)
    return cache


def test_scripts_differ_from_the_seeds_only_in_the_import() -> None:
    if not SHARED_SEEDS.is_dir():  # outside the project workspace the documents are not beside the clone
        return
    seed = (SHARED_SEEDS / "001_80f6d922e3e15bcf.txt").read_text()
    ours = (SEEDS / "onnx_backend_check.py").read_text()
    original = ours.replace("from onnx_st import SentenceTransformer", "from sentence_transformers import "
                            "SentenceTransformer")
    assert all(line.strip() in seed for line in original.splitlines())


def _seed_lines() -> list[str]:
    """What seed 001 says its script prints."""
    import onnxruntime as ort

    return ["backend: onnx", f"available providers: {', '.join(ort.get_available_providers())}",
            "embedding shape: (2, 384)", "saved ONNX file: all-minilm-l6-v2-onnx/onnx/model.onnx",
            "reloaded backend: onnx", "reloaded shape: (1, 384)"]


def test_onnx_backend_smoke_test(hub_cache: Path, tmp_path: Path) -> None:
    out = _run("onnx_backend_check.py", hub_cache, tmp_path).splitlines()
    assert out == _seed_lines()
    assert (tmp_path / "all-minilm-l6-v2-onnx" / "onnx" / "model.onnx").is_file()


def test_onnx_backend_smoke_test_exports_a_repo_without_onnx(tmp_path: Path) -> None:
    """The seed's first load exports (export extra); the saved directory then reloads without torch."""
    from tools.pypi_models import minilm_dir

    cache = tmp_path / "hub"
    snapshot = make_hub_cache(cache, "sentence-transformers/all-MiniLM-L6-v2", minilm_dir())
    assert not list(snapshot.rglob("*.onnx"))
    out = _run("onnx_backend_check.py", cache, tmp_path, **{EXPORT_CACHE_ENV: str(tmp_path / "exports")})
    assert out.splitlines() == _seed_lines()
    assert not list(snapshot.rglob("*.onnx")) and len(list((tmp_path / "exports").iterdir())) == 1
    saved = tmp_path / "all-minilm-l6-v2-onnx"
    record = json.loads((saved / "onnx" / "parity.json").read_text())["onnx/model.onnx"]
    assert record["passed"] is True and record["max_abs_diff"] <= 1e-5  # equal to sentence-transformers

    # steps 3-4 on a runtime-only install: the saved directory reloads with local_files_only=True
    script = (SEEDS / "onnx_backend_check.py").read_text()
    prelude, rest = script.split("model = SentenceTransformer(", 1)
    reload_half = prelude + "reloaded = SentenceTransformer(" + rest.split("reloaded = SentenceTransformer(", 1)[1]
    check = "\nprint(sorted(m for m in ('torch', 'sentence_transformers', 'exporter') if m in sys.modules))\n"
    empty_hub = tmp_path / "empty-hub"
    out = _run("", empty_hub, tmp_path, code=RUNTIME_ONLY + reload_half + check,
               **{EXPORT_CACHE_ENV: str(tmp_path / "no-exports")})
    assert out.splitlines() == [*_seed_lines()[-2:], "[]"]
    assert not (tmp_path / "no-exports").exists() and not empty_hub.exists()


def test_quickstart_prints_the_same_numbers(hub_cache: Path, tmp_path: Path) -> None:
    ours = _run("quickstart_dense.py", hub_cache, tmp_path).splitlines()
    theirs = _run("quickstart_dense.py", hub_cache, tmp_path, module="sentence_transformers").splitlines()
    assert ours[0] == theirs[0] == "(3, 384)"
    numbers_ours = [float(x) for x in " ".join(ours[1:]).replace("[", " ").replace("]", " ").split()]
    numbers_theirs = [float(x) for x in " ".join(theirs[1:]).replace("tensor(", " ").replace(")", " ")
                      .replace("[", " ").replace("]", " ").replace(",", " ").split()]
    assert len(numbers_ours) == len(numbers_theirs) == 9
    np.testing.assert_allclose(numbers_ours, numbers_theirs, atol=1e-4)
