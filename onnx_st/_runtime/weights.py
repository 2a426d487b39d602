"""safetensors weights into NumPy arrays (never pickle)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from onnx_st.errors import ConfigError, ModelNotFoundError

_HEADER_LIMIT = 100 * 2**20


def _bfloat16_file(path: Path) -> dict[str, np.ndarray]:
    """Read a safetensors file that holds bfloat16 tensors (NumPy has no bfloat16): every tensor as float32
    (bfloat16 is the top half of a float32), other dtypes as stored."""
    dtypes = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
              "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(_HEADER_LIMIT, len(data) - 8):
        raise ConfigError(f"Cannot read safetensors file {path}: bad header length {size}")
    header = json.loads(data[8:8 + size])
    body = memoryview(data)[8 + size:]
    out: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, stop = spec["data_offsets"]
        shape = tuple(int(n) for n in spec["shape"])
        if not 0 <= start <= stop <= len(body):
            raise ConfigError(f"Cannot read safetensors file {path}: tensor {name!r} lies outside the file")
        raw = body[start:stop]
        if spec["dtype"] == "BF16":
            halves = np.frombuffer(raw, dtype="<u2")
            array = (halves.astype(np.uint32) << 16).view(np.float32)
        elif spec["dtype"] in dtypes:
            array = np.frombuffer(raw, dtype=np.dtype(dtypes[spec["dtype"]]).newbyteorder("<")).copy()
        else:
            raise ConfigError(f"Cannot read safetensors file {path}: unsupported dtype {spec['dtype']}")
        if array.size != int(np.prod(shape)):
            raise ConfigError(f"Cannot read safetensors file {path}: tensor {name!r} has the wrong size")
        out[name] = array.reshape(shape)
    return out


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read every tensor of a ``.safetensors`` file as float32/int NumPy arrays (float16 and bfloat16
    are widened to float32; float64 is kept).

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
    except Exception as exc:  # safetensors raises SafetensorError / OSError / TypeError (bfloat16)
        try:
            tensors = _bfloat16_file(path)
        except (ConfigError, ValueError, KeyError, TypeError, struct.error) as inner:
            raise ConfigError(f"Cannot read safetensors file {path}: {exc}") from inner
    return {k: (v.astype(np.float32) if v.dtype in (np.float16,) else v) for k, v in tensors.items()}
