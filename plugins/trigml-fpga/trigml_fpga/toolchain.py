"""The C++ toolchain of the emulation: g++, the ap_types and JSON headers.

The firmware C++ is compiled with g++ into a shared library that Python calls through
ctypes. Nothing here needs Vivado or Vitis: the Xilinx ``ap_fixed`` headers come with
hls4ml and the JSON header with the ``nlohmann-json`` wheel. Every missing piece is
reported with what to install.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from trigml.errors import RunFailure

__all__ = [
    "CompileJob",
    "ToolchainError",
    "VivadoRequired",
    "ap_include",
    "compile_library",
    "compiler",
    "compiler_identity",
    "conifer_environment",
    "conifer_include",
    "json_include",
]

log = logging.getLogger(__name__)

_INSTALL_GXX = (
    "install a C++ compiler: 'apt-get install g++' (Debian, Ubuntu), "
    "'dnf install gcc-c++' (Fedora, RHEL, Alma), 'conda install -c conda-forge gxx', "
    "or point the CXX environment variable at one"
)


class ToolchainError(RunFailure):
    """The C++ compiler or a header needed by the emulation is missing or failed."""


class VivadoRequired(RunFailure):
    """A step needs the Xilinx Vivado/Vitis tools, which the emulation never uses."""


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def compiler() -> str:
    """Absolute path of the C++ compiler (``$CXX`` or ``g++``).

    Raises
    ------
    ToolchainError
        No compiler is on the PATH.
    """
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(
            f"the FPGA emulation compiles fixed-point C++, but '{name}' is not on the "
            "PATH",
            hint=_INSTALL_GXX,
        )
    return path


@functools.lru_cache(maxsize=1)
def compiler_identity() -> str:
    """First line of ``g++ --version``, part of every cache key."""
    out = subprocess.run(
        [compiler(), "--version"], capture_output=True, text=True, check=False
    )
    return (out.stdout.splitlines() or ["unknown"])[0].strip()


@functools.lru_cache(maxsize=1)
def ap_include() -> Path:
    """Folder holding ``ap_fixed.h``.

    ``XILINX_AP_INCLUDE`` wins when it points at a folder with ``ap_fixed.h``;
    otherwise the copy bundled with hls4ml is used.

    Raises
    ------
    ToolchainError
        Neither is available.
    """
    env = os.environ.get("XILINX_AP_INCLUDE")
    if env and (Path(env) / "ap_fixed.h").is_file():
        return Path(env)
    base = _package_dir("hls4ml")
    if base is not None:
        folder = base / "templates" / "vivado" / "ap_types"
        if (folder / "ap_fixed.h").is_file():
            return folder
    raise ToolchainError(
        "cannot find the Xilinx fixed-point header ap_fixed.h",
        hint="'pip install hls4ml' (it bundles the ap_types headers), or set "
        "XILINX_AP_INCLUDE to a folder holding ap_fixed.h",
    )


@functools.lru_cache(maxsize=1)
def json_include() -> Path:
    """Folder holding ``nlohmann/json.hpp``, which conifer's C++ reads models with.

    Raises
    ------
    ToolchainError
        The ``nlohmann-json`` wheel is not installed.
    """
    base = _package_dir("nlohmann_json")
    if base is not None and (base / "include" / "nlohmann" / "json.hpp").is_file():
        return base / "include"
    for folder in os.environ.get("CPLUS_INCLUDE_PATH", "").split(os.pathsep):
        if folder and (Path(folder) / "nlohmann" / "json.hpp").is_file():
            return Path(folder)
    raise ToolchainError(
        "cannot find the JSON header nlohmann/json.hpp needed by conifer's C++",
        hint="'pip install nlohmann-json'",
    )


@functools.lru_cache(maxsize=1)
def conifer_include() -> Path:
    """Folder holding conifer's ``conifer.h`` (the cpp backend).

    Raises
    ------
    ToolchainError
        conifer is not installed.
    """
    base = _package_dir("conifer")
    folder = base / "backends" / "cpp" / "include" if base else None
    if folder is None or not (folder / "conifer.h").is_file():
        raise ToolchainError(
            "cannot find conifer's C++ header conifer.h", hint="'pip install conifer'"
        )
    return folder


@contextmanager
def conifer_environment() -> Iterator[None]:
    """Point conifer at the ap_types and JSON headers while inside the block.

    conifer looks for ``ap_fixed.h`` through ``XILINX_AP_INCLUDE`` and for the JSON
    header through the compiler's include path; neither ships with conifer.
    """
    wanted = {
        "XILINX_AP_INCLUDE": str(ap_include()),
        "CPLUS_INCLUDE_PATH": os.pathsep.join(
            p
            for p in (str(json_include()), os.environ.get("CPLUS_INCLUDE_PATH", ""))
            if p
        ),
    }
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass(frozen=True)
class CompileJob:
    """One translation unit: a source file and its optimisation level."""

    source: Path
    optimisation: str = "-O3"


def compile_library(
    jobs: Sequence[CompileJob],
    output: Path,
    *,
    includes: Sequence[Path],
    defines: Mapping[str, str] | None = None,
    cwd: Path,
    standard: str = "c++17",
) -> float:
    """Compile translation units in parallel and link them into a shared library.

    The first job's object comes first on the link line, so that its (optimised)
    copies of shared inline functions are the ones kept.

    Parameters
    ----------
    jobs : sequence of CompileJob
    output : Path
        The ``.so`` to write.
    includes : sequence of Path
        Include folders.
    defines : mapping, optional
        Preprocessor definitions (``WEIGHTS_DIR`` → a quoted path).
    cwd : Path
        Folder the compiler runs in; the log ``compile.log`` is written there.
    standard : str
        C++ standard.

    Returns
    -------
    float
        Wall time of the compilation, seconds.

    Raises
    ------
    ToolchainError
        The compiler is missing or a unit failed to compile or link; the message
        quotes the end of the compiler output and names the full log.
    """
    cxx = compiler()
    flags = [f"-std={standard}", "-fPIC", "-pthread", "-w", "-fno-gnu-unique"]
    flags += [f"-I{p}" for p in includes]
    flags += [f"-D{k}={v}" for k, v in (defines or {}).items()]
    log_path = cwd / "compile.log"
    start = time.perf_counter()
    procs = []
    objects = []
    with log_path.open("w") as log_file:
        for job in jobs:
            obj = cwd / (job.source.stem + ".o")
            cmd = [cxx, job.optimisation, *flags, "-c", str(job.source), "-o", str(obj)]
            log_file.write(" ".join(cmd) + "\n")
            log_file.flush()
            procs.append(
                subprocess.Popen(
                    cmd, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT
                )
            )
            objects.append(obj)
        codes = [p.wait() for p in procs]
        if not any(codes):
            cmd = [cxx, "-shared", "-pthread", *map(str, objects), "-o", str(output)]
            log_file.write(" ".join(cmd) + "\n")
            log_file.flush()
            codes.append(
                subprocess.run(
                    cmd, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT
                ).returncode
            )
    for obj in objects:
        obj.unlink(missing_ok=True)
    if any(codes):
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        raise ToolchainError(
            f"compiling the emulation in {cwd} failed:\n{tail}",
            hint=f"full compiler output in {log_path}",
        )
    seconds = time.perf_counter() - start
    log.info("compiled %s in %.1f s", output.name, seconds)
    return seconds
