"""Conformance checks for any backend, run by each backend's tests on its artifacts.

:func:`check_backend` loads an artifact with a backend and checks what every scorer
must do: agree with the float model's scores at several batch sizes, accept float64 and
non-contiguous input, return empty scores for an empty batch, leave the input
untouched, and refuse a wrong feature count (ModelError) and NaN (DataError) with
messages naming the model and the backend. It depends on the core contracts only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trigml.errors import DataError, ModelError

__all__ = ["check_backend"]


def check_backend(
    backend: Any,
    artifact: Any,
    X: np.ndarray,
    reference_scores: np.ndarray,
    atol: float = 1e-5,
    *,
    backend_label: str | None = None,
) -> Any:
    """Load ``artifact`` with ``backend`` and check the scorer's contract.

    Parameters
    ----------
    backend : Backend
        The backend under test.
    artifact : Artifact
        A verified artifact the backend reads.
    X : ndarray, float32, shape (n, n_features)
        Raw (unscaled) rows, n ≥ 8, without NaN.
    reference_scores : ndarray, shape (n,) or (n, k)
        The float model's scores of ``X``.
    atol : float
        Largest accepted absolute difference, relative to max(1, |reference|).
    backend_label : str, optional
        How errors must name the backend (defaults to ``backend.name``).

    Returns
    -------
    Scorer
        The loaded scorer, for further checks.

    Raises
    ------
    AssertionError
        With a message saying which part of the contract failed.
    """
    label = backend_label or backend.name
    model = artifact.card.name
    x = np.ascontiguousarray(X, dtype=np.float32)
    ref = np.asarray(reference_scores, dtype=np.float64)
    assert len(x) >= 8, "check_backend needs at least 8 rows"
    scorer = backend.load(artifact)

    _agrees(scorer.predict(x), ref, atol, "the full batch")
    for size in (1, 7, min(64, len(x))):
        _agrees(scorer.predict(x[:size]), ref[:size], atol, f"a batch of {size}")
    again = scorer.predict(x[:5])
    np.testing.assert_array_equal(again, scorer.predict(x[:5]), "scores must repeat")

    _agrees(scorer.predict(x.astype(np.float64)), ref, atol, "float64 input")
    fortran = np.asfortranarray(x[:8])
    _agrees(scorer.predict(fortran), ref[:8], atol, "column-major input")
    strided = x[::2]
    _agrees(scorer.predict(strided), ref[::2], atol, "a strided view")
    copy = x.copy()
    scorer.predict(x)
    np.testing.assert_array_equal(x, copy, "predict must not modify its input")

    empty = np.asarray(scorer.predict(x[:0]))
    assert empty.shape == (0, *ref.shape[1:]), (
        f"an empty batch must give shape {(0, *ref.shape[1:])}, got {empty.shape}"
    )

    _refuses(
        scorer, np.zeros((3, x.shape[1] + 1), np.float32), ModelError, model, label
    )
    _refuses(
        scorer, np.zeros((3, x.shape[1] - 1), np.float32), ModelError, model, label
    )
    _refuses(scorer, x[0], ModelError, model, label)
    for row in (0, 2):
        bad = x[:3].copy()
        bad[row, x.shape[1] - 1] = np.nan
        _refuses(scorer, bad, DataError, model, label)
    return scorer


def _agrees(got: Any, ref: np.ndarray, atol: float, what: str) -> None:
    out = np.asarray(got)
    assert out.shape == ref.shape, (
        f"{what}: scores have shape {out.shape}, not {ref.shape}"
    )
    assert out.dtype == np.float32, f"{what}: scores must be float32, not {out.dtype}"
    diff = np.abs(out.astype(np.float64) - ref) / np.maximum(1.0, np.abs(ref))
    worst = float(diff.max()) if diff.size else 0.0
    assert worst <= atol, (
        f"{what}: scores differ from the reference by {worst:.3g} > {atol:g}"
    )


def _refuses(
    scorer: Any, x: np.ndarray, error: type[Exception], model: str, label: str
) -> None:
    try:
        scorer.predict(x)
    except error as exc:
        text = str(exc)
        assert model in text, f"{error.__name__} must name the model: {text}"
        assert label in text, (
            f"{error.__name__} must name the backend '{label}': {text}"
        )
        if error is ModelError:
            assert str(x.shape) in text, f"ModelError must give the shape: {text}"
    else:
        raise AssertionError(
            f"input of shape {x.shape} (NaN: {bool(np.isnan(x).any())}) must raise "
            f"{error.__name__}"
        )
