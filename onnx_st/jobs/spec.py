"""What a job computes: the model kind, the input columns and the options that shape the output."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import InputError

Kind = Literal["dense", "sparse", "cross"]
KINDS: tuple[str, ...] = ("dense", "sparse", "cross")
BadRowPolicy = Literal["skip", "fail"]
DEFAULT_PART_ROWS = 10_000


@dataclass(frozen=True)
class JobOptions:
    """Options that decide the output values; a resumed job must use the same ones.

    Args:
        kind: ``dense``, ``sparse`` or ``cross`` (resolve ``auto`` with :func:`detect_kind` first).
        text_column: input column of the texts (dense, sparse).
        query_column, document_column: input columns of the pairs (cross).
        id_column: input column of the ids; ``None`` takes ``id`` when present, else the row number.
        batch_size: texts per ONNX run inside a part.
        part_rows: input rows per output part (the unit of work and of resuming).
        normalize: L2-normalize dense embeddings.
        prompt_name: key of the model's prompts.
        file_name: ONNX file inside the model's Transformer folders (default ``onnx/model.onnx``).
    """

    kind: Kind
    text_column: str = "text"
    query_column: str = "query"
    document_column: str = "document"
    id_column: str | None = None
    batch_size: int = 32
    part_rows: int = DEFAULT_PART_ROWS
    normalize: bool = False
    prompt_name: str | None = None
    file_name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("batch_size", "part_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.normalize and self.kind != "dense":
            raise InputError("normalize applies to dense models only")

    @property
    def text_columns(self) -> tuple[str, ...]:
        """The input columns holding text: one for dense/sparse, query and document for cross."""
        return (self.query_column, self.document_column) if self.kind == "cross" else (self.text_column,)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Names of those columns inside a job's prepared batches (``text`` or ``query``/``document``)."""
        return ("query", "document") if self.kind == "cross" else ("text",)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as recorded in the manifest."""
        return asdict(self)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def detect_kind(model_dir: str | Path) -> Kind:
    """``dense``, ``sparse`` or ``cross`` from a model directory's saved ``model_type``, else from its files."""
    root = Path(model_dir).expanduser()
    saved = _read_json(root / "config_sentence_transformers.json")
    types: dict[str, Kind] = {"SentenceTransformer": "dense", "SparseEncoder": "sparse", "CrossEncoder": "cross"}
    if isinstance(saved, dict) and saved.get("model_type") in types:
        return types[saved["model_type"]]
    config = _read_json(root / "config.json")
    archs = [str(a) for a in (config.get("architectures") or [])] if isinstance(config, dict) else []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "cross"
    modules = json.dumps([_read_json(root / "modules.json"), _read_json(root / "router_config.json")])
    if any(name in modules for name in ("SpladePooling", "SparseStaticEmbedding", "MLMTransformer")):
        return "sparse"
    if _read_json(root / "modules.json") is None and any(a.endswith("ForMaskedLM") for a in archs):
        return "sparse"
    return "dense"
