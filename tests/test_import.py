"""The runtime stays light: no torch, transformers or sentence-transformers, five dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib

import onnx_st

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sentence_transformers", "optimum", "scipy", "pandas", "fastapi", "uvicorn",
         "pydantic", "starlette", "pyarrow", "ray", "exporter")


def test_import_pulls_no_heavy_framework() -> None:
    code = ("import sys, onnx_st, onnx_st.cli; heavy = [m for m in sys.modules if m.split('.')[0] in "
            f"{HEAVY!r}]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_cold_start_imports_only_what_encoding_needs() -> None:
    """Loading a model and encoding one text (a serverless cold start) leaves out what only the CLI,
    the pool, export on load or the Hub need; each costs a cold start milliseconds."""
    from .conftest import fixture_dir

    later = ("argparse", "hashlib", "tempfile", "shutil", "queue", "multiprocessing", "huggingface_hub", "onnx")
    code = ("import sys, onnx_st; m = onnx_st.SentenceTransformer(sys.argv[1]); m.encode(['a text']); "
            f"print(sorted(m for m in sys.modules if m in {later!r}))")
    out = subprocess.run([sys.executable, "-c", code, str(fixture_dir("dense-mean"))], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_job_modules_import_pyarrow_and_ray_only_when_a_job_runs() -> None:
    code = ("import sys, onnx_st.jobs.runner, onnx_st.jobs.ray_engine, onnx_st.jobs.readers; "
            f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_runtime_dependencies_are_exactly_the_five() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("<")[0].strip().lower() for dep in project["dependencies"]}
    assert names == {"numpy", "onnxruntime", "tokenizers", "safetensors", "huggingface_hub"}


def test_public_names_are_curated() -> None:
    assert sorted(onnx_st.__all__) == sorted(set(onnx_st.__all__))
    for name in onnx_st.__all__:
        assert hasattr(onnx_st, name), name
    public = {n for n in dir(onnx_st) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(onnx_st, n)).__name__ == "module"}
    assert public - modules == set(onnx_st.__all__) - {"__version__"}


def test_runtime_install_resolves_no_heavy_package(tmp_path: Path) -> None:
    """What ``pip install onnx-st`` would install: the five and their own small dependencies."""
    import json

    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                    "--report", str(report), str(ROOT)], check=True, capture_output=True)
    installed = {item["metadata"]["name"].lower().replace("_", "-")
                 for item in json.loads(report.read_text())["install"]}
    assert {"onnx-st", "numpy", "onnxruntime", "tokenizers", "safetensors", "huggingface-hub"} <= installed
    assert not installed & {"torch", "transformers", "sentence-transformers", "optimum", "onnx", "scipy"}
    direct = next(i for i in json.loads(report.read_text())["install"] if i["metadata"]["name"] == "onnx-st")
    requires = [r for r in direct["metadata"].get("requires_dist", []) if "extra ==" not in r]
    assert len(requires) == 5
