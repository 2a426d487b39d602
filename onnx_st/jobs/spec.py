"""What a job computes: the model kind, the input columns and the options that shape the output."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from onnx_st import kinds
from onnx_st.errors import InputError
from onnx_st.kinds import KindName

KINDS: tuple[str, ...] = tuple(kinds.KINDS)
BadRowPolicy = Literal["skip", "fail"]
DEFAULT_PART_ROWS = 10_000


@dataclass(frozen=True)
class JobOptions:
    """Options that decide the output values; a resumed job must use the same ones.

    Args:
        kind: ``dense``, ``sparse``, ``cross`` or ``multi-vector`` (resolve ``auto`` with :func:`detect_kind` first).
        text_column: input column of the texts (dense, sparse, multi-vector).
        query_column, document_column: input columns of the pairs (cross).
        id_column: input column of the ids; ``None`` takes ``id`` when present, else the row number.
        batch_size: texts per ONNX run inside a part.
        part_rows: input rows per output part (the unit of work and of resuming).
        normalize: L2-normalize dense embeddings (each token vector of multi-vector ones).
        prompt_name: key of the model's prompts (``query``: multi-vector rows are encoded as queries).

    How the model runs (its ONNX file, threads, providers) is the job's :class:`~onnx_st.RuntimeOptions`.
    """

    kind: KindName
    text_column: str = "text"
    query_column: str = "query"
    document_column: str = "document"
    id_column: str | None = None
    batch_size: int = 32
    part_rows: int = DEFAULT_PART_ROWS
    normalize: bool = False
    prompt_name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("batch_size", "part_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.normalize and not self.model_kind.normalizes:
            raise InputError("normalize applies to dense and multi-vector models only")

    @property
    def model_kind(self) -> kinds.ModelKind:
        """The :class:`~onnx_st.kinds.ModelKind` of the job."""
        return kinds.get_kind(self.kind)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The kind's input columns inside a job's prepared batches (``text``, or ``query`` and ``document``)."""
        return self.model_kind.input_columns

    @property
    def text_columns(self) -> tuple[str, ...]:
        """The user's input columns holding those values (``--text-column``, ``--query-column`` ...)."""
        names = {"text": self.text_column, "query": self.query_column, "document": self.document_column}
        return tuple(names[c] for c in self.value_columns)

    def to_dict(self, file_name: str | None = None) -> dict[str, Any]:
        """JSON-ready form, as recorded in the manifest, with the ONNX file of the job's runtime options."""
        return {**asdict(self), "file_name": file_name}


def detect_kind(model_dir: str | Path) -> KindName:
    """The kind name of a model directory (see :func:`onnx_st.kinds.detect_kind`)."""
    return kinds.detect_kind(model_dir).kind.name
