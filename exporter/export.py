"""Load a sentence-transformers model, save it in the plain layout and add ONNX graphs."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, cast

from sentence_transformers import (
    CrossEncoder,
    MultiVectorEncoder,
    SentenceTransformer,
    SparseEncoder,
)
from sentence_transformers.base.model import BaseModel
from sentence_transformers.base.modules.router import Router
from sentence_transformers.base.modules.transformer import Transformer
from torch import nn

from onnx_st.errors import ConfigError
from onnx_st.kinds import KindName, get_kind
from onnx_st.kinds import detect_kind as detect_kind_of

from . import _deps  # noqa: F401  (raises ImportError with the install command without the export extra)
from .onnx_export import export_transformer

logger = logging.getLogger(__name__)

Kind = Literal["auto"] | KindName
"""A kind name, or ``auto`` (from the model's files)."""
ResolvedKind = KindName
# sentence-transformers' class of each kind, by the class name onnx_st.kinds records as model_type
ST_CLASSES: dict[str, type[BaseModel]] = {
    cls.__name__: cls for cls in (SentenceTransformer, SparseEncoder, CrossEncoder, MultiVectorEncoder)
}


class _ConfigReader:
    """Reads small JSON files of a local directory or a Hub repo (cache first; stops asking an unreachable Hub)."""

    def __init__(self, model_name_or_path: str) -> None:
        self.name = model_name_or_path
        self.hub_reachable = True

    def read(self, filename: str) -> object | None:
        """Parsed file content, or ``None`` when the file is absent or cannot be fetched."""
        if os.path.isdir(self.name):
            path = Path(self.name, filename)
            return json.loads(path.read_text(encoding="utf8")) if path.is_file() else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        for local_only in (True, False):
            if not local_only and not self.hub_reachable:
                return None
            try:
                return json.loads(
                    Path(hf_hub_download(self.name, filename, local_files_only=local_only)).read_text("utf8")
                )
            except LocalEntryNotFoundError:  # not cached (local_only) or Hub unreachable (online)
                if not local_only:
                    self.hub_reachable = False
            except EntryNotFoundError:  # the repo has no such file
                return None
            except Exception:
                if not local_only:
                    self.hub_reachable = False
        return None


def detect_kind(model_name_or_path: str) -> ResolvedKind:
    """The kind of a local directory or Hub repo, as :func:`onnx_st.kinds.detect_kind` decides it.

    Raises:
        ConfigError: the files do not decide it (a bare masked LM is a dense model to
            ``SentenceTransformer`` and a SPLADE model to ``SparseEncoder``): pass the kind.
    """
    found = detect_kind_of(_ConfigReader(model_name_or_path).read)
    if not found.certain:
        options = " or ".join(f"--kind {k.name} ({k.description})" for k in (found.kind, *found.alternatives))
        raise ConfigError(f"Cannot tell which kind of model {model_name_or_path} is: {found.evidence}, with no "
                          f"modules.json or config_sentence_transformers.json to say. Pass {options}.")
    return found.kind.name


def load_st_model(model_name_or_path: str | Path, kind: Kind = "auto") -> BaseModel:
    """Load the sentence-transformers (PyTorch) model on CPU with the class matching ``kind``."""
    name = str(model_name_or_path)
    resolved = get_kind(detect_kind(name) if kind == "auto" else kind)
    model_class = ST_CLASSES[resolved.model_type]
    model = model_class(name, device="cpu", local_files_only=os.path.isdir(name))
    return model.eval()


def model_kind(model: BaseModel) -> ResolvedKind:
    """The kind of an already loaded model."""
    return get_kind(getattr(model, "model_type", "SentenceTransformer")).name


def _module_dir(index: int, module: nn.Module) -> str:
    """Folder name that ``BaseModel.save`` uses for the top-level module at ``index``."""
    if index == 0 and getattr(module, "save_in_root", False):
        return ""
    return f"{index}_{type(module).__name__}"


def _router_entries(router: Router) -> Iterator[tuple[str, nn.Module]]:
    """Sub-folder name and module for each distinct module of a Router, as ``Router.save`` names them."""
    seen: set[int] = set()
    for route, modules in router.sub_modules.items():
        for position, module in enumerate(cast(nn.Sequential, modules)):
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield f"{route}_{position}_{type(module).__name__}", module


def iter_transformer_modules(model: BaseModel) -> Iterator[tuple[str, Transformer]]:
    """Yield ``(relative_dir, module)`` for every Transformer in the saved layout, Router routes included."""
    for index, module in enumerate(model.children()):
        folder = _module_dir(index, module)
        if isinstance(module, Transformer):
            yield folder, module
        elif isinstance(module, Router):
            for sub_folder, sub_module in _router_entries(module):
                if isinstance(sub_module, Transformer):
                    yield os.path.join(folder, sub_folder), sub_module


def _prepare_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and any(output_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{output_dir} is not empty; pass overwrite=True to replace it")
        if not any((output_dir / marker).exists() for marker in ("modules.json", "config.json", "onnx")):
            raise FileExistsError(f"refusing to delete {output_dir}: it does not look like a model directory")
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)


def save_with_onnx(model: BaseModel, output_dir: str | Path, *, opset: int = 17, model_card: bool = True) -> list[Path]:
    """Save ``model`` with safetensors into ``output_dir`` and write one ONNX graph per Transformer."""
    output_dir = Path(output_dir)
    model.save(str(output_dir), safe_serialization=True, create_model_card=model_card)
    return write_onnx(model, output_dir, opset=opset)


def write_onnx(model: BaseModel, output_dir: str | Path, *, opset: int = 17) -> list[Path]:
    """Write ``onnx/model.onnx`` into the folder of every Transformer module of an already saved model."""
    written = [
        export_transformer(module, Path(output_dir, folder), opset=opset)
        for folder, module in iter_transformer_modules(model)
    ]
    if not written:
        logger.info("%s has no Transformer module: nothing to export to ONNX", output_dir)
    return written


def export_model(
    model_name_or_path: str,
    output_dir: str | Path,
    *,
    kind: Kind = "auto",
    opset: int = 17,
    overwrite: bool = False,
    model_card: bool = True,
) -> Path:
    """Export a sentence-transformers model (directory or Hub id) to ``output_dir``; returns ``output_dir``.

    The directory gets the plain sentence-transformers layout (``model.save``, safetensors only)
    plus ``onnx/model.onnx`` next to every Transformer module (see the package docstring).
    """
    output_dir = Path(output_dir)
    if os.path.isdir(model_name_or_path) and Path(model_name_or_path).resolve() == output_dir.resolve():
        raise ValueError("output_dir must differ from the source model directory")
    model = load_st_model(model_name_or_path, kind)
    _prepare_output_dir(output_dir, overwrite)
    save_with_onnx(model, output_dir, opset=opset, model_card=model_card)
    return output_dir
