"""safetensors weights into NumPy arrays (never pickle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError, ModelNotFoundError


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read every tensor of a ``.safetensors`` file as float32/int NumPy arrays.

    Raises:
        ModelNotFoundError: the file does not exist.
        ConfigError: the file is corrupt.
    """
    from safetensors import safe_open

    if not path.is_file():
        raise ModelNotFoundError(f"Weights file not found: {path}")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - safe_open has keys(), not __iter__
    except Exception as exc:  # safetensors raises SafetensorError / OSError
        raise ConfigError(f"Cannot read safetensors file {path}: {exc}") from exc
    return {k: (v.astype(np.float32) if v.dtype in (np.float16,) else v) for k, v in tensors.items()}
