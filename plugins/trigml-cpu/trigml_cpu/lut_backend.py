"""``cpu.lut``: bonsai lookup tables, one table lookup per candidate.

The file ``lut.npz`` holds ``edges_<i>`` (bin edges of feature ``i`` in card order,
in the scaled feature space) and ``table`` (float32, one axis per feature, plus a
trailing class axis for multiclass models). A value falls in bin
``searchsorted(edges_i, x, side="right") - 1``, clipped to the axis, so values
outside the edges use the outermost bins. The lookup runs in the compiled kernel of
:mod:`trigml_cpu.native` (a branch-free binary search per feature) when a C compiler
is available, and otherwise in numpy (``searchsorted`` per feature, then
``ravel_multi_index`` and ``take``); both give identical scores.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trigml.artifact import Artifact, read_npz
from trigml.components import Backend
from trigml.errors import ModelError
from trigml_cpu._base import CpuScorer, require_formats
from trigml_cpu.native import LutStruct, kernel_library
from trigml_cpu.params import LutParams

__all__ = ["LutBackend", "read_lookup_table"]

log = logging.getLogger(__name__)


def read_lookup_table(
    path: Path, n_features: int, backend: str = "cpu.lut"
) -> tuple[list[np.ndarray], np.ndarray]:
    """Edges per feature and the table from ``lut.npz``, checked for consistency.

    Raises
    ------
    ModelError
        The file is unreadable, an array is missing, or shapes do not match.
    """
    try:
        arrays = read_npz(path)
    except Exception as exc:  # zipfile, OSError, ValueError for object arrays
        raise ModelError(
            f"{path}: backend '{backend}' cannot read the lookup table "
            f"({type(exc).__name__}: {exc})"
        ) from None
    names = [f"edges_{i}" for i in range(n_features)]
    missing = [n for n in ["table", *names] if n not in arrays]
    if missing:
        raise ModelError(
            f"{path}: lookup table lacks {missing} for {n_features} features "
            f"(has: {sorted(arrays)})"
        )
    table = np.ascontiguousarray(arrays["table"], dtype=np.float32)
    if table.ndim not in (n_features, n_features + 1):
        raise ModelError(
            f"{path}: table has {table.ndim} axes, expected {n_features} (one per "
            f"feature) or {n_features + 1} (with a class axis)"
        )
    edges = []
    for i, name in enumerate(names):
        e = np.asarray(arrays[name])
        if e.ndim != 1 or len(e) < 1 or e.dtype.kind != "f" or np.any(np.diff(e) < 0):
            raise ModelError(f"{path}: {name} must be increasing floats, got {e!r:.80}")
        if table.shape[i] < 1:
            raise ModelError(f"{path}: table axis {i} is empty")
        edges.append(e)
    return edges, table


class _LutScorer(CpuScorer):
    def __init__(
        self,
        artifact: Artifact,
        edges: list[np.ndarray],
        table: np.ndarray,
        backend: str,
        *,
        native: bool,
    ) -> None:
        super().__init__(artifact, backend)
        self._edges = edges
        self._shape = table.shape[: len(edges)]
        self._values = () if table.ndim == len(edges) else table.shape[len(edges) :]
        cells = int(np.prod(self._shape))
        self._flat = np.ascontiguousarray(table.reshape(cells, *self._values))
        self._kernel: Any = None
        if native:
            try:
                self._kernel = _NativeLookup(edges, self._shape, self._flat)
            except ModelError as exc:
                log.info("cpu.lut: %s; binning with numpy instead", exc.message)
        self.checks_nan = self._kernel is not None

    def _raw(self, x: np.ndarray) -> np.ndarray:
        if self._kernel is not None:
            out = np.empty((len(x), *self._values), np.float32)
            if self._kernel(x, out):
                self.refuse_nan(x)
            return out
        columns = np.ascontiguousarray(x.T)
        index = [
            np.searchsorted(edge, columns[i], side="right") - 1
            for i, edge in enumerate(self._edges)
        ]
        flat = np.ravel_multi_index(index, self._shape, mode="clip")
        return np.take(self._flat, flat, axis=0)


def _float32_at_or_above(values: np.ndarray) -> np.ndarray:
    """The smallest float32 at or above each value.

    For a float32 input ``x``, ``x >= edge`` holds exactly when ``x >=`` this
    rounded edge, so float64 edges keep their meaning in the float32 kernel.
    """
    wide = values.astype(np.float64)
    narrow = wide.astype(np.float32)
    below = narrow.astype(np.float64) < wide
    narrow[below] = np.nextafter(narrow[below], np.float32(np.inf))
    return narrow


class _NativeLookup:
    """The lookup table laid out for ``trigml_lut_predict``."""

    def __init__(
        self, edges: list[np.ndarray], shape: tuple[int, ...], flat: np.ndarray
    ) -> None:
        lib = kernel_library()
        blocks, widths = [], []
        for edge, bins in zip(edges, shape):
            interior = _float32_at_or_above(np.asarray(edge)[1:bins])
            width = 1 << max(0, int(np.ceil(np.log2(max(1, len(interior))))))
            pad = np.full(width - len(interior), np.inf, np.float32)
            blocks.append(np.concatenate([interior, pad]))
            widths.append(width)
        self._edges = np.concatenate(blocks).astype(np.float32)
        self._offset = np.cumsum([0, *widths[:-1]]).astype(np.int64)
        self._width = np.asarray(widths, np.int32)
        strides = [int(np.prod(shape[i + 1 :])) for i in range(len(shape))]
        self._stride = np.asarray(strides, np.int64)
        self._table = flat
        n_values = int(np.prod(flat.shape[1:])) if flat.ndim > 1 else 1
        self._struct = LutStruct(
            self._edges.ctypes.data,
            self._offset.ctypes.data,
            self._width.ctypes.data,
            self._stride.ctypes.data,
            self._table.ctypes.data,
            len(shape),
            n_values,
        )
        self._ptr = ctypes.addressof(self._struct)
        self._fn = lib.trigml_lut_predict

    def __call__(self, x: np.ndarray, out: np.ndarray) -> int:
        """Fill ``out``; returns the number of NaN inputs (nothing written then)."""
        return int(self._fn(self._ptr, x.ctypes.data, len(x), out.ctypes.data))


class LutBackend(Backend):
    """Scores with a bonsai lookup table (format ``lut``)."""

    name = "cpu.lut"

    def __init__(self, params: LutParams | None = None) -> None:
        self.params = params or LutParams()

    def formats(self) -> Sequence[str]:
        return ["lut"]

    def load(self, artifact: Artifact) -> CpuScorer:
        path = require_formats(artifact, self.name, ["lut"])["lut"]
        edges, table = read_lookup_table(path, len(artifact.card.features), self.name)
        return _LutScorer(artifact, edges, table, self.name, native=self.params.native)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, **self.params.model_dump()}
