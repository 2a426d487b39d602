"""ONNX Runtime sessions: file choice, provider check, threads, and feeding only declared inputs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from onnx_st._runtime.config import inside
from onnx_st.errors import ConfigError, ModelNotFoundError, OnnxModelError, ProviderError, foreign_errors
from onnx_st.options import ProviderSpec, RuntimeOptions

DEFAULT_FILE_NAMES = ("onnx/model.onnx", "model.onnx")
_NUMPY_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32,
                "tensor(float16)": np.float16, "tensor(bool)": np.bool_}


def list_onnx_files(directory: Path) -> list[str]:
    """Every ``.onnx`` file under ``directory``, relative, sorted."""
    if not directory.is_dir():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*.onnx"))


def resolve_onnx_file(directory: Path, file_name: str | None = None) -> Path:
    """Pick the ONNX file of a Transformer directory: ``file_name``, else ``onnx/model.onnx``, else ``model.onnx``.

    ``file_name="auto"`` picks the fastest file this CPU may use (:func:`onnx_st._runtime.variants.choose_file`,
    which logs which file and why).

    Raises:
        ConfigError: ``file_name`` is absolute or leads out of ``directory``.
        ModelNotFoundError: the file is missing; the message lists the ONNX files present.
    """
    if file_name == "auto":
        from onnx_st._runtime.variants import choose_file

        return directory / choose_file(directory).file_name
    candidates = (file_name,) if file_name else DEFAULT_FILE_NAMES
    for candidate in candidates:
        path = inside(directory, candidate, "file_name", "model_kwargs['file_name']")
        if path.is_file():
            return path
    present = list_onnx_files(directory)
    wanted = file_name or " or ".join(DEFAULT_FILE_NAMES)
    raise ModelNotFoundError(
        f"No ONNX file {wanted} in {directory}. ONNX files present: {present or 'none'}. "
        "Pass file_name=... to pick one, or export the model with `onnx-st-export`."
    )


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def check_providers(providers: Sequence[ProviderSpec]) -> list[ProviderSpec]:
    """Fail when a requested provider is not available; never fall back silently.

    Raises:
        ProviderError: naming the missing and the available providers.
    """
    available = available_providers()
    for spec in providers:
        name = spec if isinstance(spec, str) else spec[0]
        if name not in available:
            raise ProviderError(f"Execution provider {name!r} is not available; available: {', '.join(available)}")
    return list(providers)


class OnnxSession:
    """One ``onnxruntime.InferenceSession`` and the names of its inputs and outputs."""

    def __init__(self, path: Path, options: RuntimeOptions) -> None:
        import onnxruntime as ort

        providers = check_providers(options.providers)
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.run_threads()
        if options.inter_op_num_threads:
            so.inter_op_num_threads = options.inter_op_num_threads
        so.log_severity_level = int(os.environ.get("ONNX_ST_ORT_LOG_LEVEL", "3"))
        so.enable_mem_pattern = False  # shapes change every batch: the pattern only adds memory
        profile = os.environ.get("ONNX_ST_ORT_PROFILE")
        if profile:  # ONNX Runtime's per-operator profile, written when the session ends (tools.profile_ops)
            so.enable_profiling = True
            so.profile_file_prefix = profile
        if not options.prepack:
            so.add_session_config_entry("session.disable_prepacking", "1")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            if "External data path" in str(exc) or "external data location" in str(exc).lower():
                raise ConfigError(f"{path} names external data outside its directory, which is never read: "
                                  f"{exc}") from exc
            raise OnnxModelError(f"Cannot load ONNX file {path}: {exc}") from exc
        self.path = path
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self._input_dtypes = {i.name: _NUMPY_TYPES.get(i.type, np.int64) for i in self._session.get_inputs()}
        self.output_names = tuple(o.name for o in self._session.get_outputs())
        self.output_shapes: dict[str, tuple[int | str | None, ...] | None] = {
            o.name: tuple(o.shape) if isinstance(o.shape, list) else None for o in self._session.get_outputs()}
        self.providers = tuple(self._session.get_providers())
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if wanted not in self.providers:
            raise ProviderError(f"ONNX Runtime could not start {wanted!r} for {path} (it runs on {self.providers}); "
                                "check the accelerator's drivers and libraries")

    def pick_output(self, preferred: Sequence[str], rank: int | None = None) -> str:
        """The first of ``preferred`` the graph outputs, else its first output of ``rank`` dimensions."""
        for name in preferred:
            if name in self.output_names:
                return name
        for name in self.output_names:
            shape = self.output_shapes.get(name)
            if rank is None or (shape is not None and len(shape) == rank):
                return name
        raise OnnxModelError(f"{self.path} has no output named {list(preferred)} nor any of rank {rank}; "
                             f"outputs: {list(self.output_names)}")

    def run(self, output: str, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run the graph on the inputs it declares and return one output.

        Raises:
            OnnxModelError: the graph needs an input we cannot provide, or it fails.
        """
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise OnnxModelError(f"{self.path} needs inputs {missing}; onnx-st provides {sorted(feeds)}")
        with foreign_errors(OnnxModelError, f"ONNX Runtime failed on {self.path}"):
            inputs: dict[str, np.ndarray] = {n: np.asarray(feeds[n], dtype=self._input_dtypes[n]) for n in self.input_names}
            result: np.ndarray = self._session.run([output], inputs)[0]
        return result
