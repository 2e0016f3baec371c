"""Backward feature pruning: drop the least important feature while the model holds.

Each step retrains on one feature fewer, removing the one with the smallest total
gain, and keeps the removal while the validation figure (AUC or resolution) stays
within a tolerance of the model trained on every feature. Fewer inputs mean a cheaper
trigger: fewer quantities to compute online and a smaller bonsai table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from trigml.components import TrainingSet
from trigml.errors import ConfigError
from trigml_xgboost.booster import (
    BoostResult,
    Rows,
    booster_predict,
    feature_gain,
    resolve_objective,
    train_booster,
)
from trigml_xgboost.figures import FIGURE_HIGHER_IS_BETTER, figure_of_merit
from trigml_xgboost.params import XGBoostParams

__all__ = ["PruneResult", "prune_features"]

log = logging.getLogger(__name__)


@dataclass
class PruneResult:
    """What pruning kept, what it dropped, and the figure along the way.

    Attributes
    ----------
    kept : list of str
        Remaining features, in training-set order.
    dropped : list of str
        Removed features, in the order they were removed.
    trail : list of dict
        One entry per model trained: ``n_features``, ``dropped`` (None for the
        first), ``metric``, ``loss`` against the first model, ``accepted``.
    figure : {"auc", "resolution"}
    baseline : float
        Figure of the model with every feature.
    final : float
        Figure of the model on the kept features.
    tolerance : float
    columns : list of int
        Indices of ``kept`` in the training set.
    result : BoostResult
        The booster trained on the kept features.
    """

    kept: list[str]
    dropped: list[str]
    trail: list[dict[str, Any]]
    figure: str
    baseline: float
    final: float
    tolerance: float
    columns: list[int]
    result: BoostResult = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The summary recorded in a model card (no booster)."""
        return {
            "metric": self.figure,
            "tolerance": self.tolerance,
            "baseline": self.baseline,
            "final": self.final,
            "kept": list(self.kept),
            "dropped": list(self.dropped),
            "trail": [dict(t) for t in self.trail],
        }


def _loss(figure: str, baseline: float, value: float) -> float:
    """Loss against the baseline: absolute for AUC, relative for resolution."""
    if FIGURE_HIGHER_IS_BETTER[figure]:
        return baseline - value
    return (value - baseline) / baseline if baseline > 0 else value - baseline


def prune_features(
    train: TrainingSet,
    valid: TrainingSet,
    family_params: XGBoostParams | Mapping[str, Any],
    tolerance: float = 0.005,
    metric: Literal["auto", "auc", "resolution"] = "auto",
    *,
    seed: int = 0,
    min_features: int = 1,
) -> PruneResult:
    """Remove features one at a time, least important first, within a tolerance.

    Parameters
    ----------
    train, valid : TrainingSet
        Training rows and the validation rows the figure is measured on.
    family_params : XGBoostParams or mapping
        Settings of every booster trained (its ``prune`` block is ignored here).
    tolerance : float
        Largest accepted loss: absolute for ``auc`` (0.005 = half a point of AUC),
        relative for ``resolution`` (0.005 = 0.5% worse).
    metric : {"auto", "auc", "resolution"}
        ``auto`` picks ``auc`` for classification, ``resolution`` for regression.
    seed : int
    min_features : int
        Stop at this many features.

    Returns
    -------
    PruneResult
    """
    params = XGBoostParams.model_validate(dict(family_params))
    params = params.model_copy(update={"prune": None, "flat": None, "bonsai": None})
    figure = _figure(metric, train.task)
    objective = resolve_objective(params, train)
    names = train.names

    def fit(columns: list[int]) -> tuple[BoostResult, float]:
        result = train_booster(
            params,
            objective,
            len(train.classes),
            Rows.of(train, columns),
            Rows.of(valid, columns),
            seed=seed,
        )
        scores = booster_predict(result.booster, valid.features[:, columns])
        return result, figure_of_merit(figure, scores, valid.labels, valid.weights)

    columns = list(range(len(names)))
    current, baseline = fit(columns)
    value = baseline
    trail: list[dict[str, Any]] = [
        {
            "n_features": len(columns),
            "dropped": None,
            "metric": baseline,
            "loss": 0.0,
            "accepted": True,
        }
    ]
    dropped: list[str] = []
    while len(columns) > max(1, min_features):
        gain = feature_gain(current.booster, [names[c] for c in columns], "total_gain")
        victim = min(reversed(columns), key=lambda c: gain[names[c]])
        trial = [c for c in columns if c != victim]
        result, trial_value = fit(trial)
        loss = _loss(figure, baseline, trial_value)
        accepted = loss <= tolerance
        trail.append(
            {
                "n_features": len(trial),
                "dropped": names[victim],
                "metric": trial_value,
                "loss": loss,
                "accepted": accepted,
            }
        )
        log.info(
            "pruning: without %s, %s %.5f (loss %.5f, %s)",
            names[victim],
            figure,
            trial_value,
            loss,
            "kept out" if accepted else "put back; stopping",
        )
        if not accepted:
            break
        columns, current, value = trial, result, trial_value
        dropped.append(names[victim])

    return PruneResult(
        kept=[names[c] for c in columns],
        dropped=dropped,
        trail=trail,
        figure=figure,
        baseline=baseline,
        final=value,
        tolerance=tolerance,
        columns=columns,
        result=current,
    )


def _figure(metric: str, task: str) -> str:
    if metric == "auto":
        return "resolution" if task == "regression" else "auc"
    if (metric == "resolution") != (task == "regression"):
        raise ConfigError(
            f"pruning metric '{metric}' does not fit a '{task}' model",
            key="family.params.prune.metric",
            hint="use 'auc' for classification, 'resolution' for regression, or 'auto'",
        )
    return metric
