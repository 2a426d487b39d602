"""ModelDir: what a load needs from a model directory, every JSON file read once.

One object holds the modules of ``modules.json`` and their folders, the Router routes
(``router_config.json``, or a legacy Router's ``config.json``), the folders of the modules that run an
ONNX graph, the sentence-transformers config and prompts, the evidence of the model kind, the ONNX
files of each graph folder and their parity records (``onnx/parity.json``). It is built from a local
folder (:meth:`ModelDir.read`) or from a Hub file listing (:meth:`ModelDir.from_listing`) and handed to
Hub download planning, kind detection, file choice, export on load and the module loaders.

Every path a file names stays inside the directory (:func:`onnx_st._runtime.config.inside`).

Example:
    >>> files = ModelDir.read("all-minilm-l6-v2-onnx")
    >>> files.transformer_folders
    ('',)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from onnx_st._runtime.config import (
    MODEL_CONFIG_FILE,
    MODULES_FILE,
    HFConfig,
    JsonFiles,
    ModelConfig,
    ModuleSpec,
    config_dict,
    inside,
    parse_modules,
)
from onnx_st.errors import ConfigError

ROUTER_CONFIG_FILE = "router_config.json"
LEGACY_ROUTER_CONFIG_FILE = "config.json"
PARITY_FILE = "onnx/parity.json"
GRAPH_MODULES = ("Transformer", "MLMTransformer")
"""Class names of the modules that run an ONNX graph."""
JsonSource = Callable[[str], Any]
"""Reads a JSON file by its path relative to the model root; ``None`` when absent."""


def join(folder: str, name: str) -> str:
    """``folder/name`` relative to the model root (``name`` alone for the root folder, ``folder`` for ``""``)."""
    return "/".join(part for part in (folder, name) if part)


def _relative(root: Path, name: str, what: str, source: Path | str) -> str:
    """``name`` as a clean relative POSIX path (``""``: the root), checked to stay inside ``root``."""
    relative = inside(root, name, what, source).relative_to(root).as_posix()
    return "" if relative == "." else relative


@dataclass(frozen=True)
class RouterSpec:
    """A Router module's config: the folder of each sub-module, its type, the routes and their parameters."""

    folder: str
    """The Router module's folder, relative to the model root (``""``: the root)."""
    file: Path
    """The config file read (``router_config.json``, or ``config.json`` in older saves), for messages."""
    types: dict[str, str]
    """Sub-module id (its folder under the Router's) -> sentence-transformers type string."""
    structure: dict[str, list[str]]
    """Route name -> the sub-module ids of its chain, in order."""
    parameters: dict[str, Any]

    def module_folder(self, module_id: str) -> str:
        """A sub-module's folder relative to the model root (``""``: the Router's own folder)."""
        parts = [p for p in join(self.folder, module_id).replace("\\", "/").split("/") if p not in ("", ".")]
        return "/".join(parts)


@dataclass(frozen=True)
class ModelDir:
    """The files of one model directory that a load needs; parsed JSON is cached (each file read once).

    Attributes:
        path: the local directory (for a listing, the root its names are relative to).
        listing: the relative names of every file, when known (a Hub listing); ``None`` for a local
            folder, whose files are looked up on disk.
    """

    path: Path
    listing: frozenset[str] | None = None
    _json: JsonFiles = field(default_factory=JsonFiles, repr=False, compare=False)
    _source: JsonSource | None = field(default=None, repr=False, compare=False)

    @classmethod
    def read(cls, path: str | Path) -> ModelDir:
        """A local model directory (nothing is read until asked)."""
        return cls(Path(path).expanduser())

    @classmethod
    def from_listing(cls, files: Iterable[str] | None, read: JsonSource, root: str | Path = ".") -> ModelDir:
        """A directory known by its file names (relative to the root) and a reader of its small JSON files.

        ``files=None``: only ``read`` is known; a file is present when it reads as something.
        """
        return cls(Path(root), None if files is None else frozenset(files), _source=read)

    @classmethod
    def of(cls, model_dir: str | Path | ModelDir | JsonSource) -> ModelDir:
        """``model_dir`` itself, a local directory read afresh, or the files a JSON reader gives."""
        if isinstance(model_dir, ModelDir):
            return model_dir
        if isinstance(model_dir, (str, Path)):
            return cls.read(model_dir)
        return cls.from_listing(None, model_dir)

    # --- files -------------------------------------------------------------------------------------------

    def file(self, name: str) -> Path:
        """The path of ``name`` (relative to the root), checked to stay inside the directory."""
        return inside(self.path, name, "file", self.path / MODULES_FILE)

    def has(self, name: str) -> bool:
        """Whether the file ``name`` (relative to the root) is present."""
        if self.listing is not None:
            return _relative(self.path, name, "file", self.path / MODULES_FILE) in self.listing
        if self._source is not None:
            return self.json(name) is not None
        return self.file(name).is_file()

    def json(self, name: str, *, required: bool = False) -> Any:
        """The parsed JSON file ``name`` (relative to the root), read once; ``None`` when absent.

        Raises:
            ModelNotFoundError: ``required`` and the file is absent.
            ConfigError: the file is not valid JSON (or too large, too deeply nested).
        """
        source = self._source
        return self._json.value(self.file(name), required=required,
                                read=None if source is None else lambda: source(name))

    def json_object(self, name: str, *, required: bool = False) -> dict[str, Any]:
        """A JSON object file (``{}`` when absent and not ``required``).

        Raises:
            ModelNotFoundError, ConfigError: as :meth:`json`; ConfigError too when it is not an object.
        """
        data = self.json(name, required=required)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self.file(name)} must hold a JSON object, got a JSON {type(data).__name__}")
        return data

    @contextmanager
    def reading(self) -> Iterator[ModelDir]:
        """Within the block, every JSON read of this directory's files (module loaders included) goes
        through this object's cache, so that one load reads each file once."""
        with self._json.active():
            yield self

    # --- modules and routes ------------------------------------------------------------------------------

    @cached_property
    def modules(self) -> tuple[ModuleSpec, ...] | None:
        """The entries of ``modules.json`` (``None`` without one: older cross-encoders, bare HF models).

        Raises:
            ConfigError: a malformed ``modules.json`` or a module path leading out of the directory.
        """
        if not self.has(MODULES_FILE):
            return None
        specs = parse_modules(self.json(MODULES_FILE, required=True), self.path, self.file(MODULES_FILE))
        return tuple(specs)

    def module_folder(self, spec: ModuleSpec) -> str:
        """A module's folder relative to the root (``""``: the root)."""
        return _relative(self.path, spec.path, "module path", self.file(MODULES_FILE))

    def router(self, folder: str) -> RouterSpec:
        """The config of the Router module in ``folder`` (``router_config.json``, else ``config.json``).

        Raises:
            ModelNotFoundError: neither file exists.
            ConfigError: the config is malformed or names an unsafe sub-module folder.
        """
        name = join(folder, ROUTER_CONFIG_FILE)
        if not self.has(name):
            name = join(folder, LEGACY_ROUTER_CONFIG_FILE)
        path = self.file(name)
        config = self.json_object(name, required=True)
        types = config_dict(config, "types", path)
        structure = config_dict(config, "structure", path)
        if not types or not structure:
            raise ConfigError(f"{path} needs non-empty 'types' and 'structure' objects")
        for model_id, type_name in types.items():
            # a sub-module folder may be the Router's own ("", as some saves write it) or below it, never outside
            try:
                inside(self.file(folder) if folder else self.path, model_id, "Router sub-module folder", path)
            except ConfigError as exc:
                raise ConfigError(f"{path}: unsafe module folder {model_id!r}: expected a relative path without "
                                  "'..' components") from exc
            if not isinstance(type_name, str):
                raise ConfigError(f"{path}: 'types'[{model_id!r}] must be a class path, got {type_name!r}")
        for route, ids in structure.items():
            if not isinstance(ids, list) or not all(isinstance(m, str) for m in ids):
                raise ConfigError(f"{path}: 'structure'[{route!r}] must be a list of module names, got {ids!r:.80}")
            unknown = [m for m in ids if m not in types]
            if unknown:
                raise ConfigError(f"{path}: route {route!r} names modules {unknown} that 'types' does not define; "
                                  f"defined: {sorted(types)}")
        return RouterSpec(folder, path, dict(types), {k: list(v) for k, v in structure.items()},
                          config_dict(config, "parameters", path))

    @cached_property
    def routers(self) -> dict[str, RouterSpec]:
        """The Router modules of ``modules.json`` by folder."""
        return {folder: self.router(folder) for spec in self.modules or () if spec.class_name == "Router"
                for folder in [self.module_folder(spec)]}

    @cached_property
    def module_types(self) -> tuple[tuple[str, str], ...]:
        """``(type, folder)`` of every module of ``modules.json`` in file order, each Router's routes after it."""
        found: list[tuple[str, str]] = []
        for spec in self.modules or ():
            folder = self.module_folder(spec)
            found.append((spec.type, folder))
            if spec.class_name == "Router":
                router = self.routers[folder]
                found.extend((t, router.module_folder(m)) for m, t in router.types.items())
        return tuple(found)

    @cached_property
    def transformer_folders(self) -> tuple[str, ...]:
        """Folders of the modules that run an ONNX graph (Router routes included), relative to the root.

        A directory without ``modules.json`` (a bare Hugging Face model, a legacy cross-encoder) is one
        Transformer in its root.
        """
        if self.modules is None:
            return ("",)
        return tuple(dict.fromkeys(folder for type_name, folder in self.module_types
                                   if type_name.rsplit(".", 1)[-1] in GRAPH_MODULES))

    # --- configs and kind evidence -----------------------------------------------------------------------

    @cached_property
    def config(self) -> ModelConfig:
        """``config_sentence_transformers.json``: prompts, similarity, ``model_type`` (defaults when absent)."""
        return ModelConfig.parse(self.json_object(MODEL_CONFIG_FILE), self.file(MODEL_CONFIG_FILE))

    @property
    def saved_model_type(self) -> Any:
        """``model_type`` of ``config_sentence_transformers.json`` as written (``None`` when absent)."""
        saved = self.json(MODEL_CONFIG_FILE)
        return saved.get("model_type") if isinstance(saved, dict) else None

    def hf_config(self, folder: str = "") -> HFConfig:
        """The Hugging Face ``config.json`` of a folder (defaults when absent)."""
        name = join(folder, "config.json")
        return HFConfig.parse(self.json_object(name), self.file(name))

    @property
    def architectures(self) -> list[str] | None:
        """The ``architectures`` of the root ``config.json`` (its strings); ``None`` without such an object."""
        hf = self.json("config.json")
        if not isinstance(hf, dict):
            return None
        return [str(a) for a in (hf.get("architectures") or []) if isinstance(a, str)]

    @property
    def has_artifact_metadata(self) -> bool:
        """Whether ``artifact.metadata`` (a Stanford ColBERT checkpoint) is present."""
        return self.json("artifact.metadata") is not None

    # --- ONNX files and parity records -------------------------------------------------------------------

    def onnx_files(self, folder: str) -> tuple[str, ...]:
        """The ``.onnx`` files of a graph folder (``onnx/*.onnx`` and ``*.onnx``), relative to that folder."""
        if self.listing is not None:
            prefix = f"{folder}/" if folder else ""
            names = [n[len(prefix):] for n in self.listing if n.startswith(prefix) and n.endswith(".onnx")]
            return tuple(sorted(n for n in names if "/" not in n or (n.startswith("onnx/") and n.count("/") == 1)))
        directory = self.file(folder) if folder else self.path
        found = sorted(directory.glob("onnx/*.onnx")) + sorted(directory.glob("*.onnx"))
        return tuple(p.relative_to(directory).as_posix() for p in found)

    def parity(self, folder: str) -> dict[str, dict[str, Any]]:
        """The parity records of a graph folder's ``onnx/parity.json`` (empty when absent).

        Raises:
            ConfigError: the file is not a JSON object of objects.
        """
        name = join(folder, PARITY_FILE)
        data = self.json_object(name)
        if not all(isinstance(v, dict) for v in data.values()):
            raise ConfigError(f"{self.file(name)} must map file names to records")
        return data


__all__ = ["GRAPH_MODULES", "JsonSource", "ModelDir", "RouterSpec", "join"]
