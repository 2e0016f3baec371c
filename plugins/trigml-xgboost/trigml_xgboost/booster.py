"""Training one xgboost booster on a training set.

The objective follows the task of the training set, sample weights are passed to
xgboost, early stopping watches the validation rows, and progress goes through
``logging`` and an optional callback so that the command line can draw a progress bar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trigml.components import TrainingSet
from trigml.errors import ConfigError, DataError
from trigml_xgboost.params import XGBoostParams

__all__ = [
    "OBJECTIVE_OF_TASK",
    "BoostResult",
    "ProgressHook",
    "RoundHook",
    "Rows",
    "booster_predict",
    "check_labels",
    "feature_gain",
    "resolve_objective",
    "train_booster",
]

log = logging.getLogger(__name__)

#: Objective used for each training-set task when ``objective`` is ``auto``.
OBJECTIVE_OF_TASK = {
    "binary": "binary:logistic",
    "multiclass": "multi:softprob",
    "regression": "reg:squarederror",
}
_TASK_OF_OBJECTIVE = {
    "binary:logistic": "binary",
    "multi:softprob": "multiclass",
    "reg:squarederror": "regression",
    "reg:pseudohubererror": "regression",
    "reg:absoluteerror": "regression",
}
_EVAL_METRIC = {
    "binary:logistic": "logloss",
    "multi:softprob": "mlogloss",
    "reg:squarederror": "rmse",
    "reg:pseudohubererror": "mphe",
    "reg:absoluteerror": "mae",
}

#: ``progress(round, total_rounds, {"valid-logloss": 0.41, ...})`` after each round.
ProgressHook = Callable[[int, int, dict[str, float]], None]

#: ``after_round(booster, round, dtrain)`` after each round, before the next; may
#: change the training weights (``dtrain.set_weight``), as flat training does.
RoundHook = Callable[[Any, int, Any], None]


@dataclass
class Rows:
    """Feature matrix, labels and weights of one sample, ready for xgboost.

    Attributes
    ----------
    features : ndarray, float32, shape (n, n_features)
    labels : ndarray, shape (n,)
    weights : ndarray, float32, shape (n,)
    """

    features: np.ndarray
    labels: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, data: TrainingSet, columns: Sequence[int] | None = None) -> Rows:
        """The rows of ``data``, restricted to ``columns`` (indices) if given."""
        x = data.features if columns is None else data.features[:, list(columns)]
        return cls(
            np.ascontiguousarray(x, dtype=np.float32),
            np.asarray(data.labels),
            np.asarray(data.weights, dtype=np.float32),
        )


@dataclass
class BoostResult:
    """A trained booster and how training ended.

    Attributes
    ----------
    booster : xgboost.Booster
        Cut to the best round when early stopping was on.
    best_iteration : int
        0-based index of the last round kept.
    rounds_run : int
        Rounds trained before stopping.
    valid_loss : float
        Validation loss (``metric``) of the kept model.
    metric : str
        Name of the xgboost evaluation metric (``logloss``, ``mlogloss``, ``rmse``).
    """

    booster: Any
    best_iteration: int
    rounds_run: int
    valid_loss: float
    metric: str


def resolve_objective(params: XGBoostParams, data: TrainingSet) -> str:
    """The xgboost objective for ``data``, checked against its task.

    Raises
    ------
    ConfigError
        The task is not one xgboost trains here (``anomaly``), or the configured
        objective belongs to another task.
    """
    task = data.task
    if task not in OBJECTIVE_OF_TASK:
        raise ConfigError(
            f"the xgboost family cannot train a '{task}' model",
            key="family.type",
            hint="train autoencoders with the torch family",
        )
    if params.objective == "auto":
        return OBJECTIVE_OF_TASK[task]
    if _TASK_OF_OBJECTIVE[params.objective] != task:
        raise ConfigError(
            f"objective '{params.objective}' does not fit a '{task}' training set",
            key="family.params.objective",
            hint=f"use 'auto' or '{OBJECTIVE_OF_TASK[task]}'",
        )
    return params.objective


def check_labels(data: TrainingSet, where: str) -> None:
    """Refuse labels xgboost cannot train on (wrong shape, class index, weights)."""
    labels = np.asarray(data.labels)
    if labels.ndim != 1:
        raise DataError(
            f"xgboost family: {where} labels have shape {labels.shape}; only one "
            "target per row is supported"
        )
    if data.task in ("binary", "multiclass"):
        k = 2 if data.task == "binary" else len(data.classes)
        bad = (labels < 0) | (labels >= k) | (labels != np.round(labels))
        if bad.any():
            raise DataError(
                f"xgboost family: {where} labels must be class indices 0..{k - 1} "
                f"({int(bad.sum())} rows are not, e.g. {labels[bad][:3].tolist()})"
            )
    if not np.isfinite(np.asarray(data.weights, dtype=np.float64)).all():
        raise DataError(f"xgboost family: {where} weights are not all finite")


def _booster_params(
    params: XGBoostParams, objective: str, n_classes: int, seed: int
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "objective": objective,
        "eval_metric": _EVAL_METRIC[objective],
        "max_depth": params.max_depth,
        "eta": params.learning_rate,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample,
        "min_child_weight": params.min_child_weight,
        "lambda": params.reg_lambda,
        "tree_method": "hist",
        "max_bin": params.max_bin,
        "nthread": params.n_threads,
        "seed": seed,
    }
    if objective == "multi:softprob":
        out["num_class"] = n_classes
    return out


def _progress_callback(
    total: int,
    every: int,
    hook: ProgressHook | None,
    offset: int,
    after_round: RoundHook | None,
    dtrain: Any,
) -> Any:
    import xgboost as xgb

    class _Progress(xgb.callback.TrainingCallback):  # type: ignore[misc]
        """Log the validation loss every ``every`` rounds and call the hooks."""

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if after_round is not None:
                after_round(model, epoch, dtrain)
            latest = {
                f"{data}-{name}": float(values[-1])
                for data, metrics in evals_log.items()
                for name, values in metrics.items()
            }
            done = offset + epoch + 1
            if hook is not None:
                hook(done, total, latest)
            if done % every == 0 or done == total:
                text = ", ".join(f"{k} {v:.5g}" for k, v in latest.items())
                log.info("round %d/%d: %s", done, total, text)
            return False

    return _Progress()


def train_booster(
    params: XGBoostParams,
    objective: str,
    n_classes: int,
    train: Rows,
    valid: Rows,
    *,
    seed: int,
    rounds: int | None = None,
    start: Any = None,
    early_stopping: bool = True,
    progress: ProgressHook | None = None,
    total_rounds: int | None = None,
    after_round: RoundHook | None = None,
) -> BoostResult:
    """Train (or continue training) a booster.

    Parameters
    ----------
    params : XGBoostParams
    objective : str
        From :func:`resolve_objective`.
    n_classes : int
        Classes of a multiclass task (ignored otherwise).
    train, valid : Rows
    seed : int
    rounds : int, optional
        Rounds to add (``params.n_estimators`` by default).
    start : xgboost.Booster, optional
        Continue from this booster (its trees are kept).
    early_stopping : bool
        Honour ``params.early_stopping_rounds``.
    progress : callable, optional
        Called after each round, see :data:`ProgressHook`.
    total_rounds : int, optional
        Total rounds shown in progress when training runs in several calls.
    after_round : callable, optional
        Called after each round, see :data:`RoundHook`.
    """
    import xgboost as xgb

    n_rounds = rounds or params.n_estimators
    offset = 0 if start is None else start.num_boosted_rounds()
    total = total_rounds or offset + n_rounds
    stop = params.early_stopping_rounds if early_stopping else None
    metric = _EVAL_METRIC[objective]

    if params.distributed is not None:
        if after_round is not None:
            raise ConfigError(
                "training with a hook after each round (flat training) cannot run "
                "on a Dask cluster",
                key="family.params.distributed",
                hint="remove 'distributed' or 'flat' from the family's parameters",
            )
        booster, history = _train_on_cluster(
            params, objective, n_classes, train, valid, seed, n_rounds, stop, start
        )
        if progress is not None:
            progress(offset + len(history), total, {f"valid-{metric}": history[-1]})
    else:
        dtrain = xgb.DMatrix(train.features, label=train.labels, weight=train.weights)
        dvalid = xgb.DMatrix(valid.features, label=valid.labels, weight=valid.weights)
        evals_result: dict[str, Any] = {}
        booster = xgb.train(
            _booster_params(params, objective, n_classes, seed),
            dtrain,
            num_boost_round=n_rounds,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=stop,
            evals_result=evals_result,
            verbose_eval=False,
            xgb_model=start,
            callbacks=[
                _progress_callback(
                    total, params.log_every, progress, offset, after_round, dtrain
                )
            ],
        )
        history = evals_result["valid"][metric]
    if stop is not None and len(history) > 0:
        best = int(booster.best_iteration)
        booster = booster[: best + 1]
        loss = float(history[best - offset])
    else:
        best = booster.num_boosted_rounds() - 1
        loss = float(history[-1])
    booster.set_param({"nthread": params.n_threads})
    return BoostResult(booster, best, offset + len(history), loss, metric)


def _train_on_cluster(
    params: XGBoostParams,
    objective: str,
    n_classes: int,
    train: Rows,
    valid: Rows,
    seed: int,
    n_rounds: int,
    stop: int | None,
    start: Any,
) -> tuple[Any, list[float]]:
    from trigml_xgboost.distributed import train_distributed

    assert params.distributed is not None
    return train_distributed(
        _booster_params(params, objective, n_classes, seed),
        params.distributed,
        train,
        valid,
        rounds=n_rounds,
        early_stopping_rounds=stop,
        start=start,
    )


def booster_predict(booster: Any, features: np.ndarray) -> np.ndarray:
    """Scores of ``booster`` on a float32 matrix: probabilities or regression values.

    Returns
    -------
    ndarray, float32
        Shape (n,) for binary and regression, (n, k) for multiclass.
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    if len(x) == 0:
        return np.zeros((0,), dtype=np.float32)
    return np.asarray(booster.inplace_predict(x), dtype=np.float32)


def feature_gain(
    booster: Any, names: Sequence[str], kind: str = "gain"
) -> dict[str, float]:
    """Importance of each feature by name, 0 for features no split uses.

    Parameters
    ----------
    booster : xgboost.Booster
        Trained without feature names (columns appear as ``f0``, ``f1``, ...).
    names : sequence of str
        Feature names in column order.
    kind : {"gain", "total_gain", "weight", "cover", "total_cover"}
    """
    raw = booster.get_score(importance_type=kind)
    return {name: float(raw.get(f"f{i}", 0.0)) for i, name in enumerate(names)}
