"""Bonsai BDT: the response of a trained booster tabulated on a grid of feature bins.

Each feature is cut into a few bins with edges at quantiles of the training sample;
the booster is evaluated once per cell of the grid, at the median training value of
each bin, and scoring becomes a table lookup (arXiv:1210.6861). The table is saved as
``lut.npz`` with arrays ``edges_<i>`` (bin edges of feature ``i`` in card order) and
``table`` (float32, one axis per feature, plus a trailing class axis for multiclass
models). The bin of a value is ``searchsorted(edges_i, x, side="right") - 1`` clipped
to the axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trigml.errors import ConfigError, DataError
from trigml_xgboost.params import MAX_BONSAI_CELLS, BonsaiParams

__all__ = [
    "LUT_FILE",
    "LookupTable",
    "bins_per_feature",
    "build_lookup_table",
    "compare_with_exact",
]

LUT_FILE = "lut.npz"

#: Grid cells evaluated per call of the booster while filling the table.
_CHUNK_CELLS = 1 << 20


@dataclass
class LookupTable:
    """Bin edges per feature and the tabulated response.

    Attributes
    ----------
    edges : list of ndarray, float32
        ``edges[i]`` has ``table.shape[i] + 1`` increasing values for feature ``i``.
    table : ndarray, float32
        Shape ``(n_bins_0, ..., n_bins_{d-1})`` or with a trailing class axis.
    """

    edges: list[np.ndarray]
    table: np.ndarray

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(self.table.shape[: len(self.edges)])

    @property
    def nbytes(self) -> int:
        """Bytes of the table and edges in memory."""
        return int(self.table.nbytes + sum(e.nbytes for e in self.edges))

    def bins(self, features: np.ndarray) -> np.ndarray:
        """Flat cell index of each row, shape (n,)."""
        parts = [
            np.searchsorted(edge, features[:, i], side="right") - 1
            for i, edge in enumerate(self.edges)
        ]
        return np.ravel_multi_index(parts, self.grid_shape, mode="clip")

    def lookup(self, features: np.ndarray) -> np.ndarray:
        """Tabulated response of each row: shape (n,) or (n, k)."""
        flat = self.table.reshape(int(np.prod(self.grid_shape)), -1)
        out = np.take(flat, self.bins(features), axis=0)
        return out[:, 0] if self.table.ndim == len(self.edges) else out

    def save(self, path: Path) -> Path:
        """Write ``lut.npz`` (compressed, no pickled objects)."""
        arrays = {f"edges_{i}": e for i, e in enumerate(self.edges)}
        np.savez_compressed(path, table=self.table, **arrays)
        return path


def bins_per_feature(bins: int | list[int], names: Sequence[str]) -> list[int]:
    """Bins for each model feature from the config value.

    Raises
    ------
    ConfigError
        A list whose length differs from the number of model features.
    """
    if isinstance(bins, int):
        return [bins] * len(names)
    if len(bins) != len(names):
        raise ConfigError(
            f"bonsai bins lists {len(bins)} values for {len(names)} model "
            f"features ({', '.join(names)})",
            key="family.params.bonsai.bins",
            hint="give one number for every feature, or a list in that order",
        )
    return list(bins)


def _edges_and_centres(
    column: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Quantile edges (duplicates merged) and the median training value per bin."""
    quantiles = np.quantile(column, np.linspace(0.0, 1.0, n_bins + 1))
    edges = np.unique(quantiles.astype(np.float32))
    if len(edges) < 2:  # a constant feature: one bin holding everything
        edges = np.array([edges[0], edges[0]], dtype=np.float32)
    k = len(edges) - 1
    which = np.clip(np.searchsorted(edges, column, side="right") - 1, 0, k - 1)
    order = np.argsort(which, kind="stable")
    groups = np.split(column[order], np.searchsorted(which[order], np.arange(1, k)))
    centres = np.array(
        [
            np.median(g) if len(g) else 0.5 * (edges[i] + edges[i + 1])
            for i, g in enumerate(groups)
        ],
        dtype=np.float32,
    )
    return edges, centres


def build_lookup_table(
    predict: Callable[[np.ndarray], np.ndarray],
    train_features: np.ndarray,
    names: Sequence[str],
    params: BonsaiParams,
    *,
    max_cells: int = MAX_BONSAI_CELLS,
) -> LookupTable:
    """Tabulate ``predict`` on the grid of bin medians of the training features.

    Parameters
    ----------
    predict : callable
        ``predict(features) -> scores`` of the exact model, float32 in and out.
    train_features : ndarray, float32, shape (n, d)
        Training rows, columns in model order.
    names : sequence of str
        Model feature names, for messages.
    params : BonsaiParams
    max_cells : int
        Largest grid accepted.

    Raises
    ------
    ConfigError
        The grid would exceed ``max_cells``.
    DataError
        The training features hold non-finite values.
    """
    x = np.asarray(train_features, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataError("bonsai: training features hold NaN or infinite values")
    n_bins = bins_per_feature(params.bins, names)
    cells = int(np.prod([float(b) for b in n_bins]))
    if cells > max_cells:
        shape = " × ".join(str(b) for b in n_bins)
        raise ConfigError(
            f"bonsai grid of {shape} = {cells:,} cells exceeds the limit of "
            f"{max_cells:,} (2**{int(np.log2(max_cells))})",
            key="family.params.bonsai.bins",
            hint="use fewer bins per feature, or fewer features (prune: {tolerance: "
            "0.005} drops the least useful ones)",
        )

    axes = [_edges_and_centres(x[:, i], b) for i, b in enumerate(n_bins)]
    edges = [a[0] for a in axes]
    centres = [a[1] for a in axes]
    shape = tuple(len(c) for c in centres)
    table = _tabulate(predict, centres, shape)
    return LookupTable(edges, table)


def _tabulate(
    predict: Callable[[np.ndarray], np.ndarray],
    centres: list[np.ndarray],
    shape: tuple[int, ...],
) -> np.ndarray:
    total = int(np.prod(shape))
    pieces: list[Any] = []
    for start in range(0, total, _CHUNK_CELLS):
        stop = min(total, start + _CHUNK_CELLS)
        index = np.unravel_index(np.arange(start, stop), shape)
        grid = np.column_stack([c[i] for c, i in zip(centres, index)])
        pieces.append(np.asarray(predict(grid.astype(np.float32)), dtype=np.float32))
    values = np.concatenate(pieces)
    return values.reshape(shape + values.shape[1:])


def compare_with_exact(
    table: LookupTable,
    predict: Callable[[np.ndarray], np.ndarray],
    features: np.ndarray,
) -> dict[str, float]:
    """Max and mean absolute difference of table and exact model on ``features``."""
    exact = np.asarray(predict(features), dtype=np.float64)
    approx = table.lookup(np.asarray(features, dtype=np.float32)).astype(np.float64)
    diff = np.abs(exact - approx)
    return {
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
    }
