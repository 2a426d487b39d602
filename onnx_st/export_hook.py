"""Export on first load: a model without its ONNX file gets one from the exporter when it is installed.

As sentence-transformers' ONNX backend does, loading a directory or Hub repo whose Transformer has
no ``onnx/model.onnx`` exports it, when the ``export`` extra (torch, sentence-transformers) is
installed; ``model_kwargs={"export": True}`` exports afresh even when the file exists and
``{"export": False}`` never exports. The export runs the hook an exporter registers in the
``onnx_st.export_hooks`` entry-point group (onnx-st's own: ``exporter.on_load``, the steps of
``onnx-st-export``: graph check against PyTorch, parity record in ``onnx/parity.json``) into a cache
folder, never into the source nor a Hub snapshot, so a second load reuses it:

* ``$ONNX_ST_EXPORT_CACHE`` when set, else ``<cache_folder>/onnx-st-exports`` when a ``cache_folder``
  is passed, else ``$XDG_CACHE_HOME/onnx-st/exports`` (``~/.cache/onnx-st/exports``);
* one folder per source directory (its path and its files' sizes and times) and kind.

``model.save_pretrained(DIR)`` copies the exported directory: ``DIR`` reloads with
``local_files_only=True`` on a runtime-only install. Without the extra, the load fails with a
:class:`~onnx_st.errors.ModelNotFoundError` naming the file looked for, the install command and
the ``onnx-st-export`` command. This module is the runtime's one seam to the exporter: it loads the
hook only when it exports, and imports nothing of the exporter by name.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onnx_st._runtime.session import resolve_onnx_file
from onnx_st._runtime.variants import AUTO, choose_file
from onnx_st.errors import InputError, MissingExtraError, ModelLoadError, ModelNotFoundError, OnnxSTError
from onnx_st.extras import install_command
from onnx_st.hub import resolve_model_dir
from onnx_st.kinds import ModelKind
from onnx_st.model_dir import ModelDir

logger = logging.getLogger(__name__)

EXPORT_CACHE_ENV = "ONNX_ST_EXPORT_CACHE"
EXPORT_HOOK_GROUP = "onnx_st.export_hooks"
"""The entry-point group of the export hook: ``export_for_load(source_dir, output_dir, kind_name)``
writes the exported directory and returns (or yields) the lines it reports. onnx-st's own exporter
registers ``exporter.on_load:export_for_load`` there; the runtime never imports the exporter otherwise."""
EXPORTED_FILE = "onnx/model.onnx"
"""The file the exporter writes into every Transformer folder."""
_CACHE_FORMAT = 1  # bump when the exported layout changes


@dataclass(frozen=True)
class LoadSource:
    """What the user asked to load, and the Hub options to fetch it with."""

    name_or_path: str | Path
    revision: str | None = None
    cache_folder: str | Path | None = None
    local_files_only: bool = False
    token: str | bool | None = None

    @property
    def is_local(self) -> bool:
        """Whether ``name_or_path`` is a local directory (else a Hub repo id)."""
        return Path(self.name_or_path).expanduser().is_dir()


def split_export(model_kwargs: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool | None]:
    """``model_kwargs`` without ``export``, and ``export`` (``None``: export when the ONNX file is missing).

    Raises:
        InputError: ``export`` is not a bool or None.
    """
    if not isinstance(model_kwargs, dict) or "export" not in model_kwargs:
        return model_kwargs, None
    rest = {k: v for k, v in model_kwargs.items() if k != "export"}
    export = model_kwargs["export"]
    if export is not None and not isinstance(export, bool):
        raise InputError(f"model_kwargs export must be True, False or None, got {export!r}")
    return rest, export


def missing_onnx_files(model_dir: Path | ModelDir, file_name: str | None) -> list[str]:
    """The ONNX files (relative to ``model_dir``) that the Transformer folders lack."""
    files = ModelDir.of(model_dir)
    missing = []
    for folder in files.transformer_folders:
        directory = files.path / folder if folder else files.path
        try:
            if file_name == AUTO:  # the parity records as the directory was read
                choose_file(directory, records=files.parity(folder))
            else:
                resolve_onnx_file(directory, file_name)
        except ModelNotFoundError:
            missing.append(f"{folder}/{file_name or EXPORTED_FILE}".lstrip("/"))
    return missing


def export_cache_root(cache_folder: str | Path | None = None) -> Path:
    """Where exports made on load are kept (see the module docstring)."""
    configured = os.environ.get(EXPORT_CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    if cache_folder is not None:
        return Path(cache_folder).expanduser() / "onnx-st-exports"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "onnx-st" / "exports"


def _fingerprint(model_dir: Path) -> list[tuple[str, int, int]]:
    """Name, size and modification time of every file but ONNX files: changes when the model is saved again."""
    found = []
    for path in sorted(model_dir.rglob("*")):
        rel = path.relative_to(model_dir)
        if path.is_file() and "onnx" not in rel.parts[:-1] and path.suffix != ".onnx" and ".cache" not in rel.parts:
            stat = path.stat()
            found.append((rel.as_posix(), stat.st_size, stat.st_mtime_ns))
    return found


def export_folder(model_dir: Path, kind: ModelKind, source: LoadSource) -> Path:
    """The cache folder of the export of ``model_dir`` as ``kind``."""
    resolved = model_dir.resolve()
    # a Hub snapshot never changes (its folder is the commit); a local directory can be saved again
    identity = {"format": _CACHE_FORMAT, "source": str(resolved), "kind": kind.name,
                "files": _fingerprint(resolved) if source.is_local else None}
    import hashlib  # here, not at import: every cold start would pay for it

    digest = hashlib.sha256(json.dumps(identity).encode("utf8")).hexdigest()[:16]
    label = (str(source.name_or_path).rstrip("/").replace("\\", "/").rsplit("/", 1)[-1] or "model")
    return export_cache_root(source.cache_folder) / f"{label}-{kind.name}-{digest}"


def ensure_onnx(model_files: ModelDir, kind: ModelKind, source: LoadSource, file_name: str | None,
                export: bool | None) -> ModelDir:
    """The directory to load: ``model_files`` itself, or an export of it when its ONNX file is missing.

    Raises:
        ModelNotFoundError: the file is missing and the ``export`` extra is not installed.
        InputError: ``export=True`` with a ``file_name`` the exporter does not write.
        OnnxModelError: the export differs from PyTorch.
        ModelLoadError: the export failed (the cause is chained).
    """
    model_dir = model_files.path
    if export is False or not model_files.transformer_folders:
        return model_files
    missing = missing_onnx_files(model_files, file_name)
    if export is None and (not missing or file_name not in (None, EXPORTED_FILE)):
        return model_files  # present, or a named variant the exporter does not write (the load names the files)
    if file_name not in (None, EXPORTED_FILE):
        raise InputError(f"model_kwargs export=True writes {EXPORTED_FILE}, not {file_name!r}: pass "
                         f"file_name={EXPORTED_FILE!r} or none")
    target = export_folder(model_dir, kind, source)
    if export is None and target.is_dir():
        logger.info("No ONNX file %s in %s: loading the export made on an earlier load, %s",
                    ", ".join(missing), model_dir, target)
        return ModelDir.read(target)
    what = f"No ONNX file {', '.join(missing)} in {model_dir}" if missing else f"Exporting {model_dir} afresh"
    try:
        export_for_load = load_export_hook()
    except ImportError as exc:
        install = "" if isinstance(exc, MissingExtraError) else f" Install it with: {install_command('export')}."
        raise ModelNotFoundError(
            f"{what}; exporting it on load needs the onnx-st exporter: {exc}.{install} Or export the model once "
            f"where the exporter is installed, with `onnx-st-export {source.name_or_path} OUTPUT_DIR`, and load "
            "OUTPUT_DIR.") from exc
    export_source = model_dir
    if not source.is_local:  # the snapshot holds configs only: fetch the torch weights into the Hub cache
        export_source = resolve_model_dir(source.name_or_path, revision=source.revision,
                                          cache_dir=source.cache_folder, local_files_only=source.local_files_only,
                                          token=source.token, file_name=file_name, weights=True)
    logger.warning("%s: exporting the %s model to ONNX with the onnx-st exporter into %s", what, kind.name, target)
    try:
        _export_into(target, lambda out: export_for_load(export_source, out, kind.name))
    except OnnxSTError:
        raise
    except Exception as exc:  # torch, transformers, onnx: keep the cause, name the way out
        raise ModelLoadError(f"Exporting {source.name_or_path} to ONNX on load failed: {exc}. The exporter "
                             f"command shows every step: onnx-st-export {source.name_or_path} OUTPUT_DIR") from exc
    logger.warning("Exported %s to ONNX in %s. Saving the model keeps the ONNX files, so that later starts need "
                   "no export: model.save_pretrained(DIR), then load DIR (it loads with local_files_only=True "
                   "and without the export extra).", source.name_or_path, target)
    return ModelDir.read(target)


ExportHook = Callable[[Path, Path, str], Iterable[str]]


def load_export_hook() -> ExportHook:
    """The installed export hook (the first of :data:`EXPORT_HOOK_GROUP`).

    Raises:
        ImportError: no exporter is installed, or it lacks its dependencies (then a
            :class:`~onnx_st.errors.MissingExtraError` naming the extra).
    """
    from importlib.metadata import entry_points

    hooks = sorted(entry_points(group=EXPORT_HOOK_GROUP), key=lambda e: e.name)
    if not hooks:
        raise ImportError(f"no exporter is installed (no entry point in the group {EXPORT_HOOK_GROUP!r})")
    hook: ExportHook = hooks[0].load()
    return hook


def _export_into(target: Path, export: Any) -> None:
    """Run ``export(output_dir)`` into a temporary folder beside ``target``, then move it into place at once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for line in export(work / "model"):
            logger.info("%s", line)
        if target.exists():  # export=True: the earlier export makes way
            target.rename(work / "replaced")
        try:
            (work / "model").rename(target)
        except OSError:
            if not target.is_dir():  # another process finished the same export first: use it
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
