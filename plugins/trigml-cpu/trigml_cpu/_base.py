"""What every CPU scorer shares: input checks, scaling, output shaping, format lookup.

A scorer checks the feature matrix (exact feature count, no NaN), applies the card's
scaling, runs its runtime and turns the raw output into scores with
``Artifact.to_scores``. Errors name the model, the backend and what was expected.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trigml.artifact import Artifact
from trigml.components import Scorer
from trigml.errors import DataError, ModelError

__all__ = ["READERS", "CpuScorer", "require_formats"]

_FLOAT32 = np.dtype(np.float32)
#: Inputs up to this many values are checked for NaN without numpy.
_PYTHON_NAN_CHECK = 256

#: Formats each CPU backend needs (all of them), used to say which backends could read
#: an artifact that the chosen one cannot.
READERS: dict[str, tuple[str, ...]] = {
    "cpu.compiled": ("xgboost-json",),
    "cpu.cuts": ("cuts-json",),
    "cpu.lut": ("lut",),
    "cpu.onnxruntime": ("onnx",),
    "cpu.torch": ("torch-arch", "torch-state"),
    "cpu.xgboost": ("xgboost-json",),
}


def require_formats(
    artifact: Artifact, backend: str, formats: Sequence[str]
) -> dict[str, Path]:
    """Paths of the files of ``formats``, all of which ``backend`` needs.

    Raises
    ------
    ModelError
        The artifact lacks one of them; the message lists the formats it has and
        the backends that could read it.
    """
    have = list(artifact.card.formats)
    missing = [f for f in formats if f not in have]
    if missing:
        readers = [
            name
            for name, needs in sorted(READERS.items())
            if name != backend and all(f in have for f in needs)
        ]
        hint = (
            f"backends that read it: {', '.join(readers)}"
            if readers
            else "no CPU backend reads these formats; re-export the model"
        )
        raise ModelError(
            f"model '{artifact.card.name}' at {artifact.path} has no "
            f"{' + '.join(missing)} file for backend '{backend}' (it has: "
            f"{', '.join(have) or 'none'})",
            hint=hint,
        )
    return {f: artifact.file(f) for f in formats}


def _has_nan(x: np.ndarray) -> bool:
    """Whether ``x`` holds a NaN.

    Small inputs are checked in Python: on the project machine a numpy reduction
    right before an onnxruntime call made that call about 30 µs slower, more than
    the whole call at batch size 1. Larger inputs use ``min``, which propagates NaN.
    """
    if x.size <= _PYTHON_NAN_CHECK:
        return any(v != v for v in x.ravel().tolist())
    return bool(np.isnan(x.min()))


class CpuScorer(Scorer):
    """Base of the CPU scorers: checks, scaling and output shaping around ``_raw``.

    Parameters
    ----------
    artifact : Artifact
    backend : str
        Backend name used in messages.

    Attributes
    ----------
    label : str
        How errors name the backend; ``cpu.auto`` prefixes its own name.
    n_features : int
    """

    #: Set by runtimes whose ``_raw`` detects NaN itself (saves a pass over the data).
    checks_nan = False

    def __init__(self, artifact: Artifact, backend: str) -> None:
        card = artifact.card
        self.artifact = artifact
        self.label = backend
        self.model = card.name
        self.names = card.feature_names
        self.n_features = len(self.names)
        self._scaled = any(f.offset != 0.0 or f.scale != 1.0 for f in card.features)
        n_out = len(card.outputs) or len(card.classes)
        wide = card.task == "multiclass" or (card.task == "regression" and n_out > 1)
        self._empty = (0, n_out) if wide else (0,)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores for ``features`` (float32, shape (n, n_features)).

        Returns
        -------
        ndarray, float32
            Shape (n,) for binary, single-output regression and anomaly models,
            (n, k) for multiclass.

        Raises
        ------
        ModelError
            ``features`` is not a matrix with one column per model feature.
        DataError
            ``features`` holds NaN.
        """
        x = self.check(features)
        if not x.shape[0]:
            return np.zeros(self._empty, dtype=np.float32)
        scaled = self.artifact.scale(x) if self._scaled else x
        return self.artifact.to_scores(self._raw(scaled), scaled)

    def check(self, features: np.ndarray) -> np.ndarray:
        """``features`` as a C-contiguous float32 matrix, or a clear error."""
        x = features
        if not (
            type(x) is np.ndarray
            and x.dtype == _FLOAT32
            and x.ndim == 2
            and x.shape[1] == self.n_features
            and x.flags.c_contiguous
        ):
            x = self._coerce(features)
        if not self.checks_nan and x.size and _has_nan(x):
            self.refuse_nan(x)
        return x

    def _coerce(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            shown = ", ".join(self.names[:12]) + (", …" if self.n_features > 12 else "")
            raise ModelError(
                f"model '{self.model}' on backend '{self.label}' expects "
                f"{self.n_features} features ({shown}), got an array of shape "
                f"{x.shape}",
                hint="pass one row per candidate with the card's features in order",
            )
        return np.ascontiguousarray(x, dtype=np.float32)

    def refuse_nan(self, x: np.ndarray) -> None:
        """Raise the DataError for NaN inputs, with where the first one sits."""
        rows, cols = np.nonzero(np.isnan(x))
        raise DataError(
            f"model '{self.model}' on backend '{self.label}': {len(rows)} NaN input "
            f"value(s), first in row {int(rows[0])}, feature '{self.names[cols[0]]}'",
            hint="fill or drop missing values before scoring",
        )

    @abc.abstractmethod
    def _raw(self, x: np.ndarray) -> np.ndarray:
        """The runtime's raw output for scaled, checked rows (n ≥ 1)."""
