"""Flat-efficiency boosting: signal efficiency kept uniform over chosen variables.

A plain BDT learns whatever separates signal from background, including variables
correlated with the Dalitz position or the decay time, and its efficiency then varies
across them. Following the idea of uBoost (arXiv:1305.7248), training runs in stages;
after each stage the signal candidates are binned in the uniform variables and the
weights of those in bins whose efficiency lags behind the global one (averaged over
global cuts at 50–90% efficiency) are raised, so the next trees work on them. The
result is an ordinary xgboost model: every backend and export reads it unchanged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trigml.components import TrainingSet
from trigml.errors import ConfigError
from trigml_xgboost.booster import (
    BoostResult,
    ProgressHook,
    Rows,
    train_booster,
)
from trigml_xgboost.params import FlatParams, XGBoostParams

__all__ = ["FLAT_EFFICIENCIES", "FlatResult", "train_flat", "uniform_columns"]

log = logging.getLogger(__name__)

#: Global signal efficiencies whose cuts the reweighting averages over (as SDE does).
FLAT_EFFICIENCIES = (0.5, 0.6, 0.7, 0.8, 0.9)

#: Bounds of the accumulated weight multiplier of a signal candidate.
_MULTIPLIER_RANGE = (0.05, 20.0)

#: Floor of a bin efficiency in the reweighting ratio, against empty passing bins.
_MIN_BIN_EFFICIENCY = 0.05


@dataclass
class FlatResult:
    """A flat-trained booster and the flatness reached on each stage.

    Attributes
    ----------
    result : BoostResult
    trail : list of dict
        Per stage: ``stage``, ``rounds`` (trees so far), ``sde_train`` (SDE of the
        training signal before the stage's reweighting).
    """

    result: BoostResult
    trail: list[dict[str, Any]] = field(default_factory=list)


def uniform_columns(data: TrainingSet, names: list[str], where: str) -> np.ndarray:
    """The uniform variables of ``data`` as a float64 matrix, shape (n, len(names)).

    Raises
    ------
    ConfigError
        A name is not an ``aux`` column of the training set.
    """
    missing = [n for n in names if n not in data.aux]
    if missing:
        have = ", ".join(sorted(data.aux)) or "none"
        raise ConfigError(
            f"flat training needs aux columns {missing} in the {where} set, which "
            f"has: {have}",
            key="family.params.flat.features",
            hint="name variables the algorithm keeps in TrainingSet.aux",
        )
    return np.column_stack([np.asarray(data.aux[n], np.float64) for n in names])


class _Reweighter:
    """Raises the weight of signal in bins of the uniform variables that lag behind."""

    def __init__(
        self,
        train: Rows,
        uniform: np.ndarray,
        flat: FlatParams,
        rounds_per_stage: int,
    ) -> None:
        from trigml.metrics import flatness_bins

        self.signal = np.asarray(train.labels) > 0
        self.base = train.weights.astype(np.float64)
        self.cells, self.n_cells = flatness_bins(uniform[self.signal], flat.n_bins)
        self.uniform = uniform[self.signal]
        self.multiplier = np.ones(int(self.signal.sum()))
        self.flat = flat
        self.every = rounds_per_stage
        self.trail: list[dict[str, Any]] = []

    def __call__(self, booster: Any, epoch: int, dtrain: Any) -> None:
        if (epoch + 1) % self.every:
            return
        from trigml.metrics import flatness_sde

        margin = booster.predict(dtrain, output_margin=True)[self.signal]
        w_sig = self.base[self.signal]
        self.trail.append(
            {
                "stage": len(self.trail) + 1,
                "rounds": epoch + 1,
                "sde_train": flatness_sde(
                    margin, self.uniform, w_sig, n_bins=self.flat.n_bins
                ),
            }
        )
        ratio = self._lag_ratio(margin, w_sig)
        self.multiplier *= ratio[self.cells] ** self.flat.strength
        np.clip(self.multiplier, *_MULTIPLIER_RANGE, out=self.multiplier)

        weights = self.base.copy()
        boosted = w_sig * self.multiplier
        weights[self.signal] = boosted * (w_sig.sum() / boosted.sum())
        dtrain.set_weight(weights.astype(np.float32))

    def _lag_ratio(self, margin: np.ndarray, w_sig: np.ndarray) -> np.ndarray:
        """Mean over global cuts of global efficiency / bin efficiency, per bin."""
        from trigml.metrics import threshold_for_efficiency

        cell_weight = np.bincount(self.cells, w_sig, self.n_cells)
        ratio = np.zeros(self.n_cells)
        for eff in FLAT_EFFICIENCIES:
            cut = threshold_for_efficiency(margin, eff, w_sig)
            passed = np.bincount(self.cells, w_sig * (margin >= cut), self.n_cells)
            bin_eff = passed / np.maximum(cell_weight, 1e-12)
            ratio += eff / np.maximum(bin_eff, _MIN_BIN_EFFICIENCY)
        return ratio / len(FLAT_EFFICIENCIES)


def train_flat(
    params: XGBoostParams,
    objective: str,
    train: TrainingSet,
    valid: TrainingSet,
    columns: list[int],
    *,
    seed: int,
    progress: ProgressHook | None = None,
) -> FlatResult:
    """Train a binary booster whose signal efficiency is flat in ``params.flat``.

    Parameters
    ----------
    params : XGBoostParams
        With a ``flat`` block.
    objective : str
        Must be ``binary:logistic``.
    train, valid : TrainingSet
        ``train.aux`` holds the uniform variables.
    columns : list of int
        Feature columns the booster uses.
    seed : int
    progress : callable, optional

    Returns
    -------
    FlatResult
    """
    flat = params.flat
    if flat is None:
        raise ValueError("train_flat needs params.flat")
    if objective != "binary:logistic":
        raise ConfigError(
            "flat-efficiency training needs a binary classification task, "
            f"not '{objective}'",
            key="family.params.flat",
        )
    uniform = uniform_columns(train, flat.features, "training")
    rounds_per_stage = max(1, math.ceil(params.n_estimators / flat.stages))
    rows = Rows.of(train, columns)
    reweight = _Reweighter(rows, uniform, flat, rounds_per_stage)
    if params.early_stopping_rounds is not None:
        log.info(
            "flat training runs all %d rounds: early stopping on the validation "
            "loss would undo the reweighting",
            params.n_estimators,
        )

    result = train_booster(
        params,
        objective,
        2,
        rows,
        Rows.of(valid, columns),
        seed=seed,
        early_stopping=False,
        progress=progress,
        after_round=reweight,
    )
    return FlatResult(result, reweight.trail)
