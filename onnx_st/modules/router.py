"""Router: separate module chains per task (query / document), as ``router_config.json`` describes."""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import config_bool, config_dict, config_str, read_json
from ..errors import ConfigError, InputError
from .base import Features, InputModule, LoadContext, Module, embedding_dimension

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
    """Routes a whole call to one chain of modules by its task (``encode_query`` -> ``query``).

    Each route is assembled when it loads (fused SPLADE heads, run budgets from ``LoadContext.options``).
    """

    config_file_name = "router_config.json"

    def __init__(self, routes: dict[str, list[Module]], default_route: str | None,
                 route_mappings: dict[tuple[str | None, Any], str]) -> None:
        if not routes:
            raise ConfigError("A Router needs at least one route")
        for route, chain in routes.items():
            if not chain or not isinstance(chain[0], InputModule):
                raise ConfigError(f"Route {route!r} must start with an input module (Transformer, StaticEmbedding...)")
        for target in [default_route, *route_mappings.values()]:
            if target is not None and target not in routes:
                raise ConfigError(f"Router names route {target!r}, which is not one of {sorted(routes)}")
        self.routes = routes
        self.default_route = default_route
        self.route_mappings = route_mappings
        self.tokenizer = self._first(self.default_route or next(iter(routes))).tokenizer

    def _first(self, route: str) -> InputModule:
        first = self.routes[route][0]
        assert isinstance(first, InputModule)  # checked in __init__
        return first

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext, load_module: ModuleLoader, assemble: ChainAssembler) -> Router:
        """Read ``router_config.json`` and every sub-module folder it names."""
        path = directory / "router_config.json"
        config = read_json(path)
        types = config_dict(config, "types", path)
        structure = config_dict(config, "structure", path)
        if not types or not structure:
            raise ConfigError(f"{path} needs non-empty 'types' and 'structure' objects")
        params = config_dict(config, "parameters", path)
        loaded: dict[str, Module] = {}
        for model_id, type_name in types.items():
            if not model_id or "/" in model_id or "\\" in model_id or model_id.startswith("."):
                raise ConfigError(f"{path}: unsafe module folder {model_id!r}")
            if not isinstance(type_name, str):
                raise ConfigError(f"{path}: 'types'[{model_id!r}] must be a class path, got {type_name!r}")
            loaded[model_id] = load_module(type_name, directory / model_id, ctx)
        routes: dict[str, list[Module]] = {}
        for route, ids in structure.items():
            if not isinstance(ids, list) or not all(isinstance(m, str) for m in ids):
                raise ConfigError(f"{path}: 'structure'[{route!r}] must be a list of module names, got {ids!r:.80}")
            unknown = [m for m in ids if m not in loaded]
            if unknown:
                raise ConfigError(f"{path}: route {route!r} names modules {unknown} that 'types' does not define; "
                                  f"defined: {sorted(loaded)}")
            routes[route] = assemble([loaded[m] for m in ids], ctx)
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
        """The routes' common output dimension (``None`` when they differ)."""
        dims = {embedding_dimension(chain) for chain in self.routes.values()}
        return dims.pop() if len(dims) == 1 else None

    def submodules(self) -> list[Module]:
        """Every module of every route, once."""
        unique: dict[int, Module] = {}
        for chain in self.routes.values():
            for module in chain:
                unique.setdefault(id(module), module)
        return list(unique.values())

    def resolve_route(self, task: str | None, modality: str = "text") -> str:
        """The route of a task, in sentence-transformers' order of precedence."""
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

    @property
    def max_seq_length(self) -> int | None:
        """Max length of the default route's input module."""
        return self._first(self.default_route or next(iter(self.routes))).max_seq_length

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        """Tokenize with the input module of the task's route."""
        route = self.resolve_route(task)
        return {**self._first(route).preprocess(texts, prompt=prompt, task=task), "route": route}

    def count_tokens(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> list[int]:
        """Token counts from the input module of the task's route."""
        return self._first(self.resolve_route(task)).count_tokens(texts, prompt=prompt, task=task)

    def forward(self, features: Features) -> Features:
        """Run the route's module chain."""
        for module in self.routes[features["route"]]:
            features = module.forward(features)
        return features
