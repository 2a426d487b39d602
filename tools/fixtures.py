"""Build the tiny seeded test fixtures: ``python -m tools.fixtures [--out fixtures] [--only NAME ...]``.

Every fixture is a full exported directory (sentence-transformers layout + ONNX graphs) plus
``expected.npz`` (golden outputs computed by sentence-transformers with PyTorch),
``inputs.json`` (the inputs used) and ``meta.json``; sparse fixtures add ``decode.json`` and
single-label cross-encoders ``rank.json``. See ``fixtures/README.md`` for the layouts.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sentence_transformers
import torch
import transformers

from exporter import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from exporter.export import export_model, load_st_model, write_onnx
from exporter.onnx_export import ONNX_FILE
from exporter.verify import verify_export
from tools._fixture_legacy import (
    write_cross_legacy,
    write_dense_legacy,
    write_json,
    write_multi_vector_pylate,
    write_multi_vector_stanford,
)
from tools._fixture_models import FIXTURES as MODEL_FIXTURES
from tools._golden import golden, inputs_document, save_npz

logger = logging.getLogger(__name__)
FIXTURE_ATOL = 1e-4


@dataclass(frozen=True)
class LegacySpec:
    """A fixture whose directory is written by hand in an older format."""

    name: str
    kind: str
    write: Callable[[Path], None]
    description: str


LEGACY_FIXTURES: dict[str, LegacySpec] = {
    spec.name: spec
    for spec in (
        LegacySpec("dense-legacy-format", "dense", write_dense_legacy, "sentence-transformers 2.x layout"),
        LegacySpec("cross-1label-legacy", "cross", write_cross_legacy, "CrossEncoder without modules.json"),
        LegacySpec("multi-vector-pylate", "multi-vector", write_multi_vector_pylate,
                   "PyLate save (model_type ColBERT, [Q]/[D] prefixes, expansion 16, document 48, skiplist)"),
        LegacySpec("multi-vector-stanford", "multi-vector", write_multi_vector_stanford,
                   "Stanford ColBERT (HF_ColBERT, inline linear.weight, artifact.metadata)"),
    )
}
ALL_NAMES: tuple[str, ...] = (*MODEL_FIXTURES, *LEGACY_FIXTURES)


def _quiet() -> None:
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)


def _meta(
    name: str, kind: str, description: str, model: Any, target: Path, keys: Sequence[str], diff: float
) -> dict[str, Any]:
    onnx_files = sorted(str(p.relative_to(target)) for p in target.rglob(ONNX_FILE))
    max_len = model.max_seq_length
    meta: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "model_class": type(model).__name__,
        "description": description,
        "sentence_transformers_version": sentence_transformers.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "max_seq_length": None if max_len is None or math.isinf(max_len) else int(max_len),
        "onnx_files": onnx_files,
        "onnx_max_abs_diff": diff,
        "expected_keys": sorted(keys),
    }
    if kind == "cross":
        meta["num_labels"] = int(model.num_labels)
        meta["activation_fn"] = type(model.activation_fn).__name__
    else:
        meta["embedding_dim"] = int(model.get_embedding_dimension())
        meta["similarity_fn_name"] = model.similarity_fn_name
        meta["prompts"] = {k: v for k, v in model.prompts.items() if v}
    return meta


def build_fixture(name: str, out_root: Path, work: Path) -> Path:
    """Build ``out_root/name`` from scratch and return its path."""
    target = out_root / name
    if target.exists():
        shutil.rmtree(target)
    kind, _ = _kind_and_description(name)
    if name in LEGACY_FIXTURES:
        LEGACY_FIXTURES[name].write(target)
        write_onnx(load_st_model(target, kind), target)  # type: ignore[arg-type]
    else:
        spec = MODEL_FIXTURES[name]
        source = work / f"st-{name}"
        spec.build(work).save(str(source), create_model_card=False)
        export_model(str(source), target, kind=kind, model_card=False)  # type: ignore[arg-type]
    return write_goldens(name, target)


def _kind_and_description(name: str) -> tuple[str, str]:
    if name in LEGACY_FIXTURES:
        return LEGACY_FIXTURES[name].kind, LEGACY_FIXTURES[name].description
    return MODEL_FIXTURES[name].kind, MODEL_FIXTURES[name].description


def write_goldens(name: str, target: Path) -> Path:
    """(Re)compute the golden outputs, inputs and ``meta.json`` of the fixture directory ``target``, leaving
    the model files as they are."""
    kind, description = _kind_and_description(name)
    model = load_st_model(target, kind)  # type: ignore[arg-type]
    arrays, documents = golden(kind, name, model)
    save_npz(target / "expected.npz", arrays)
    write_json(target / "inputs.json", inputs_document(kind))
    for file_name, content in documents.items():
        write_json(target / file_name, content)
    report = verify_export(target)
    if not report.passed(FIXTURE_ATOL):
        raise RuntimeError(f"{name}: ONNX differs from PyTorch by {report.max_abs_diff:.3e}")
    write_json(target / "meta.json", _meta(name, kind, description, model, target, list(arrays), report.max_abs_diff))
    return target


def build_fixtures(out_root: str | Path = "fixtures", names: Sequence[str] | None = None, *,
                   goldens_only: bool = False) -> list[Path]:
    """Build the selected (default: all) fixtures under ``out_root``; with ``goldens_only``, recompute the
    golden outputs of existing fixture directories and keep their model files byte for byte."""
    _quiet()
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    selected = list(names) if names else list(ALL_NAMES)
    unknown = sorted(set(selected) - set(ALL_NAMES))
    if unknown:
        raise ValueError(f"unknown fixtures {unknown}; available: {list(ALL_NAMES)}")
    built = []
    with tempfile.TemporaryDirectory(prefix="onnx-st-fixtures-") as tmp:
        for name in selected:
            if goldens_only:
                target = out_root / name
                if not target.is_dir():
                    raise FileNotFoundError(f"{target}: no fixture to recompute the goldens of")
                built.append(write_goldens(name, target))
            else:
                built.append(build_fixture(name, out_root, Path(tmp)))
            print(f"built {built[-1]}")
    return built


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m tools.fixtures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("fixtures"), help="output root (default: fixtures)")
    parser.add_argument("--only", nargs="+", choices=ALL_NAMES, help="build only these fixtures")
    parser.add_argument("--goldens-only", action="store_true",
                        help="recompute expected.npz, inputs.json, meta.json (and decode.json / rank.json) of "
                             "existing fixtures with the installed sentence-transformers; model files stay as they are")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    build_fixtures(args.out, args.only, goldens_only=args.goldens_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
