"""Runtime options, in one frozen object that every surface takes with the same names.

The front classes (``model_kwargs`` and keywords, as in sentence-transformers), ``onnx-st serve``
(per model), ``onnx-st embed`` (both engines), the Lambda handler (environment variables) and
``create_app`` all build one :class:`RuntimeOptions`:

============================  ==========================  ===============================
keyword                       command-line flag           environment variable
============================  ==========================  ===============================
``provider``                  ``--provider``              ``ONNX_ST_PROVIDER``
``provider_options``          ``--provider-option K=V``   ``ONNX_ST_PROVIDER_OPTIONS`` (JSON)
``file_name``                 ``--file-name``             ``ONNX_ST_FILE_NAME``
``intra_op_num_threads``      ``--threads``               ``ONNX_ST_THREADS``
``inter_op_num_threads``      ``--inter-op-threads``      ``ONNX_ST_INTER_OP_THREADS``
``parallel_runs``             ``--parallel-runs``         ``ONNX_ST_PARALLEL_RUNS``
``max_batch_tokens``          ``--max-run-tokens``        ``ONNX_ST_MAX_RUN_TOKENS`` (``none``: no limit)
``logits_budget_mib``         ``--logits-budget-mib``     ``ONNX_ST_LOGITS_BUDGET_MIB``
``device``                    ``--device``                ``ONNX_ST_DEVICE``
``prepack``                   ``--no-prepack``            ``ONNX_ST_PREPACK`` (``0``: off)
============================  ==========================  ===============================

``max_batch_tokens`` caps the rows x tokens of one ONNX run inside a batch; its flag is
``--max-run-tokens`` because ``onnx-st serve`` keeps text-embeddings-inference's
``--max-batch-tokens`` for the token budget of the batches it merges from requests.

``parallel_runs`` runs that many batches of one call at once on the same session, each on
``cores // parallel_runs`` intra-op threads unless ``intra_op_num_threads`` says otherwise: on two
cores, two one-thread runs of short texts do more per second than one two-thread run (ONNX
Runtime's threads wait on each other at every small operator). Outputs are the same bits.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # argparse is imported by the CLI, not by every cold start
    import argparse

from onnx_st.errors import InputError

ProviderSpec = str | tuple[str, dict[str, Any]]
CPU = "CPUExecutionProvider"
# Largest rows x sequence length of one ONNX run. Attention holds (rows, heads, seq, seq) scores and
# the feed-forward layer a (tokens, 4 x hidden) activation, so a batch of 32 texts of 256 tokens
# costs hundreds of MB. Runs of 1,024 tokens stay in the CPU's caches: faster and smaller than runs
# of 2,048 or whole batches (the README's table); on a GPU, whole batches (``None``) use it better.
DEFAULT_MAX_BATCH_TOKENS = 1024
# Upper bound of the (rows, seq, vocabulary) MLM logits array of one sparse ONNX run.
DEFAULT_LOGITS_BUDGET_MIB = 64.0
# Most batches in flight at once: each holds its own activations (one run of up to max_batch_tokens).
MAX_PARALLEL_RUNS = 64
ENV_PREFIX = "ONNX_ST_"


def _positive_int(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return value


def provider_for_device(device: str | None) -> str | None:
    """sentence-transformers' ``device`` as an execution provider (``cuda[:N]`` -> CUDA).

    Raises:
        InputError: a device with no ONNX Runtime provider.
    """
    if device is None or device == "cpu":
        return None
    if not isinstance(device, str):
        raise InputError(f"device must be a str such as 'cpu' or 'cuda:0', got {type(device).__name__}")
    if device == "cuda" or device.startswith("cuda:"):
        return "CUDAExecutionProvider"
    raise InputError(f"device {device!r} has no ONNX Runtime provider here; use 'cpu' or 'cuda[:N]', "
                     "or pass model_kwargs={'provider': ...}")


def _device_options(device: str | None) -> dict[str, Any]:
    """``cuda:N`` -> the CUDA provider's ``device_id``."""
    if device and device.startswith("cuda:"):
        index = device.split(":", 1)[1]
        if not index.isdigit():
            raise InputError(f"device {device!r}: the index after 'cuda:' must be a number")
        return {"device_id": int(index)}
    return {}


@dataclass(frozen=True)
class RuntimeOptions:
    """How a model runs: execution providers, ONNX file, threads and memory budgets.

    Build it with :meth:`from_kwargs` (the keywords users pass), :meth:`from_args` (command-line
    flags) or :meth:`from_env` (environment variables); every field is validated here.

    Example:
        >>> RuntimeOptions.from_kwargs(provider="CPUExecutionProvider", file_name="onnx/model_O2.onnx").providers
        ('CPUExecutionProvider',)
    """

    providers: tuple[ProviderSpec, ...] = (CPU,)
    file_name: str | None = None
    intra_op_num_threads: int | None = None
    inter_op_num_threads: int | None = None
    max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS
    logits_budget_mib: float = DEFAULT_LOGITS_BUDGET_MIB
    prepack: bool = True
    """``False`` skips ONNX Runtime's repacking of constant MatMul weights when a session starts: with a
    fast-load file (:mod:`onnx_st.fastload`) start-up then stays a few milliseconds whatever the model's
    size, and each run packs as it multiplies (small batches cost about twice the CPU). For functions
    that mostly start cold."""
    parallel_runs: int = 1
    """Batches of one call run at once (see the module docstring); 1 runs them one after the other."""

    def __post_init__(self) -> None:
        if not self.providers:
            raise InputError("providers must name at least one execution provider")
        for spec in self.providers:
            name = spec if isinstance(spec, str) else spec[0] if isinstance(spec, tuple) and len(spec) == 2 else None
            if not isinstance(name, str) or not (isinstance(spec, str) or isinstance(spec[1], dict)):
                raise InputError(f"a provider is a name or a (name, options dict) pair, got {spec!r}")
        if self.file_name is not None and (not isinstance(self.file_name, str) or not self.file_name):
            raise InputError(f"file_name must be a non-empty str, got {self.file_name!r}")
        _positive_int("intra_op_num_threads", self.intra_op_num_threads)
        _positive_int("inter_op_num_threads", self.inter_op_num_threads)
        _positive_int("max_batch_tokens", self.max_batch_tokens)
        _positive_int("parallel_runs", self.parallel_runs, allow_none=False)
        if self.parallel_runs > MAX_PARALLEL_RUNS:
            raise InputError(f"parallel_runs must be at most {MAX_PARALLEL_RUNS} (each run in flight holds its own "
                             f"activations), got {self.parallel_runs}")
        budget = self.logits_budget_mib
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
            raise InputError(f"logits_budget_mib must be a positive number, got {budget!r}")

    @property
    def provider(self) -> str:
        """The first (preferred) execution provider."""
        first = self.providers[0]
        return first if isinstance(first, str) else first[0]

    @classmethod
    def from_kwargs(cls, provider: str | None = None, providers: Sequence[ProviderSpec] | None = None,
                    provider_options: Mapping[str, Any] | None = None, file_name: str | None = None,
                    intra_op_num_threads: int | None = None, inter_op_num_threads: int | None = None,
                    max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
                    logits_budget_mib: float = DEFAULT_LOGITS_BUDGET_MIB, device: str | None = None,
                    prepack: bool = True, parallel_runs: int = 1) -> RuntimeOptions:
        """Build from keyword arguments (``provider=`` as in sentence-transformers' ``model_kwargs``).

        A single ``provider`` other than CPU is followed by the CPU provider, for the operators the
        accelerator lacks, as ONNX Runtime documents. ``device`` (``cpu``, ``cuda[:N]``) picks the
        provider when none is named.

        Raises:
            InputError: a value of the wrong type or range.
        """
        if provider is not None and not isinstance(provider, str):
            raise InputError(f"provider must be an execution provider name (str), got {type(provider).__name__}")
        if provider_options is not None and not isinstance(provider_options, Mapping):
            raise InputError(f"provider_options must be a dict, got {type(provider_options).__name__}")
        if providers is None:
            name = provider or provider_for_device(device) or CPU
            opts = {**_device_options(device), **dict(provider_options or {})} if name != CPU or provider_options \
                else {}
            chosen: list[ProviderSpec] = [(name, opts) if opts else name]
            if name != CPU:
                chosen.append(CPU)
            providers = chosen
        elif isinstance(providers, (str, bytes)) or not isinstance(providers, Sequence):
            raise InputError(f"providers must be a list of provider names, got {providers!r}")
        specs: tuple[ProviderSpec, ...] = tuple((p[0], p[1]) if isinstance(p, (list, tuple)) else p
                                                for p in providers)
        if not isinstance(prepack, bool):
            raise InputError(f"prepack must be True or False, got {prepack!r}")
        return cls(specs, file_name, intra_op_num_threads, inter_op_num_threads, max_batch_tokens, logits_budget_mib,
                   prepack, parallel_runs)

    def run_threads(self) -> int:
        """Intra-op threads of each session: the option, else ``cores // parallel_runs`` when runs share the
        cores, else 0 (ONNX Runtime's default: every core)."""
        if self.intra_op_num_threads:
            return self.intra_op_num_threads
        if self.parallel_runs > 1:
            from onnx_st.cpu import cpu_count

            return max(1, cpu_count() // self.parallel_runs)
        return 0

    def with_overrides(self, **changes: Any) -> RuntimeOptions:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    # ---- one set of flag names for every command -------------------------------------------------
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser | Any) -> None:
        """Add the runtime flags (``--provider``, ``--file-name``, ``--threads`` ...) to a parser or group."""
        parser.add_argument("--provider", help="ONNX Runtime execution provider (default CPUExecutionProvider)")
        parser.add_argument("--provider-option", action="append", metavar="KEY=VALUE", default=None,
                            help="an option of the provider (repeatable), e.g. device_id=0")
        parser.add_argument("--device", help="cpu or cuda[:N] (picks the provider when --provider is not given)")
        parser.add_argument("--file-name", help="ONNX file relative to the model's Transformer folder (default "
                                                "onnx/model.onnx; auto: the fastest file whose parity record passed "
                                                "and whose instruction set this CPU has)")
        parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: all cores)")
        parser.add_argument("--inter-op-threads", type=int, help="ONNX Runtime inter-op threads")
        parser.add_argument("--parallel-runs", type=int, default=1,
                            help="batches of one call run at once, each on cores / N threads (default 1)")
        parser.add_argument("--max-run-tokens", type=_optional_int, default=DEFAULT_MAX_BATCH_TOKENS,
                            help=f"most rows x tokens of one ONNX run (default {DEFAULT_MAX_BATCH_TOKENS}; "
                                 "'none': whole batches)")
        parser.add_argument("--logits-budget-mib", type=float, default=DEFAULT_LOGITS_BUDGET_MIB,
                            help=f"sparse models: most MiB of MLM logits per ONNX run (default "
                                 f"{DEFAULT_LOGITS_BUDGET_MIB:g})")
        parser.add_argument("--no-prepack", dest="prepack", action="store_false",
                            help="skip ONNX Runtime's weight repacking at start-up (faster cold starts, slower runs)")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RuntimeOptions:
        """Build from the flags of :meth:`add_arguments`."""
        return cls.from_kwargs(provider=args.provider, provider_options=_parse_pairs(args.provider_option),
                               device=args.device, file_name=args.file_name, intra_op_num_threads=args.threads,
                               inter_op_num_threads=args.inter_op_threads, max_batch_tokens=args.max_run_tokens,
                               logits_budget_mib=args.logits_budget_mib, prepack=args.prepack,
                               parallel_runs=args.parallel_runs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX) -> RuntimeOptions:
        """Build from ``ONNX_ST_*`` environment variables (see the module docstring).

        Raises:
            InputError: a variable that does not parse, naming it.
        """
        env = os.environ if environ is None else environ

        def get(name: str, convert: Any = str) -> Any:
            raw = env.get(prefix + name)
            if raw is None or raw == "":
                return None
            try:
                return convert(raw)
            except ValueError as exc:
                raise InputError(f"{prefix}{name}={raw!r}: {exc}") from exc

        provider_options = get("PROVIDER_OPTIONS", json.loads)
        budget = get("LOGITS_BUDGET_MIB", float)
        parallel_runs = get("PARALLEL_RUNS", int)
        return cls.from_kwargs(provider=get("PROVIDER"), provider_options=provider_options, device=get("DEVICE"),
                               file_name=get("FILE_NAME"), intra_op_num_threads=get("THREADS", int),
                               inter_op_num_threads=get("INTER_OP_THREADS", int),
                               max_batch_tokens=get("MAX_RUN_TOKENS", _optional_int)
                               if env.get(prefix + "MAX_RUN_TOKENS") else DEFAULT_MAX_BATCH_TOKENS,
                               logits_budget_mib=DEFAULT_LOGITS_BUDGET_MIB if budget is None else budget,
                               prepack=get("PREPACK", _flag) is not False,
                               parallel_runs=1 if parallel_runs is None else parallel_runs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (recorded in job manifests, shown by ``onnx-st info``)."""
        data = asdict(self)
        data["providers"] = [p if isinstance(p, str) else [p[0], p[1]] for p in self.providers]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuntimeOptions:
        """The inverse of :meth:`to_dict` (how options travel to Ray actors by value).

        Raises:
            InputError: unknown keys or invalid values.
        """
        unknown = set(data) - set(cls.field_names())
        if unknown:
            raise InputError(f"Unknown runtime options {sorted(unknown)}; known: {list(cls.field_names())}")
        values = dict(data)
        if "providers" in values:
            values["providers"] = tuple(p if isinstance(p, str) else (p[0], dict(p[1])) for p in values["providers"])
        return cls(**values)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the fields."""
        return tuple(f.name for f in fields(cls))


def _flag(raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (environment variables)."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _optional_int(raw: str) -> int | None:
    """``none`` -> ``None``, else an int (argparse/env converter)."""
    return None if raw.strip().lower() in ("none", "null", "0") else int(raw)


def _parse_pairs(pairs: Sequence[str] | None) -> dict[str, Any] | None:
    """``["device_id=0", ...]`` -> ``{"device_id": 0}`` (values parsed as JSON when they parse)."""
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--provider-option takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


MODEL_KWARGS = ("provider", "providers", "provider_options", "file_name", "intra_op_num_threads",
                "inter_op_num_threads", "prepack", "parallel_runs")
"""The ``model_kwargs`` keys of the ONNX Runtime session (as sentence-transformers' ONNX backend)."""
LOAD_KWARGS = ("export",)
"""The ``model_kwargs`` keys that steer loading, not the session: ``export`` (see :mod:`onnx_st.export_hook`)."""


def per_model_options(args: argparse.Namespace, names: Sequence[str]) -> dict[str, RuntimeOptions]:
    """Runtime options of each served model: the runtime flags, overridden by its ``--model-option``s.

    ``--model-option NAME:KEY=VALUE`` takes the runtime flags' names without dashes (``file-name``,
    ``provider``, ``provider-option``, ``device``, ``threads``, ``inter-op-threads``, ``max-run-tokens``,
    ``logits-budget-mib``, ``parallel-runs``), e.g. ``--model-option minilm:file-name=onnx/model_qint8_avx2.onnx``.

    Raises:
        InputError: an option of a model not served, or an unknown or malformed option.
    """
    import argparse

    flags = argparse.ArgumentParser(prog="--model-option", add_help=False, exit_on_error=False)
    RuntimeOptions.add_arguments(flags)
    extra: dict[str, list[str]] = {name: [] for name in names}
    for spec in getattr(args, "model_option", None) or []:
        name, sep, pair = spec.partition(":")
        key, eq, value = pair.partition("=")
        if not sep or not eq or not key:
            raise InputError(f"--model-option takes NAME:KEY=VALUE, got {spec!r}")
        if name not in extra:
            raise InputError(f"--model-option {spec!r}: no served model is named {name!r} (models: {list(extra)})")
        extra[name] += [f"--{key.replace('_', '-')}", value]
    out = {}
    for name, tokens in extra.items():
        namespace = argparse.Namespace(**vars(args))
        try:
            namespace, unknown = flags.parse_known_args(tokens, namespace=namespace)
        except (argparse.ArgumentError, SystemExit) as exc:
            raise InputError(f"--model-option for {name!r}: {exc}") from None
        if unknown:
            raise InputError(f"--model-option for {name!r}: unknown option {unknown[0]!r}")
        out[name] = RuntimeOptions.from_args(namespace)
    return out
