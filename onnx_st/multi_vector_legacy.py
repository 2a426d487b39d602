"""Multi-vector directories without sentence-transformers 6 ``modules.json``: PyLate and Stanford ColBERT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError
from .modules import LoadContext, Module


def legacy_prompts(model_dir: Path, raw_config: dict[str, Any]) -> dict[str, str]:
    """Prompts a legacy layout implies (none for native saves)."""
    return {}


def legacy_modules(ctx: LoadContext) -> list[Module]:
    """Modules of a directory without ``modules.json``.

    Raises:
        ConfigError: a bare transformer, whose projection sentence-transformers would draw at random.
    """
    raise ConfigError(f"{ctx.model_dir} has no modules.json and is not a Stanford ColBERT checkpoint; a bare "
                      "transformer gets a randomly initialised projection in sentence-transformers. Save it with "
                      "sentence-transformers first or export it with onnx-st-export --kind multi-vector")
