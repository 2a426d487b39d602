"""Build an AWS Lambda function package: runtime dependencies, the handler and a reduced model directory.

``onnx-st lambda-package MODEL_DIR OUT`` installs the dependencies the handler imports for the
function's platform (``pip install --target --platform --only-binary=:all:``), drops what it never
imports (each exclusion is listed in :data:`UNUSED_REQUIREMENTS` and :data:`UNUSED_PATHS` with
the reason it is safe), copies ``onnx_st`` itself and ``MODEL_DIR`` reduced to what inference reads
into ``OUT/model``, rewrites the chosen ONNX file to load fast (:mod:`onnx_st.fastload`), writes a
``Dockerfile`` for a container image of the same folder, and prints the unzipped size, failing when
it is over the limit (250 MiB for a .zip package, 10 GiB for an image).
"""

from __future__ import annotations

import compileall
import py_compile
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from onnx_st.errors import ConfigError, OnnxSTError
from onnx_st.fastload import DATA_SUFFIX, write_fast_load
from onnx_st.serverless.package_model import copy_model_dir

ZIP_LIMIT_MIB = 250  # unzipped .zip deployment package, layers included
IMAGE_LIMIT_MIB = 10 * 1024
MODEL_FOLDER = "model"
HANDLER = "onnx_st.serverless.handler.handler"
DROPPED = "huggingface_hub"  # the one runtime requirement a function never uses: it loads from a directory
KEPT_EXTRAS = {"server": ("fastapi",)}  # uvicorn is the HTTP server of `onnx-st serve`, not of a function

# requirement edges not followed: (dependant, dependency) -> why the handler never imports it
UNUSED_REQUIREMENTS: dict[tuple[str, str], str] = {
    ("tokenizers", "huggingface-hub"): "Tokenizer.from_pretrained downloads from the Hub; onnx-st only calls "
                                       "Tokenizer.from_file (this also drops hf-xet, httpx, fsspec, filelock, pyyaml, "
                                       "tqdm and click, which only huggingface_hub requires)",
    ("onnxruntime", "protobuf"): "used by onnxruntime.tools/transformers/quantization (offline graph tools); "
                                 "InferenceSession parses models in C++",
    ("onnxruntime", "flatbuffers"): "used by onnxruntime.tools to write ORT-format models, never by a session",
    ("onnxruntime", "packaging"): "used by onnxruntime.transformers and quantization version checks only",
    ("onnxruntime", "sympy"): "symbolic shape inference of onnxruntime.tools, never imported by a session",
    ("onnxruntime", "coloredlogs"): "logging of onnxruntime's offline tools",
}
# folders of kept distributions that nothing on the handler's path imports
UNUSED_PATHS: dict[str, str] = {
    "onnxruntime/transformers": "offline transformer graph optimiser (the exporter's tool)",
    "onnxruntime/quantization": "offline int8 quantiser (the exporter's tool)",
    "onnxruntime/tools": "offline model conversion and inspection scripts",
    "onnxruntime/backend": "ONNX backend-test API (imports onnx)",
    "onnxruntime/datasets": "sample models for onnxruntime's own examples",
    "numpy/**/tests": "numpy's test suite (numpy.test() only)",
    "bin": "console scripts of the dependencies (f2py, fastapi...); a function runs none",
}


@dataclass
class PackageReport:
    """What a build wrote: sizes in bytes by part, what it left out and why."""

    output: Path
    sizes: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Unzipped size of the whole package."""
        return sum(self.sizes.values())

    def lines(self, limit_mib: int) -> list[str]:
        """Human-readable summary: largest parts, total against the limit, exclusions, env vars."""
        out = [f"{name:<28} {size / 2**20:8.1f} MiB" for name, size in
               sorted(self.sizes.items(), key=lambda kv: -kv[1])[:14]]
        out.append(f"{'unzipped total':<28} {self.total / 2**20:8.1f} MiB of {limit_mib} MiB "
                   f"({(limit_mib * 2**20 - self.total) / 2**20:.1f} MiB left)")
        out += [f"left out {name}: {why}" for name, why in self.left_out.items()]
        out += [f"set {k}={v}" for k, v in self.environment.items()] + [f"handler: {HANDLER}"]
        return out


def runtime_requirements() -> list[str]:
    """onnx-st's own requirements plus the server extra's FastAPI, without huggingface_hub and uvicorn."""
    try:
        declared = metadata.requires("onnx-st") or []
    except metadata.PackageNotFoundError as exc:
        raise ConfigError("onnx-st is not installed (pip install onnx-st): its requirements are read from its "
                          "metadata") from exc
    chosen = []
    for spec in declared:
        requirement, _, marker = spec.partition(";")
        name = _name(requirement)
        extra = re.search(r"extra\s*==\s*['\"]([\w-]+)['\"]", marker)
        if name == _name(DROPPED):
            continue
        if extra is None or name in KEPT_EXTRAS.get(extra.group(1), ()):
            chosen.append(requirement.strip())
    return chosen


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _installed(target: Path) -> dict[str, Path]:
    """Distribution name -> its ``.dist-info`` folder in ``target``."""
    found = {}
    for info in target.glob("*.dist-info"):
        meta = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
        name = re.search(r"^Name:\s*(\S+)", meta, re.M)
        if name:
            found[_name(name.group(1))] = info
    return found


def _requires(info: Path, python_version: str) -> list[str]:
    """Requirements of one installed distribution that apply on the target (no extras)."""
    names = []
    for line in (info / "METADATA").read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement, _, marker = line.removeprefix("Requires-Dist:").partition(";")
        if "extra" in marker or not _marker_applies(marker, python_version):
            continue
        names.append(_name(requirement))
    return names


def _marker_applies(marker: str, python_version: str) -> bool:
    """Evaluate an environment marker for Linux on ``python_version``; unknown markers count as true."""
    if not marker.strip():
        return True
    try:
        from packaging.markers import Marker
    except ImportError:
        return True
    env = {"python_version": python_version, "python_full_version": f"{python_version}.0", "sys_platform": "linux",
           "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
           "platform_python_implementation": "CPython"}
    try:
        return bool(Marker(marker).evaluate(env))
    except Exception:  # a marker packaging cannot read: keep the dependency
        return True


def prune(target: Path, roots: Sequence[str], python_version: str) -> dict[str, str]:
    """Remove distributions and folders the handler never imports; returns what went and why."""
    target = target.expanduser().resolve()  # compared with resolved file paths below
    installed = _installed(target)
    keep: set[str] = set()
    todo = [_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in keep or name not in installed:
            continue
        keep.add(name)
        todo += [dep for dep in _requires(installed[name], python_version) if (name, dep) not in UNUSED_REQUIREMENTS]
    left_out = {f"{a} -> {b}": why for (a, b), why in UNUSED_REQUIREMENTS.items() if a in keep and b in installed}
    for name, info in installed.items():
        if name in keep:
            continue
        for line in (info / "RECORD").read_text().splitlines() if (info / "RECORD").is_file() else ():
            path = target / line.split(",")[0]
            if path.is_file() and target in path.resolve().parents:
                path.unlink()
        shutil.rmtree(info, ignore_errors=True)
        left_out.setdefault(name, "required only by a dependency left out above")
    for pattern, why in UNUSED_PATHS.items():
        found = [path for path in target.glob(pattern) if path.is_dir()]
        for path in found:
            shutil.rmtree(path)
        if found:
            left_out[pattern if len(found) > 1 else str(found[0].relative_to(target))] = why
    _remove_empty_dirs(target)
    return left_out


def _remove_empty_dirs(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _pip_install(target: Path, requirements: Sequence[str], python_version: str, platforms: Sequence[str],
                 pip_args: Sequence[str], run: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target),
           "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
           *[a for p in platforms for a in ("--platform", p)], *pip_args, *requirements]
    proc = run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise OnnxSTError(f"pip could not install {' '.join(requirements)} for {platforms[0]} / Python {python_version}:\n"
                          f"{proc.stderr.strip()[-2000:]}")


def default_platforms(python_version: str, arch: str = "x86_64") -> list[str]:
    """pip platforms of a Lambda Python runtime: Amazon Linux 2 (glibc 2.26) up to 3.11, AL2023 (2.34) after.

    pip matches ``--platform`` tags exactly, so every manylinux tag the runtime's glibc accepts is listed.
    """
    machine = "aarch64" if arch in ("arm64", "aarch64") else "x86_64"
    major, _, minor = python_version.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ConfigError(f"python_version must look like 3.12, got {python_version!r}")
    glibc = 26 if (int(major), int(minor)) <= (3, 11) else 34
    return [f"manylinux_2_{v}_{machine}" for v in range(glibc, 16, -1)] + [f"manylinux2014_{machine}"]


def build_package(model_dir: Path, output: Path, *, file_name: str | None = None, python_version: str = "3.12",
                  platforms: Sequence[str] | None = None, limit_mib: int = ZIP_LIMIT_MIB, fast_load: bool = True,
                  pip_args: Sequence[str] = (), overwrite: bool = False,
                  run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> PackageReport:
    """Write the function package folder ``output`` (zip it, or build its ``Dockerfile``).

    Raises:
        ModelNotFoundError: ``model_dir`` or the ONNX file is missing.
        OnnxSTError: pip fails, ``output`` exists (without ``overwrite``), or the package is over ``limit_mib``.
    """
    import onnxruntime

    output = Path(output).expanduser().resolve()  # one absolute path for every check and copy below
    if output.exists():
        if not overwrite:
            raise OnnxSTError(f"{output} exists; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(output)
    requirements = runtime_requirements()
    if fast_load:  # the graph is optimised by this onnxruntime: the function runs the same version
        requirements = [r for r in requirements if _name(r) != "onnxruntime"] + [
            f"onnxruntime=={onnxruntime.__version__}"]
    report = PackageReport(output)
    model_files, report.left_out = copy_model_dir(model_dir, output / MODEL_FOLDER, file_name)
    _pip_install(output, requirements, python_version, platforms or default_platforms(python_version), pip_args, run)
    report.left_out.update(prune(output, [_name(r) for r in requirements], python_version))
    source = Path(__file__).resolve().parents[1]  # the onnx_st package (this file is onnx_st/serverless/package.py)
    shutil.copytree(source, output / "onnx_st", ignore=shutil.ignore_patterns("__pycache__", "jobs"))
    report.left_out["onnx_st/jobs"] = "corpus embedding jobs (`onnx-st embed`), never imported by the handler"
    _bytecode(output, python_version)
    if fast_load:
        for graph in model_files:
            write_fast_load(graph, graph)
    report.environment = {"ONNX_ST_MODEL_DIR": f"/var/task/{MODEL_FOLDER}"}
    report.environment.update({"ONNX_ST_FILE_NAME": file_name} if file_name else {})
    (output / "Dockerfile").write_text(dockerfile(python_version, file_name))
    report.sizes = _sizes(output)
    if report.total > limit_mib * 2**20:
        raise OnnxSTError("\n".join([*report.lines(limit_mib), f"{output} is over the {limit_mib} MiB limit"]))
    return report


def _bytecode(output: Path, python_version: str) -> None:
    """Compile every module for the function (its code folder is read-only: Python cannot cache bytecode there).

    Hash-based, unchecked ``.pyc`` files stay valid whatever times unzipping gives the sources. Bytecode
    only fits the Python that writes it: built for another version, the package carries none.
    """
    for cache in list(output.rglob("__pycache__")):
        shutil.rmtree(cache)
    if python_version == f"{sys.version_info.major}.{sys.version_info.minor}":
        compileall.compile_dir(output, quiet=2, workers=1,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def dockerfile(python_version: str, file_name: str | None = None) -> str:
    """A container image of the package folder on the AWS Lambda Python base image."""
    chosen = f" ONNX_ST_FILE_NAME={file_name}" if file_name else ""
    return (f"FROM public.ecr.aws/lambda/python:{python_version}\n"
            "COPY . ${LAMBDA_TASK_ROOT}\n"
            f"ENV ONNX_ST_MODEL_DIR=${{LAMBDA_TASK_ROOT}}/{MODEL_FOLDER}{chosen}\n"
            f'CMD ["{HANDLER}"]\n')


def _sizes(root: Path) -> dict[str, int]:
    """Bytes per top-level entry (distributions grouped with their data folders)."""
    sizes: dict[str, int] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            top = path.relative_to(root).parts[0]
            sizes[top] = sizes.get(top, 0) + path.stat().st_size
    return sizes


__all__ = [
    "DATA_SUFFIX",
    "IMAGE_LIMIT_MIB",
    "UNUSED_PATHS",
    "UNUSED_REQUIREMENTS",
    "ZIP_LIMIT_MIB",
    "PackageReport",
    "build_package",
    "default_platforms",
    "dockerfile",
    "prune",
    "runtime_requirements",
]
