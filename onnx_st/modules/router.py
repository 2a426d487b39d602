"""Router: separate module chains per task (query / document), as ``router_config.json`` describes."""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import read_json
from ..errors import ConfigError, InputError
from .base import Features, InputModule, LoadContext, Module, TokenCounter, embedding_dimension, text_length


def _parse_mapping_key(key: str) -> tuple[str | None, Any]:
    """``"('query', None)"`` -> ``('query', None)``."""
    try:
        value = ast.literal_eval(key)
    except (ValueError, SyntaxError) as exc:
        raise ConfigError(f"router_config.json: bad route_mappings key {key!r}") from exc
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ConfigError(f"router_config.json: route_mappings key {key!r} must be a (task, modality) pair")
    return value[0], value[1]


class Router:
    """Routes a whole call to one chain of modules by its task (``encode_query`` -> ``query``)."""

    def __init__(self, routes: dict[str, list[Module]], default_route: str | None,
                 route_mappings: dict[tuple[str | None, Any], str]) -> None:
        self.routes = routes
        self.default_route = default_route
        self.route_mappings = route_mappings
        dims = {embedding_dimension(chain) for chain in routes.values()}
        self.embedding_dimension = dims.pop() if len(dims) == 1 else None

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext, load_module: Callable[[str, Path, LoadContext], Module]
             ) -> Router:
        """Read ``router_config.json`` and every sub-module folder it names."""
        config = read_json(directory / "router_config.json")
        try:
            types: dict[str, str] = config["types"]
            structure: dict[str, list[str]] = config["structure"]
        except KeyError as exc:
            raise ConfigError(f"{directory}/router_config.json lacks {exc}") from exc
        params = config.get("parameters") or {}
        loaded: dict[str, Module] = {}
        for model_id, type_name in types.items():
            if "/" in model_id or "\\" in model_id or model_id.startswith("."):
                raise ConfigError(f"router_config.json: unsafe module folder {model_id!r}")
            loaded[model_id] = load_module(type_name, directory / model_id, ctx)
        routes = {route: [loaded[m] for m in ids] for route, ids in structure.items()}
        for route, chain in routes.items():
            if not chain or not isinstance(chain[0], InputModule):
                raise ConfigError(f"Route {route!r} must start with an input module (Transformer, StaticEmbedding...)")
        default = params.get("default_route")
        if default is None and params.get("allow_empty_key", True):
            default = next(iter(routes))
        mappings = {_parse_mapping_key(k): v for k, v in (params.get("route_mappings") or {}).items()}
        return cls(routes, default, mappings)

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
        first = self.routes[self.default_route or next(iter(self.routes))][0]
        return getattr(first, "max_seq_length", None)

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Features:
        """Tokenize with the input module of the task's route."""
        route = self.resolve_route(task)
        first = self.routes[route][0]
        assert isinstance(first, InputModule)
        return {**first.preprocess(texts, prompt=prompt, task=task), "route": route}

    def token_lengths(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> list[int]:
        """Token counts from the input module of the task's route (characters when it cannot count)."""
        first = self.routes[self.resolve_route(task)][0]
        if isinstance(first, TokenCounter):
            return first.token_lengths(texts, prompt=prompt, task=task)
        return [text_length(t) for t in texts]

    def forward(self, features: Features) -> Features:
        """Run the route's module chain."""
        for module in self.routes[features["route"]]:
            features = module.forward(features)
        return features
