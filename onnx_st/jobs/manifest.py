"""The manifest of an output directory: which input, model and options its parts come from.

A job writes ``_manifest.json`` before its first part; a later run on the same directory resumes only
when the input content, the model content and the options are the same, and refuses otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from onnx_st.jobs.errors import JobError, ResumeMismatchError

MANIFEST = "_manifest.json"
FORMAT = "onnx-st-embed/1"
_CHUNK = 1 << 20


def files_sha256(files: Iterable[Path], root: Path | None = None) -> str:
    """SHA-256 over the files' contents (and their paths relative to ``root`` when given), in the order given."""
    digest = hashlib.sha256()
    for path in files:
        if root is not None:
            digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def model_sha256(model_dir: Path) -> str:
    """SHA-256 of every file of a model directory (hidden folders such as ``.cache`` left out)."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(model_dir).parts))
    return files_sha256(files, model_dir)


def build(*, input_path: Path, input_format: str, input_files: list[Path], rows: int, model_dir: Path,
          options: dict[str, Any], parts: int) -> dict[str, Any]:
    """A new manifest (status ``running``)."""
    return {
        "format": FORMAT,
        "input": {"path": str(input_path), "format": input_format, "rows": rows,
                  "bytes": sum(p.stat().st_size for p in input_files), "sha256": files_sha256(input_files)},
        "model": {"path": str(model_dir), "sha256": model_sha256(model_dir)},
        "options": options,
        "parts": parts,
        "status": "running",
    }


def differences(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a saved manifest and a new one, in the keys that decide the output."""
    out = []
    if saved.get("format") != new["format"]:
        out.append(f"manifest format {saved.get('format')!r} (this onnx-st writes {new['format']!r})")
    for section, key in (("input", "sha256"), ("input", "format"), ("model", "sha256")):
        old, cur = saved.get(section, {}).get(key), new[section][key]
        if old != cur:
            out.append(f"{section} {key}: {str(old)[:16]} was recorded, now {str(cur)[:16]} "
                       f"({saved.get(section, {}).get('path')} -> {new[section]['path']})")
    old_options = saved.get("options", {})
    for key in sorted(set(old_options) | set(new["options"])):
        if old_options.get(key) != new["options"].get(key):
            out.append(f"option {key}: {old_options.get(key)!r} was recorded, now {new['options'].get(key)!r}")
    return out


def load(output_dir: Path) -> dict[str, Any] | None:
    """The saved manifest, or ``None`` when there is none."""
    path = output_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise JobError(f"{path} is not valid JSON ({exc}); remove the output directory to start over") from exc
    if not isinstance(data, dict):
        raise JobError(f"{path} is not a job manifest; remove the output directory to start over")
    return data


def check_resume(saved: dict[str, Any], new: dict[str, Any], output_dir: Path) -> None:
    """Refuse to add parts to a directory started with another input, model or options.

    Raises:
        ResumeMismatchError: listing every difference.
    """
    diffs = differences(saved, new)
    if diffs:
        raise ResumeMismatchError(f"{output_dir} holds parts of another job; not resuming: " + "; ".join(diffs)
                                  + ". Use a new output directory, or rerun with the recorded input, model "
                                  "and options")
