"""A model directory reduced to what onnx-st reads at inference, for function packages and images.

onnx-st runs a Transformer module from its ONNX graph and tokenizes with ``tokenizer.json``; it
never reads the module's PyTorch/TensorFlow/Flax weights, the slow-tokenizer vocabularies or the
ONNX files it was not asked for. Every other file (configs, pooling, ``2_Dense`` weights...) is
copied as it is.
"""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

from onnx_st._runtime.session import resolve_onnx_file
from onnx_st.errors import ModelNotFoundError
from onnx_st.fastload import DATA_SUFFIX
from onnx_st.model_dir import ModelDir

# files of a Transformer folder (the one holding the ONNX graph) that inference never opens
_UNREAD = {
    "model.safetensors": "PyTorch weights of the Transformer; the ONNX graph holds them",
    "model-*-of-*.safetensors": "sharded PyTorch weights of the Transformer",
    "model.safetensors.index.json": "index of sharded PyTorch weights",
    "pytorch_model*.bin*": "PyTorch weights of the Transformer",
    "tf_model.h5": "TensorFlow weights", "flax_model.msgpack": "Flax weights", "rust_model.ot": "Rust weights",
    "*.ckpt": "checkpoint weights",
    "vocab.txt": "slow-tokenizer vocabulary; onnx-st reads tokenizer.json",
    "vocab.json": "slow-tokenizer vocabulary; onnx-st reads tokenizer.json",
    "merges.txt": "slow-tokenizer merges; onnx-st reads tokenizer.json",
    "*.model": "SentencePiece model of the slow tokenizer; onnx-st reads tokenizer.json",
}
_WEIGHT_FOLDERS = {"openvino": "OpenVINO files", "onnx": ""}  # onnx/ is filtered file by file


def _transformer_folders(model_dir: Path) -> list[Path]:
    """Folders of the modules that run an ONNX graph, as the model directory names them."""
    return [model_dir / folder for folder in ModelDir.read(model_dir).transformer_folders]


def copy_model_dir(model_dir: Path, dest: Path, file_name: str | None = None) -> tuple[list[Path], dict[str, str]]:
    """Copy ``model_dir`` to ``dest`` without the files inference never reads.

    Returns the copied ONNX graphs (in ``dest``) and, for each file left out, why.

    Raises:
        ModelNotFoundError: no directory, no ONNX graph, or no ``file_name`` in a Transformer folder.
    """
    if not model_dir.is_dir():
        raise ModelNotFoundError(f"Model directory not found: {model_dir}")
    folders = _transformer_folders(model_dir)
    if not folders:
        raise ModelNotFoundError(f"{model_dir} holds no ONNX file; export it with `onnx-st-export` first")
    chosen = {resolve_onnx_file(folder, file_name) for folder in folders}
    keep_onnx = chosen | {c.with_name(c.name + suffix) for c in chosen for suffix in (DATA_SUFFIX, ".data")}
    left_out: dict[str, str] = {}
    graphs: list[Path] = []
    for path in sorted(model_dir.rglob("*")):
        rel = path.relative_to(model_dir)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        reason = _unread(path, folders, keep_onnx)
        if reason:
            left_out[f"{model_dir.name}/{rel}"] = reason
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        if path in chosen:
            graphs.append(target)
    return graphs, left_out


def _unread(path: Path, folders: list[Path], keep_onnx: set[Path]) -> str | None:
    """Why inference never reads ``path``, or ``None`` when it may."""
    folder = next((f for f in folders if path.parent == f or path.parent == f / "onnx"), None)
    if folder is None:
        under = next((f for f in folders for name in _WEIGHT_FOLDERS if f / name in path.parents), None)
        return "OpenVINO files; onnx-st runs the ONNX graph" if under and (under / "openvino") in path.parents else None
    if path.suffix == ".onnx" or path.name.endswith((DATA_SUFFIX, ".onnx.data")):
        return None if path in keep_onnx else "another ONNX file than the one the function runs"
    if path.parent.name == "onnx":
        return None  # parity.json: the record of the chosen file
    return next((why for pattern, why in _UNREAD.items() if fnmatch.fnmatch(path.name, pattern)), None)


__all__ = ["copy_model_dir"]
