"""Module loaders keyed by the sentence-transformers class name of ``modules.json`` type strings.

Both the old (``sentence_transformers.models.Pooling``) and the new dotted paths
(``sentence_transformers.sentence_transformer.modules.pooling.Pooling``) resolve by class name.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..config import read_modules
from ..errors import UnsupportedModuleError
from .base import Features, InputModule, LoadContext, Loader, Module, embedding_dimension
from .dense import Dense, Normalize
from .multi_vector_mask import MultiVectorMask
from .pooling import Pooling
from .router import Router
from .splade import SparseStaticEmbedding, SpladePooling
from .static import StaticEmbedding
from .token_pooling import HierarchicalTokenPooling
from .transformer import Transformer

__all__ = ["Features", "InputModule", "LoadContext", "Module", "embedding_dimension", "load_module",
           "load_modules", "register_module", "supported_modules"]

_LOADERS: dict[str, Loader] = {}
# Type strings of other libraries whose saved modules sentence-transformers reads as its own.
_ALIASES = {"pylate.models.Dense.Dense": "sentence_transformers.base.modules.dense.Dense"}


def register_module(class_name: str, loader: Loader) -> None:
    """Make ``class_name`` (the last part of a type string) loadable."""
    _LOADERS[class_name] = loader


def supported_modules() -> list[str]:
    """Class names the runtime can run."""
    return sorted(_LOADERS)


def load_module(type_name: str, directory: Path, ctx: LoadContext) -> Module:
    """Load one module from its folder.

    Raises:
        UnsupportedModuleError: the type is not a sentence-transformers module the runtime runs.
    """
    type_name = _ALIASES.get(type_name, type_name)
    class_name = type_name.rsplit(".", 1)[-1]
    if not type_name.startswith("sentence_transformers.") or class_name not in _LOADERS:
        raise UnsupportedModuleError(
            f"Module type {type_name!r} is not supported by onnx-st; supported modules: {', '.join(supported_modules())}"
        )
    return _LOADERS[class_name](directory, ctx)


def load_modules(model_dir: Path, ctx: LoadContext) -> list[Module] | None:
    """Load every module of ``modules.json`` in order; ``None`` if the directory has no modules.json."""
    specs = read_modules(model_dir)
    if specs is None:
        return None
    return [load_module(spec.type, model_dir / spec.path, ctx) for spec in sorted(specs, key=lambda s: s.idx)]


register_module("Transformer", Transformer.load)
register_module("MLMTransformer", lambda d, ctx: Transformer.load(d, replace(ctx, default_task="fill-mask")))
register_module("Pooling", Pooling.load)
register_module("Dense", Dense.load)
register_module("Normalize", Normalize.load)
register_module("StaticEmbedding", StaticEmbedding.load)
register_module("Router", lambda d, ctx: Router.load(d, ctx, load_module))
register_module("SpladePooling", SpladePooling.load)
register_module("SparseStaticEmbedding", SparseStaticEmbedding.load)
register_module("MultiVectorMask", MultiVectorMask.load)
register_module("HierarchicalTokenPooling", HierarchicalTokenPooling.load)
