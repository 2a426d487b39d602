"""Router: separate module chains per task (query / document) and modality, as ``router_config.json`` describes
(read by :class:`onnx_st.model_dir.ModelDir`)."""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from onnx_st._runtime.config import check_init_keys, config_bool, config_dict, config_str, inside
from onnx_st._runtime.inputs import has_max_seq_length_setter
from onnx_st.errors import ConfigError, InputError
from onnx_st.model_dir import ModelDir, RouterSpec
from onnx_st.modules.base import Features, InputModule, LoadContext, Module, embedding_dimension, text_length

logger = logging.getLogger("onnx_st")
ModuleLoader = Callable[[str, Path, LoadContext], Module]
ChainAssembler = Callable[[list[Module], LoadContext], list[Module]]


def _parse_mapping_key(key: str) -> tuple[str | None, Any]:
    """``"('query', None)"`` -> ``('query', None)``."""
    try:
        value = ast.literal_eval(key)
    except (ValueError, SyntaxError) as exc:
        raise ConfigError(f"router_config.json: bad route_mappings key {key!r}") from exc
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ConfigError(f"router_config.json: route_mappings key {key!r} must be a (task, modality) pair")
    return value[0], value[1]


class Router(InputModule):
    """Routes a whole call to one chain of modules by its task (``encode_query`` -> ``query``) and modality.

    As the first module it tokenizes with the input module of the resolved route; after other modules
    (e.g. per-task Dense heads on a shared Transformer) it routes the features on the call's task. Each
    route is assembled when it loads (fused SPLADE heads, run budgets from ``LoadContext.options``).
    """

    config_file_name = "router_config.json"

    def __init__(self, routes: dict[str, list[Module]], default_route: str | None,
                 route_mappings: dict[tuple[str | None, Any], str]) -> None:
        if not routes or any(not chain for chain in routes.values()):
            raise ConfigError("A Router needs at least one route, and every route at least one module")
        for target in [default_route, *route_mappings.values()]:
            if target is not None and target not in routes:
                raise ConfigError(f"Router names route {target!r}, which is not one of {sorted(routes)}")
        self.routes = routes
        self.default_route = default_route
        self.route_mappings = route_mappings
        first = self.routes[self.default_route or next(iter(routes))][0]
        self.tokenizer = first.tokenizer if isinstance(first, InputModule) else None
        dims = [d for d in (embedding_dimension(chain) for chain in routes.values()) if d is not None]
        if len(set(dims)) > 1:
            logger.warning("Different embedding dimensions detected across routes: %s. Using the first value.",
                           set(dims))
        self._dimension = dims[0] if dims else None

    def _first(self, route: str) -> InputModule:
        first = self.routes[route][0]
        if not isinstance(first, InputModule):
            raise ConfigError(f"Route {route!r} of a first-module Router must start with an input module "
                              "(Transformer, StaticEmbedding...)")
        return first

    @property
    def is_input(self) -> bool:
        """Whether every route starts with an input module (the Router can be a model's first module)."""
        return all(isinstance(chain[0], InputModule) for chain in self.routes.values())

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext, load_module: ModuleLoader, assemble: ChainAssembler) -> Router:
        """Read ``router_config.json`` (``config.json`` in older saves) and every sub-module folder it names."""
        return cls.from_spec(ModelDir.read(directory).router(""), directory, ctx, load_module, assemble)

    @classmethod
    def from_spec(cls, spec: RouterSpec, directory: Path, ctx: LoadContext, load_module: ModuleLoader,
                  assemble: ChainAssembler) -> Router:
        """Load every sub-module of a Router config (``directory``: the Router's folder) and assemble its routes."""
        path = spec.file
        # a sub-module id names a folder under the Router's ("" is the Router's own folder)
        loaded = {model_id: load_module(type_name, inside(directory, model_id, "Router sub-module folder", path), ctx)
                  for model_id, type_name in spec.types.items()}
        routes = {route: assemble([loaded[m] for m in ids], ctx) for route, ids in spec.structure.items()}
        params = spec.parameters
        check_init_keys(params, ("default_route", "allow_empty_key", "route_mappings"), "Router", path)
        default = config_str(params, "default_route", None, path)
        if default is None and config_bool(params, "allow_empty_key", True, path):
            default = next(iter(routes))
        mappings = {}
        for key, value in config_dict(params, "route_mappings", path).items():
            if not isinstance(value, str):
                raise ConfigError(f"{path}: route_mappings[{key!r}] must be a route name, got {value!r}")
            mappings[_parse_mapping_key(key)] = value
        try:
            return cls(routes, default, mappings)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def get_embedding_dimension(self) -> int | None:
        """The routes' output dimension (the first route's, with a warning at load, when they differ)."""
        return self._dimension

    def submodules(self) -> list[Module]:
        """Every module of every route, once."""
        unique: dict[int, Module] = {}
        for chain in self.routes.values():
            for module in chain:
                unique.setdefault(id(module), module)
        return list(unique.values())

    def resolve_route(self, task: str | None, modality: Any = "text") -> str:
        """The route of a task and modality, in sentence-transformers' order of precedence."""
        if isinstance(modality, list):
            modality = tuple(modality)
        if isinstance(modality, tuple):
            modality = tuple(sorted(modality))
        for key in ((task, modality), (task, None), (None, modality), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        if task and task in self.routes:
            return task
        if modality in self.routes:
            return modality
        if task is not None:
            raise InputError(f"No route found for task {task!r}; routes: {sorted(self.routes)}")
        if self.default_route is None:
            raise InputError(f"No task given and no default route; pass task= one of {sorted(self.routes)}")
        return self.default_route

    @property  # type: ignore[override]
    def max_seq_length(self) -> int | float | None:
        """The routes' input modules' max length (the largest, with a warning, when they differ)."""
        lengths = {n for n in (getattr(chain[0], "max_seq_length", None) for chain in self.routes.values()) if n}
        if len(lengths) > 1:
            logger.warning("Different max_seq_lengths detected: %s. Using the maximum value.", lengths)
        return max(lengths) if lengths else None

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        # modules whose class declares a max_seq_length setter (the one contract checked here)
        settable: list[Any] = [chain[0] for chain in self.routes.values() if has_max_seq_length_setter(chain[0])]
        if not settable:
            logger.warning("No modules have a max_seq_length attribute to set.")
        for module in settable:
            module.max_seq_length = value

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None,
                   modality: Any = None) -> Features:
        """Tokenize with the input module of the route of ``task`` and ``modality`` (``"text"`` when not given)."""
        modality = "text" if modality is None else modality
        route = self.resolve_route(task, modality)
        return {**self._first(route).preprocess(texts, prompt=prompt, task=task), "route": route, "task": task,
                "modality": modality}

    def count_tokens(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> list[int]:
        """Token counts from the input module of the task's route (characters when it has none)."""
        first = self.routes[self.resolve_route(task)][0]
        if isinstance(first, InputModule):
            return first.count_tokens(texts, prompt=prompt, task=task)
        return [text_length(t) for t in texts]

    def forward(self, features: Features) -> Features:
        """Run the chain of the route chosen at tokenization (or of the features' task and modality)."""
        route = features.get("route")
        if route is None:
            modality = features.get("modality")
            route = self.resolve_route(features.get("task"), "text" if modality is None else modality)
        for module in self.routes[route]:
            features = module.forward(features)
        return features
