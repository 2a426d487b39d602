"""Router: separate module chains per task (query / document), as ``router_config.json`` describes."""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..compat import has_max_seq_length_setter
from ..config import read_json
from ..errors import ConfigError, InputError
from .base import Features, InputModule, LoadContext, Module, TokenCounter, embedding_dimension, text_length

logger = logging.getLogger("onnx_st")


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
    """Routes a whole call to one chain of modules by its task (``encode_query`` -> ``query``) and modality.

    As the first module it tokenizes with the input module of the resolved route; after other modules
    (e.g. per-task Dense heads on a shared Transformer) it routes the features on the call's task.
    """

    def __init__(self, routes: dict[str, list[Module]], default_route: str | None,
                 route_mappings: dict[tuple[str | None, Any], str]) -> None:
        for target in route_mappings.values():
            if target not in routes:
                raise ConfigError(f"route_mappings points to {target!r}, which is not a route of {sorted(routes)}")
        if default_route is not None and default_route not in routes:
            raise ConfigError(f"Default route {default_route!r} not found in routes {sorted(routes)}")
        self.routes = routes
        self.default_route = default_route
        self.route_mappings = route_mappings
        dims = [d for d in (embedding_dimension(chain) for chain in routes.values()) if d is not None]
        if len(set(dims)) > 1:
            logger.warning("Different embedding dimensions detected across routes: %s. Using the first value.",
                           set(dims))
        self.embedding_dimension = dims[0] if dims else None

    @classmethod
    def load(cls, directory: Path, ctx: LoadContext, load_module: Callable[[str, Path, LoadContext], Module]
             ) -> Router:
        """Read ``router_config.json`` (``config.json`` in older saves) and every sub-module folder it names."""
        name = "router_config.json" if (directory / "router_config.json").is_file() else "config.json"
        config = read_json(directory / name)
        if not isinstance(config, dict):
            raise ConfigError(f"{directory}/{name} must hold a JSON object")
        try:
            types: dict[str, str] = config["types"]
            structure: dict[str, list[str]] = config["structure"]
        except KeyError as exc:
            raise ConfigError(f"{directory}/{name} lacks {exc}") from exc
        params = config.get("parameters") or {}
        loaded: dict[str, Module] = {}
        for model_id, type_name in types.items():
            if "/" in model_id or "\\" in model_id or model_id.startswith("."):
                raise ConfigError(f"router_config.json: unsafe module folder {model_id!r}")
            loaded[model_id] = load_module(type_name, directory / model_id, ctx)
        try:
            routes = {route: [loaded[m] for m in ids] for route, ids in structure.items()}
        except KeyError as exc:
            raise ConfigError(f"{directory}/{name}: structure names the unknown module {exc}") from exc
        if not routes or any(not chain for chain in routes.values()):
            raise ConfigError(f"{directory}/{name}: every route needs at least one module")
        default = params.get("default_route")
        if default is None and params.get("allow_empty_key", True):
            default = next(iter(routes))
        mappings = {_parse_mapping_key(k): v for k, v in (params.get("route_mappings") or {}).items()}
        return cls(routes, default, mappings)

    @property
    def is_input(self) -> bool:
        """Whether every route starts with an input module (the Router can be a model's first module)."""
        return all(isinstance(chain[0], InputModule) for chain in self.routes.values())

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

    @property
    def max_seq_length(self) -> int | float | None:
        """The routes' input modules' max length (the largest, with a warning, when they differ)."""
        lengths = {n for n in (getattr(chain[0], "max_seq_length", None) for chain in self.routes.values()) if n}
        if len(lengths) > 1:
            logger.warning("Different max_seq_lengths detected: %s. Using the maximum value.", lengths)
        return max(lengths) if lengths else None

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        settable = [chain[0] for chain in self.routes.values() if has_max_seq_length_setter(chain[0])]
        if not settable:
            logger.warning("No modules have a max_seq_length attribute to set.")
        for module in settable:
            module.max_seq_length = value  # type: ignore[attr-defined]

    def preprocess(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None,
                   modality: Any = None) -> Features:
        """Tokenize with the input module of the route of ``task`` and ``modality`` (``"text"`` when not given)."""
        modality = "text" if modality is None else modality
        route = self.resolve_route(task, modality)
        first = self.routes[route][0]
        if not isinstance(first, InputModule):
            raise ConfigError(f"Route {route!r} of a first-module Router must start with an input module "
                              "(Transformer, StaticEmbedding...)")
        return {**first.preprocess(texts, prompt=prompt, task=task), "route": route, "task": task,
                "modality": modality}

    def token_lengths(self, texts: Sequence[Any], prompt: str | None = None, task: str | None = None) -> list[int]:
        """Token counts from the input module of the task's route (characters when it cannot count)."""
        first = self.routes[self.resolve_route(task)][0]
        if isinstance(first, TokenCounter) and isinstance(first, InputModule):
            return first.token_lengths(texts, prompt=prompt, task=task)
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
