"""A row counter on stderr: tqdm when installed, else nothing."""

from __future__ import annotations

from typing import Any

from onnx_st.jobs import deps


class Progress:
    """Rows done out of ``total``; starts at ``initial`` (rows of parts finished by an earlier run)."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, desc: str = "embed") -> None:
        tqdm = deps.tqdm_class() if enabled else None
        self._bar: Any = (tqdm(total=total, initial=initial, desc=desc, unit="row", dynamic_ncols=True, smoothing=0.1)
                          if tqdm is not None else None)

    def update(self, rows: int) -> None:
        """Count ``rows`` more rows as done."""
        if self._bar is not None:
            self._bar.update(rows)

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
