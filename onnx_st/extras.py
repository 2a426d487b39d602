"""Optional extras: one way to use them and to say which one to install when it is missing.

The runtime needs five packages; everything else comes with an extra of ``pyproject.toml``
(``export``, ``embed``, ``ray``...). Code that needs one calls :func:`require_extra` (checks that
packages can be found, without importing them) or :func:`import_extra` (imports one module), and
a missing package becomes a :class:`~onnx_st.errors.MissingExtraError` naming the extra and its
``pip install`` command.

Example:
    >>> pa = import_extra("pyarrow", "embed", "onnx-st embed")
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from types import ModuleType

from onnx_st.errors import MissingExtraError


def install_command(extra: str) -> str:
    """The command that installs an extra, e.g. ``pip install 'onnx-st[export]'``."""
    return f"pip install 'onnx-st[{extra}]'"


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked finder, a missing parent package, a module without a spec
        return False


def missing_modules(modules: Sequence[str]) -> list[str]:
    """The modules of ``modules`` that cannot be found (none is imported)."""
    return [name for name in modules if not _findable(name)]


def require_extra(extra: str, purpose: str, modules: Sequence[str]) -> None:
    """Check that the packages of an extra can be found, without importing them.

    Raises:
        MissingExtraError: naming the missing packages, the extra and its install command.
    """
    absent = missing_modules(modules)
    if absent:
        raise MissingExtraError(f"{purpose} needs {', '.join(absent)} (missing). "
                                f"Install the {extra!r} extra with: {install_command(extra)}")


def import_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` of an extra.

    Raises:
        MissingExtraError: naming the package, the extra and its install command.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"{purpose} needs {module.split('.')[0]}: {install_command(extra)} ({exc})") from exc
