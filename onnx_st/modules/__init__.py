"""Module loaders keyed by the sentence-transformers class name of ``modules.json`` type strings.

Both the old (``sentence_transformers.models.Pooling``) and the new dotted paths
(``sentence_transformers.sentence_transformer.modules.pooling.Pooling``) resolve by class name.
A chain of modules is assembled once, when it loads: fused SPLADE heads take their logits budget
from ``LoadContext.options``, and neighbouring modules are checked to agree on their dimensions.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from onnx_st.errors import ConfigError, OnnxModelError, UnsupportedModuleError, foreign_errors
from onnx_st.model_dir import ModelDir
from onnx_st.modules.base import Features, InputModule, LoadContext, Loader, Module, embedding_dimension, walk
from onnx_st.modules.dense import Dense
from onnx_st.modules.multi_vector_mask import MultiVectorMask
from onnx_st.modules.normalize import Normalize
from onnx_st.modules.pooling import Pooling
from onnx_st.modules.router import Router
from onnx_st.modules.splade import SparseStaticEmbedding, SpladeMLM, SpladePooling, fuse_splade
from onnx_st.modules.static import StaticEmbedding
from onnx_st.modules.token_pooling import HierarchicalTokenPooling
from onnx_st.modules.transformer import Transformer

__all__ = ["Dense", "Features", "InputModule", "LoadContext", "Module", "Normalize", "Pooling", "Router",
           "SparseStaticEmbedding", "SpladeMLM", "SpladePooling", "StaticEmbedding", "Transformer", "assemble",
           "embedding_dimension", "load_module", "load_modules", "register_module", "supported_modules", "walk"]

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
    """Load one module from its folder; any foreign exception while loading becomes a ConfigError naming it.

    Raises:
        UnsupportedModuleError: the type is not a sentence-transformers module the runtime runs.
    """
    type_name = _ALIASES.get(type_name, type_name)
    class_name = type_name.rsplit(".", 1)[-1]
    if not type_name.startswith("sentence_transformers.") or class_name not in _LOADERS:
        raise UnsupportedModuleError(
            f"Module type {type_name!r} is not supported by onnx-st; supported modules: {', '.join(supported_modules())}"
        )
    with foreign_errors(ConfigError, f"Cannot load {class_name} from {directory}"):
        return _LOADERS[class_name](directory, ctx)


def check_chain(modules: list[Module]) -> None:
    """Neighbouring modules agree: each reads a feature written before it; the graph's width fits Pooling,
    the pooled size fits Dense.

    Raises:
        OnnxModelError: the graph's hidden size is not the one Pooling was configured for.
        ConfigError: a module reads a feature nobody writes, or a Dense layer's ``in_features`` is not the size
            of the feature it reads.
    """
    written: list[str] = []
    for before, module in zip(modules, modules[1:]):
        written.append(before.module_output_name)
        if module.module_input_name is not None and module.module_input_name not in written:
            raise ConfigError(f"{type(module).__name__} reads {module.module_input_name!r}, which no module before "
                              f"it writes (they write {written}): check module_output_name / module_input_name")
        width = before.get_embedding_dimension()
        if width is None:
            continue
        if isinstance(module, Pooling) and isinstance(before, Transformer) and width != module.embedding_dimension:
            raise OnnxModelError(f"The Transformer gives token embeddings of size {width}, the Pooling config "
                                 f"expects {module.embedding_dimension}")
        if isinstance(module, Dense) and before.module_output_name == module.module_input_name \
                and width != module.in_features:
            raise ConfigError(f"Dense expects {module.module_input_name!r} of size {module.in_features} "
                              f"(in_features), the module before it gives size {width}")


def assemble(modules: list[Module], ctx: LoadContext) -> list[Module]:
    """A loaded chain ready to run: SPLADE heads fused under ``ctx.options.logits_budget_mib``, sizes checked."""
    chain = fuse_splade(modules, ctx.options.logits_budget_mib)
    check_chain(chain)
    return chain


def load_modules(model_dir: ModelDir | Path, ctx: LoadContext) -> list[Module] | None:
    """Load and assemble every module of ``modules.json`` in order; ``None`` if there is no modules.json.

    A Router gets its routes from ``model_dir`` (the config it was read from once).
    """
    files = ModelDir.of(model_dir)
    if files.modules is None:
        return None
    modules: list[Module] = []
    for spec in sorted(files.modules, key=lambda s: s.idx):
        folder = files.module_folder(spec)
        directory = files.path / folder if folder else files.path
        if spec.class_name == "Router" and _ALIASES.get(spec.type, spec.type).startswith("sentence_transformers."):
            with foreign_errors(ConfigError, f"Cannot load Router from {directory}"):
                modules.append(Router.from_spec(files.routers[folder], directory, ctx, load_module, assemble))
        else:
            modules.append(load_module(spec.type, directory, ctx))
    return assemble(modules, ctx)


register_module("Transformer", Transformer.load)
register_module("MLMTransformer", lambda d, ctx: Transformer.load(d, replace(ctx, default_task="fill-mask")))
register_module("Pooling", Pooling.load)
register_module("Dense", Dense.load)
register_module("Normalize", Normalize.load)
register_module("StaticEmbedding", StaticEmbedding.load)
register_module("Router", lambda d, ctx: Router.load(d, ctx, load_module, assemble))
register_module("SpladePooling", SpladePooling.load)
register_module("SparseStaticEmbedding", SparseStaticEmbedding.load)
register_module("MultiVectorMask", MultiVectorMask.load)
register_module("HierarchicalTokenPooling", HierarchicalTokenPooling.load)
