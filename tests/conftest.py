"""Shared test helpers: fixture paths, golden outputs, and real models exported once per machine."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from onnx_st.jobs.ray_cluster import CLUSTER_MODE_ENV
from tools.pypi_models import export_real

# Ray clusters the tests start (and the processes they spawn) listen on 127.0.0.1 only. Ray reads this
# when it is imported, so it is set here, before any test module imports ray.
os.environ[CLUSTER_MODE_ENV] = "0"

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


def fixture_dir(name: str) -> Path:
    """Path of a committed fixture model; fails (never skips) when it is missing."""
    path = FIXTURES / name
    assert path.is_dir(), f"fixture {name} is missing: rebuild with `python -m tools.fixtures`"
    return path


def fixture_inputs(name: str) -> Any:
    """The texts (dense, sparse) or the ``inputs.json`` dict (cross) the golden outputs were computed on."""
    data = json.loads((fixture_dir(name) / "inputs.json").read_text())
    return data.get("texts", data)


def fixture_names(prefix: str) -> list[str]:
    """Committed fixtures whose name starts with ``prefix``."""
    return sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name.startswith(prefix))


def fixture_expected(name: str) -> dict[str, np.ndarray]:
    """Golden outputs computed by sentence-transformers when the fixture was built."""
    with np.load(fixture_dir(name) / "expected.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def minilm_onnx_dir() -> Path:
    """all-MiniLM-L6-v2 exported by the exporter."""
    from tools.pypi_models import minilm_exported

    return minilm_exported()


@pytest.fixture(scope="session")
def mpnet_onnx_dir() -> Path:
    """all-mpnet-base-v2 exported by the exporter."""
    from tools.pypi_models import mpnet_dir

    return export_real("all-mpnet-base-v2", mpnet_dir(), "dense")


@pytest.fixture(scope="session", autouse=True)
def _export_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Exports made on load (a model without ONNX file) go to a temporary folder, never to ~/.cache."""
    import os

    os.environ.setdefault("ONNX_ST_EXPORT_CACHE", str(tmp_path_factory.mktemp("onnx-st-exports")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With ``ONNX_ST_NO_SKIPS=1`` (CI's torch stage, where every extra is installed) a skipped test fails the
    run: the torch-only tests skip in the runtime-only stage and must run here."""
    if os.environ.get("ONNX_ST_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        names = ", ".join(sorted({r.nodeid for r in skipped})[:10])
        print(f"\nONNX_ST_NO_SKIPS=1: {len(skipped)} test(s) skipped where every extra is installed: {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
