"""A local path or a Hub repo id -> a local model directory, fetching only the files inference needs.

The small files (configs, tokenizers) come first; the :class:`~onnx_st.model_dir.ModelDir` read from
them names the rest (the ONNX files of every graph folder, Router routes included)."""

from __future__ import annotations

from pathlib import Path

from onnx_st._runtime.session import DEFAULT_FILE_NAMES
from onnx_st.errors import ModelNotFoundError
from onnx_st.model_dir import ModelDir

# configs, tokenizer files and small module files; never torch weights of the transformer itself
_CONFIG_PATTERNS = ["*.json", "**/*.json", "*.txt", "**/*.txt", "*.model", "**/*.model"]
_MODULE_WEIGHTS = ["*_*/model.safetensors", "**/*_*/model.safetensors"]
# the transformer's torch weights (sharded too), fetched only to export the model on load
_TORCH_WEIGHTS = ["*.safetensors", "**/*.safetensors"]


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def onnx_patterns(model_dir: ModelDir, file_name: str | None) -> list[str]:
    """Patterns for the ONNX file(s) of every graph folder of ``model_dir`` (Router routes included).

    Raises:
        ConfigError: a malformed ``modules.json`` or Router config (the error the load would give).
    """
    if file_name == "auto":  # the choice needs every file and the parity records (onnx_st._runtime.variants.choose_file)
        names = ["onnx/*.onnx", "onnx/parity.json", *DEFAULT_FILE_NAMES]
    else:
        names = [file_name] if file_name else list(DEFAULT_FILE_NAMES)
    patterns = []
    for folder in model_dir.transformer_folders:
        prefix = f"{folder}/" if folder else ""
        for name in names:
            patterns += [prefix + name, prefix + name + "_data", prefix + name + ".data"]
    return patterns


def resolve_model_dir(name_or_path: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None,
                      local_files_only: bool = False, token: str | bool | None = None,
                      file_name: str | None = None, weights: bool = False) -> Path:
    """Return a local directory holding the model.

    A path that exists is used as it is. Otherwise ``name_or_path`` is a Hub repo id (a bare name
    gets the ``sentence-transformers/`` organisation, as sentence-transformers does); configs and
    tokenizer files are fetched first, then only the ONNX file(s) and module weights needed;
    ``weights=True`` adds the transformer's safetensors weights (to export the model on load).

    Raises:
        ModelNotFoundError: the path does not exist, or the repo/files cannot be found or fetched.
        ConfigError: the fetched ``modules.json`` or a Router config is malformed.
    """
    return resolve_model_files(name_or_path, revision=revision, cache_dir=cache_dir,
                               local_files_only=local_files_only, token=token, file_name=file_name,
                               weights=weights).path


def resolve_model_files(name_or_path: str | Path, *, revision: str | None = None,
                        cache_dir: str | Path | None = None, local_files_only: bool = False,
                        token: str | bool | None = None, file_name: str | None = None,
                        weights: bool = False) -> ModelDir:
    """:func:`resolve_model_dir`, as the :class:`~onnx_st.model_dir.ModelDir` that planned the download
    (its JSON files already read, so that the load reads them no more).

    Raises:
        ModelNotFoundError, ConfigError: as :func:`resolve_model_dir`.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return ModelDir.read(path)
    name = str(name_or_path)
    if path.exists() or _looks_like_path(name):
        raise ModelNotFoundError(f"Model directory not found: {name}")
    repo_id = name if "/" in name else f"sentence-transformers/{name}"
    try:  # only repo ids need it: a function package leaves it out and loads directories
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:
        raise ModelNotFoundError(f"Model directory not found: {name}; downloading repo {repo_id!r} needs "
                                 "huggingface_hub (pip install huggingface_hub)") from exc

    kwargs = dict(repo_id=repo_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only,
                  token=token)
    where = "in the local Hub cache" if local_files_only else "on the Hub or in the local cache"
    errors = (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError)
    try:
        configs = ModelDir.read(snapshot_download(allow_patterns=_CONFIG_PATTERNS, **kwargs))  # type: ignore[arg-type]
    except errors as exc:
        raise ModelNotFoundError(f"Cannot find model {repo_id!r} {where}: {exc}") from exc
    patterns = onnx_patterns(configs, file_name) + _MODULE_WEIGHTS + ["**/tokenizer.json"]
    if weights:
        patterns += _TORCH_WEIGHTS
    try:
        snapshot = Path(snapshot_download(allow_patterns=patterns, **kwargs))  # type: ignore[arg-type]
    except errors as exc:
        raise ModelNotFoundError(f"Cannot find model {repo_id!r} {where}: {exc}") from exc
    # the same commit: the JSON files read to plan are the ones the load needs
    return configs if snapshot == configs.path else ModelDir.read(snapshot)
