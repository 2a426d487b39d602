"""Errors of batch jobs, all under :class:`onnx_st.OnnxSTError`.

::

    OnnxSTError
    ├── MissingExtraError   (also ImportError)   an optional dependency of the job is not installed
    ├── JobError                                 the job cannot start or go on
    │   └── ResumeMismatchError                  OUTPUT holds a job of another input, model or options
    └── InputError
        └── BadRowsError                         rows without a usable text, with --on-bad-row fail
"""

from __future__ import annotations

from typing import Any

from onnx_st.errors import InputError, MissingExtraError, OnnxSTError

__all__ = ["BadRowsError", "JobError", "MissingExtraError", "ResumeMismatchError"]


class JobError(OnnxSTError):
    """The job cannot start or continue (unreadable input, unusable output directory)."""


class ResumeMismatchError(JobError):
    """The output directory was started with another input, model or options."""


class BadRowsError(InputError):
    """Rows whose text is missing or not a string, when the job is told to fail on them."""

    def __init__(self, message: str, rejected: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.rejected = rejected
