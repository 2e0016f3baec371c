"""Validation figures the family optimises against: AUC and regression resolution.

Both wrap :mod:`trigml.metrics` so that the numbers in a model card are the ones every
other part of trigml computes. Higher is better for AUC, lower for resolution.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["FIGURE_HIGHER_IS_BETTER", "figure_of_merit", "resolution"]

Figure = Literal["auc", "resolution"]

#: Whether a larger value of the figure means a better model.
FIGURE_HIGHER_IS_BETTER = {"auc": True, "resolution": False}


def resolution(
    predictions: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """Resolution of a regression: IQR/1.349 of ``prediction - target``.

    Parameters
    ----------
    predictions, targets : ndarray, shape (n,)
        In the unit of the target.
    weights : ndarray, shape (n,), optional
    """
    from trigml.metrics import weighted_quantile

    residual = np.asarray(predictions, np.float64) - np.asarray(targets, np.float64)
    q25, q75 = weighted_quantile(residual, [0.25, 0.75], weights)
    return float((q75 - q25) / 1.349)


def figure_of_merit(
    figure: Figure,
    scores: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """AUC (mean one-vs-rest AUC for multiclass scores) or resolution.

    Parameters
    ----------
    figure : {"auc", "resolution"}
    scores : ndarray, shape (n,) or (n, k)
        Model output: signal probability, class probabilities or regression values.
    labels : ndarray, shape (n,)
        Class indices or regression targets.
    weights : ndarray, shape (n,), optional
    """
    from trigml.metrics import auc

    if figure == "resolution":
        return resolution(scores, labels, weights)
    if scores.ndim == 1:
        return auc(scores, labels > 0, weights)
    per_class = [
        auc(scores[:, k], labels == k, weights)
        for k in range(scores.shape[1])
        if (labels == k).any() and (labels != k).any()
    ]
    return float(np.mean(per_class))
