"""Compiled firmware emulations called from Python through ctypes.

A :class:`NetworkLibrary` wraps an hls4ml project compiled together with a small
batched entry point, a :class:`ForestLibrary` wraps conifer's C++ BDT compiled for one
set of fixed-point types. Both take a whole feature matrix per call, so that the loop
over events runs in C++, not in Python.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

import numpy as np

from trigml.errors import ModelError

__all__ = [
    "ForestLibrary",
    "NetworkLibrary",
    "emulation_threads",
    "forest_source",
    "network_batch_source",
]

_DOUBLES = np.ctypeslib.ndpointer(dtype=np.float64, flags="C_CONTIGUOUS")

#: Fewest events per thread; smaller batches run on one thread.
MIN_ROWS_PER_THREAD = 1000

ENV_THREADS = "TRIGML_FPGA_THREADS"


def emulation_threads() -> int:
    """Threads for the emulation loop: ``$TRIGML_FPGA_THREADS`` or the CPUs (≤ 8).

    Each event is independent and the compiled firmware keeps no state between
    events once its weights and tables are loaded, so events split freely.
    """
    value = os.environ.get(ENV_THREADS)
    if value and value.isdigit() and int(value) > 0:
        return int(value)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return max(1, min(8, usable or os.cpu_count() or 1))


def network_batch_source(project: str, n_inputs: int, n_outputs: int) -> str:
    """C++ of the batched entry point over hls4ml's ``<project>_double`` bridge.

    hls4ml's bridge converts one event from double to the firmware input type, runs
    the top function and converts the outputs back; this loop calls it for every row
    of a C-ordered matrix. The first event runs alone (it loads the weights and the
    activation tables); the others are shared between threads.
    """
    return f"""\
// Batched entry point of the trigml FPGA emulation (not part of the HLS design).
#include <algorithm>
#include <thread>
#include <vector>

extern "C" void {project}_double(double *input, double *output);

static void trigml_rows(const double *x, double *y, long first, long last) {{
    for (long i = first; i < last; ++i) {{
        {project}_double(const_cast<double *>(x + i * {n_inputs}), y + i * {n_outputs});
    }}
}}

extern "C" long trigml_predict(const double *x, double *y, long n, int threads) {{
    if (n <= 0) return 0;
    trigml_rows(x, y, 0, 1);
    if (threads < 2 || n < {MIN_ROWS_PER_THREAD} * 2) {{
        trigml_rows(x, y, 1, n);
        return n;
    }}
    std::vector<std::thread> pool;
    long step = (n - 1 + threads - 1) / threads;
    for (long first = 1; first < n; first += step) {{
        pool.emplace_back(trigml_rows, x, y, first, std::min(n, first + step));
    }}
    for (auto &t : pool) t.join();
    return n;
}}
"""


def forest_source(input_t: str, threshold_t: str, score_t: str) -> str:
    """C++ of the BDT emulation: conifer's ``conifer::BDT`` for the given types.

    The model itself is read at run time from conifer's JSON, so one compiled
    library serves every BDT with the same fixed-point types.
    """
    return f"""\
// conifer cpp-backend BDT emulation with a C interface for ctypes.
#include <string>
#include <vector>
#include "ap_fixed.h"
#include "conifer.h"

struct TrigmlForestConfig : conifer::ConiferConfiguration {{
    typedef {threshold_t} threshold_t;
    typedef {input_t} input_t;
    typedef {threshold_t} weight_t;
    typedef {score_t} score_t;
    static constexpr bool useAddTree = false;
}};
typedef conifer::BDT<TrigmlForestConfig> TrigmlForest;
"""


FOREST_LOAD = """\
#include "forest.h"

extern "C" void *trigml_forest_load(const char *path) {
    try {
        return new TrigmlForest(std::string(path));
    } catch (...) {
        return nullptr;
    }
}

extern "C" void trigml_forest_free(void *handle) {
    delete static_cast<TrigmlForest *>(handle);
}
"""

FOREST_PREDICT = """\
#include <algorithm>
#include <atomic>
#include <thread>
#include "forest.h"

static void trigml_forest_rows(
    const TrigmlForest *forest, const double *x, long first, long last,
    long n_features, double *y, long n_out, std::atomic<long> *bad
) {
    std::vector<double> row(n_features);
    for (long i = first; i < last; ++i) {
        row.assign(x + i * n_features, x + (i + 1) * n_features);
        std::vector<double> out = forest->_decision_function_double(row);
        if ((long)out.size() != n_out) {
            bad->fetch_add(1);
            return;
        }
        for (long k = 0; k < n_out; ++k) y[i * n_out + k] = out[k];
    }
}

extern "C" long trigml_forest_predict(
    void *handle, const double *x, long n, long n_features, double *y, long n_out,
    int threads
) {
    const TrigmlForest *forest = static_cast<const TrigmlForest *>(handle);
    std::atomic<long> bad(0);
    if (threads < 2 || n < MIN_ROWS_PER_THREAD * 2) {
        trigml_forest_rows(forest, x, 0, n, n_features, y, n_out, &bad);
    } else {
        std::vector<std::thread> pool;
        long step = (n + threads - 1) / threads;
        for (long first = 0; first < n; first += step) {
            pool.emplace_back(trigml_forest_rows, forest, x, first,
                              std::min(n, first + step), n_features, y, n_out, &bad);
        }
        for (auto &t : pool) t.join();
    }
    return bad.load() ? -1 : n;
}
""".replace("MIN_ROWS_PER_THREAD", str(MIN_ROWS_PER_THREAD))


class NetworkLibrary:
    """An hls4ml network compiled for the CPU.

    Parameters
    ----------
    path : Path
        The shared library.
    n_inputs, n_outputs : int
        Flat sizes of the firmware input and output.
    """

    def __init__(self, path: Path, n_inputs: int, n_outputs: int) -> None:
        self.path = Path(path)
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self._fn: Any = None

    def _function(self) -> Any:
        if self._fn is None:
            lib = ctypes.CDLL(str(self.path), mode=os.RTLD_LOCAL)
            fn = lib.trigml_predict
            fn.argtypes = [_DOUBLES, _DOUBLES, ctypes.c_long, ctypes.c_int]
            fn.restype = ctypes.c_long
            self._fn = fn
        return self._fn

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Firmware outputs for inputs ``x`` (n, n_inputs), as float64 (n, n_outputs).

        Every output value is exactly the fixed-point value the firmware computes.
        """
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(len(x), self.n_inputs)
        out = np.empty((len(x), self.n_outputs), dtype=np.float64)
        if len(x):
            self._function()(x, out, len(x), emulation_threads())
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fn": None}


class ForestLibrary:
    """conifer's C++ BDT compiled for one set of types, with one model loaded.

    Parameters
    ----------
    library : Path
        The shared library (:func:`forest_source` compiled).
    model_json : Path
        conifer's JSON of the model.
    n_features, n_outputs : int
    """

    def __init__(
        self, library: Path, model_json: Path, n_features: int, n_outputs: int
    ) -> None:
        self.library = Path(library)
        self.model_json = Path(model_json)
        self.n_features = n_features
        self.n_outputs = n_outputs
        self._lib: Any = None
        self._handle: Any = None

    def _open(self) -> None:
        lib = ctypes.CDLL(str(self.library), mode=os.RTLD_LOCAL)
        lib.trigml_forest_load.argtypes = [ctypes.c_char_p]
        lib.trigml_forest_load.restype = ctypes.c_void_p
        lib.trigml_forest_free.argtypes = [ctypes.c_void_p]
        lib.trigml_forest_predict.argtypes = [
            ctypes.c_void_p,
            _DOUBLES,
            ctypes.c_long,
            ctypes.c_long,
            _DOUBLES,
            ctypes.c_long,
            ctypes.c_int,
        ]
        lib.trigml_forest_predict.restype = ctypes.c_long
        handle = lib.trigml_forest_load(str(self.model_json).encode())
        if not handle:
            raise ModelError(f"conifer could not read the BDT from {self.model_json}")
        self._lib, self._handle = lib, handle

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Firmware margins for ``x`` (n, n_features): float64, (n, n_outputs)."""
        if self._handle is None:
            self._open()
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(len(x), self.n_features)
        out = np.empty((len(x), self.n_outputs), dtype=np.float64)
        if len(x):
            done = self._lib.trigml_forest_predict(
                self._handle,
                x,
                len(x),
                self.n_features,
                out,
                self.n_outputs,
                emulation_threads(),
            )
            if done != len(x):
                raise ModelError(
                    f"the BDT in {self.model_json} gave an unexpected number of outputs"
                )
        return out

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_lib": None, "_handle": None}

    def __del__(self) -> None:
        if self._handle is not None and self._lib is not None:
            self._lib.trigml_forest_free(self._handle)
            self._handle = None


def _fingerprint() -> str:
    import hashlib

    text = network_batch_source("p", 1, 1) + forest_source("a", "b", "c")
    return hashlib.sha256((text + FOREST_LOAD + FOREST_PREDICT).encode()).hexdigest()[
        :12
    ]


#: Changes with the generated C++, so that cached libraries built from older
#: sources are never reused.
SOURCE_FINGERPRINT = _fingerprint()
