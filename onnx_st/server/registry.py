"""Served models by id: loading in the background, readiness, and one batcher per model."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onnx_st.base import load_by_kind
from onnx_st.base.model import BaseModel
from onnx_st.kinds import KindName, ModelKind, detect_kind
from onnx_st.options import RuntimeOptions
from onnx_st.server.batcher import MicroBatcher
from onnx_st.server.errors import ApiError
from onnx_st.server.inference import TokenLimit
from onnx_st.server.metrics import Metrics

logger = logging.getLogger("onnx_st.server")

Loader = Callable[[Path], BaseModel]


def load_served_model(path: Path, options: RuntimeOptions | None = None) -> BaseModel:
    """Load a directory to serve, with the front class of its kind (:func:`onnx_st.kinds.detect_kind`)."""
    return load_by_kind(path, options=options, local_files_only=True)


@dataclass
class ModelEntry:
    """One served model and its state: ``loading``, ``ready`` or ``failed``."""

    model_id: str
    kind: ModelKind
    source: Path | None = None
    model: BaseModel | None = None
    state: str = "loading"
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    expected_seconds: float = 1.0
    limit: TokenLimit | None = None
    batcher: MicroBatcher | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def estimated_time(self) -> float:
        """Seconds the load probably still takes (HF's ``estimated_time``)."""
        return round(max(0.5, self.expected_seconds - (time.monotonic() - self.started)), 2)


class ModelRegistry:
    """The models of one server, addressed by id (the first one is the default).

    Args:
        models: id -> a loaded model, or a directory to load in the background on :meth:`start`.
        loader: loads a directory (default :func:`load_served_model` with the model's runtime options); tests pass a
            slow one.
        runtime: runtime options of every directory, or per model id (ids not named run with the defaults).
        batch_options: keywords of :class:`MicroBatcher` (``max_batch_tokens``, ``max_wait_ms``, ``max_queue_tokens``).
    """

    def __init__(self, models: Mapping[str, BaseModel | str | Path], *, loader: Loader | None = None,
                 metrics: Metrics | None = None, runtime: RuntimeOptions | Mapping[str, RuntimeOptions] | None = None,
                 **batch_options: Any) -> None:
        if not models:
            raise ValueError("serve at least one model")
        self.loader = loader
        self.runtime = runtime
        self.metrics = metrics or Metrics()
        self.batch_options = batch_options
        self.entries: dict[str, ModelEntry] = {}
        for model_id, value in models.items():
            if isinstance(value, BaseModel):
                entry = ModelEntry(str(model_id), value.kind)
                self._ready(entry, value)
            else:
                source = Path(value).expanduser()
                size = sum(f.stat().st_size for f in source.rglob("*") if f.is_file()) if source.is_dir() else 0
                entry = ModelEntry(str(model_id), detect_kind(source).kind, source=source,
                                   expected_seconds=0.5 + size / 100e6)
            self.entries[entry.model_id] = entry

    def _ready(self, entry: ModelEntry, model: BaseModel) -> None:
        entry.model, entry.limit = model, TokenLimit(model)
        entry.batcher = MicroBatcher(model, metrics=self.metrics, labels={"model": entry.model_id},
                                     **self.batch_options)
        entry.state = "ready"
        entry.ready.set()

    def start(self) -> None:
        """Load every directory still pending, each in a background thread."""
        for entry in self.entries.values():
            if entry.state == "loading" and entry.source is not None:
                entry.started = time.monotonic()
                threading.Thread(target=self._load, args=(entry,), daemon=True,
                                 name=f"onnx-st-load-{entry.model_id}").start()

    def _load(self, entry: ModelEntry) -> None:
        assert entry.source is not None
        try:
            load = self.loader or (lambda source: load_served_model(source, self.options_of(entry)))
            model = load(entry.source)
            self._ready(entry, model)
            logger.info("model %s ready in %.2fs", entry.model_id, time.monotonic() - entry.started)
        except Exception as exc:  # reported to clients as 503 and on /health
            logger.exception("model %s failed to load", entry.model_id)
            entry.state, entry.error = "failed", f"{type(exc).__name__}: {exc}"
            entry.ready.set()

    def options_of(self, entry: ModelEntry) -> RuntimeOptions | None:
        """The runtime options a directory is loaded with."""
        if self.runtime is None or isinstance(self.runtime, RuntimeOptions):
            return self.runtime
        return self.runtime.get(entry.model_id)

    async def stop(self) -> None:
        """Stop every batcher."""
        for entry in self.entries.values():
            if entry.batcher is not None:
                await entry.batcher.stop()

    def get(self, model_id: str | None, kind: KindName | None = None) -> ModelEntry:
        """The entry of ``model_id`` (404 when unknown), or the first of ``kind`` when ``model_id`` is ``None``.

        A model of another kind than ``kind`` is a 424, as text-embeddings-inference answers.
        """
        if model_id is None:
            for entry in self.entries.values():
                if kind is None or entry.kind.name == kind:
                    return entry
            raise ApiError(424, f"no {kind} model is served (models: {list(self.entries)})", "backend")
        found = self.entries.get(model_id)
        if found is None:
            raise ApiError(404, f"Model {model_id} not found; served models: {list(self.entries)}", "not_found")
        if kind is not None and found.kind.name != kind:
            raise ApiError(424, f"model {model_id} is a {found.kind} model, not a {kind} model", "backend")
        return found

    async def wait_ready(self, entry: ModelEntry, wait: bool, timeout: float = 600.0) -> ModelEntry:
        """The entry once ready; while loading: 503 with ``estimated_time``, or wait when ``wait`` is set."""
        deadline = time.monotonic() + timeout
        while entry.state == "loading":
            if not wait or time.monotonic() > deadline:
                raise ApiError(503, f"Model {entry.model_id} is currently loading", "unhealthy",
                               estimated_time=entry.estimated_time())
            await asyncio.sleep(0.02)
        if entry.state == "failed":
            raise ApiError(503, f"Model {entry.model_id} failed to load: {entry.error}", "unhealthy")
        return entry
