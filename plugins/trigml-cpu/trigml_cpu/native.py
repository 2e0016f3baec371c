"""The native kernels of trigml-cpu: compiled once per machine, loaded with ctypes.

``kernels/cpu_kernels.c`` holds the tree-ensemble and lookup-table kernels. On first
use it is compiled with the system C compiler (``$CC``, ``cc``, ``gcc`` or ``clang``;
portable flags, no ``-march=native``) into ``kernels/`` of the trigml cache folder,
under a name derived from the source, compiler and flags, so a changed kernel or
compiler gets a fresh build and concurrent processes never load half a file.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from trigml.errors import ModelError
from trigml_cpu.cache import cache_dir

__all__ = ["FLAGS", "LutStruct", "TreeEnsembleStruct", "kernel_library"]

log = logging.getLogger(__name__)

FLAGS = ("-O3", "-std=c99", "-shared", "-fPIC")
_SOURCE = "kernels/cpu_kernels.c"


class TreeEnsembleStruct(ctypes.Structure):
    """Mirror of ``ensemble_t`` in the kernel source."""

    _fields_ = [
        ("nodes", ctypes.c_void_p),
        ("leaves", ctypes.c_void_p),
        ("group", ctypes.c_void_p),
        ("base", ctypes.c_void_p),
        ("n_trees", ctypes.c_int64),
        ("depth", ctypes.c_int32),
        ("n_groups", ctypes.c_int32),
        ("link", ctypes.c_int32),
        ("n_features", ctypes.c_int32),
    ]


class LutStruct(ctypes.Structure):
    """Mirror of ``lut_t`` in the kernel source."""

    _fields_ = [
        ("edges", ctypes.c_void_p),
        ("offset", ctypes.c_void_p),
        ("width", ctypes.c_void_p),
        ("stride", ctypes.c_void_p),
        ("table", ctypes.c_void_p),
        ("n_features", ctypes.c_int32),
        ("n_values", ctypes.c_int32),
    ]


_LIBRARY: Any = None
_LOCK = threading.Lock()


def kernel_library() -> Any:
    """The compiled kernels, built into the cache folder on first use.

    Returns
    -------
    ctypes.CDLL
        With ``trigml_trees_predict`` and ``trigml_lut_predict`` typed as
        ``(model*, float* x, int64 n, float* out) -> int64 NaN count``.

    Raises
    ------
    ModelError
        No C compiler, or the compilation failed (with the compiler's message).
    """
    global _LIBRARY
    with _LOCK:
        if _LIBRARY is None:
            _LIBRARY = _load()
        return _LIBRARY


def _compiler() -> str:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and (path := shutil.which(candidate)):
            return path
    raise ModelError(
        "the native kernels of trigml-cpu need a C compiler (cc, gcc or clang), and "
        "none was found",
        hint="install gcc or set CC; cpu.xgboost, cpu.onnxruntime and cpu.auto work "
        "without one",
    )


def _load() -> Any:
    source = resources.files("trigml_cpu").joinpath(_SOURCE).read_bytes()
    cc = _compiler()
    parts = [source, cc.encode(), " ".join(FLAGS).encode(), platform.machine().encode()]
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:20]
    target = cache_dir() / "kernels" / f"cpu-kernels-{key}.so"
    if not target.exists():
        _compile(cc, source, target)
    lib = ctypes.CDLL(str(target))
    for name in ("trigml_trees_predict", "trigml_lut_predict"):
        fn = getattr(lib, name)
        pointer = ctypes.c_void_p
        fn.argtypes = [pointer, pointer, ctypes.c_int64, pointer]
        fn.restype = ctypes.c_int64
    return lib


def _compile(cc: str, source: bytes, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.with_name(f".{target.stem}-{os.getpid()}-{threading.get_ident()}")
    work.mkdir(exist_ok=True)
    try:
        src = work / "cpu_kernels.c"
        src.write_bytes(source)
        out = work / target.name
        cmd = [cc, *FLAGS, "-o", str(out), str(src), "-lm"]
        log.info("compiling the trigml-cpu kernels: %s", " ".join(cmd))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelError(f"running the C compiler {cc} failed: {exc}") from None
        if proc.returncode != 0:
            raise ModelError(
                f"compiling the trigml-cpu kernels failed ({' '.join(cmd)}):\n"
                f"{proc.stderr[-2000:]}",
                hint="set CC to a working C compiler, or use cpu.xgboost",
            )
        os.replace(out, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
