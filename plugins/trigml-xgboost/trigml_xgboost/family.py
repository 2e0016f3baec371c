"""The ``xgboost`` model family: fit a booster on a training set and save it.

``fit`` optionally prunes features, trains flat in chosen variables and tabulates a
bonsai lookup table; ``save`` writes ``model.json`` (xgboost's own JSON), a verified
``model.onnx`` and, for bonsai models, ``lut.npz``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trigml.components import ModelFamily, TrainedModel, TrainingSet
from trigml.errors import ModelError
from trigml_xgboost.bonsai import (
    LUT_FILE,
    LookupTable,
    build_lookup_table,
    compare_with_exact,
)
from trigml_xgboost.booster import (
    BoostResult,
    Rows,
    booster_predict,
    check_labels,
    feature_gain,
    resolve_objective,
    train_booster,
)
from trigml_xgboost.figures import figure_of_merit
from trigml_xgboost.onnx_export import booster_to_onnx, verify_onnx
from trigml_xgboost.params import XGBoostParams

__all__ = ["CHECK_ROWS", "FittedBDT", "XGBoostFamily"]

log = logging.getLogger(__name__)

#: Validation rows kept with a fitted model to verify its exported files.
CHECK_ROWS = 2000

MODEL_FILE = "model.json"
ONNX_FILE = "model.onnx"


@dataclass
class FittedBDT:
    """A trained booster with the feature bookkeeping its files need.

    Attributes
    ----------
    booster : xgboost.Booster
    task : str
    objective : str
    features : list of str
        Model inputs, in order (the kept features after pruning).
    columns : list of int
        Indices of ``features`` among the training-set columns.
    n_inputs : int
        Number of training-set columns.
    check_rows : ndarray, float32, shape (m, len(features))
        Validation rows used to verify the ONNX file.
    lut : LookupTable or None
        The bonsai table, when one was requested.
    """

    booster: Any
    task: str
    objective: str
    features: list[str]
    columns: list[int]
    n_inputs: int
    check_rows: np.ndarray = field(repr=False)
    lut: LookupTable | None = None

    def select(self, features: np.ndarray) -> np.ndarray:
        """The model's columns of ``features``.

        Accepts either every training-set column or only the model's features, so
        that a caller may pass rows before or after restricting them to the kept
        features.
        """
        x = np.asarray(features)
        if x.ndim == 2 and x.shape[1] == len(self.columns):
            return x
        if x.ndim == 2 and x.shape[1] == self.n_inputs:
            return x[:, self.columns]
        raise ModelError(
            f"xgboost model expects {len(self.columns)} features ({self.features}) "
            f"or the {self.n_inputs} training-set columns, got shape {x.shape}"
        )

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Float scores: P(signal) (n,), class probabilities (n, k) or targets (n,)."""
        return booster_predict(self.booster, self.select(features))

    def reference(self, features: np.ndarray) -> np.ndarray:
        """The scores the deployed model gives: the table's for a bonsai BDT.

        A bonsai BDT is deployed as its lookup table, so its working points and the
        held-out reference scores come from the table, not from the exact booster.
        """
        if self.lut is None:
            return self.predict(features)
        return np.asarray(self.lut.lookup(self.select(features)), dtype=np.float32)


class XGBoostFamily(ModelFamily):
    """Boosted decision trees trained with xgboost.

    Parameters
    ----------
    params : XGBoostParams

    Boosting rounds are reported through the core's ``report_progress`` (the command
    line draws a progress bar from it) and logged every ``log_every`` rounds.
    """

    name = "xgboost"

    def __init__(self, params: XGBoostParams | None = None) -> None:
        self.params = params or XGBoostParams()

    def _on_round(self, done: int, total: int, losses: dict[str, float]) -> None:
        self.report_progress(done, total)

    # -- fit -----------------------------------------------------------------------

    def fit(self, train: TrainingSet, valid: TrainingSet, *, seed: int) -> TrainedModel:
        """Fit a booster with early stopping on ``valid``.

        Runs pruning first when ``prune`` is set (the model keeps the surviving
        features, listed in ``TrainedModel.extra["features"]``), trains flat when
        ``flat`` is set, and tabulates the bonsai table when ``bonsai`` is set.
        """
        params = self.params
        objective = resolve_objective(params, train)
        check_labels(train, "training")
        check_labels(valid, "validation")
        metrics: dict[str, Any] = {}
        columns = list(range(len(train.names)))
        result: BoostResult | None = None

        if params.prune is not None:
            result, columns = self._prune(train, valid, seed, metrics)
        if params.flat is not None:
            result = self._train_flat(train, valid, objective, columns, seed, metrics)
        elif result is None:
            result = train_booster(
                params,
                objective,
                len(train.classes),
                Rows.of(train, columns),
                Rows.of(valid, columns),
                seed=seed,
                progress=self._on_round,
            )

        names = [train.names[c] for c in columns]
        bdt = FittedBDT(
            booster=result.booster,
            task=train.task,
            objective=objective,
            features=names,
            columns=columns,
            n_inputs=len(train.names),
            check_rows=np.ascontiguousarray(
                valid.features[:CHECK_ROWS, columns], dtype=np.float32
            ),
        )
        metrics.update(self._summary(bdt, result, valid))
        if params.flat is not None:
            metrics["flatness"]["sde_valid"] = _valid_sde(bdt, valid, params)
        if params.bonsai is not None:
            bdt.lut = self._bonsai(bdt, train, valid, metrics)

        extra: dict[str, Any] = {}
        if len(columns) != len(train.names):
            extra["features"] = names
        hyper = params.model_dump(mode="json")
        hyper.update(objective_resolved=objective, n_trees=_n_trees(result.booster))
        return TrainedModel(
            model=bdt,
            predict=bdt.reference,
            hyperparameters=hyper,
            metrics=metrics,
            extra=extra,
        )

    def _prune(
        self,
        train: TrainingSet,
        valid: TrainingSet,
        seed: int,
        metrics: dict[str, Any],
    ) -> tuple[BoostResult, list[int]]:
        from trigml_xgboost.pruning import prune_features

        prune = self.params.prune
        assert prune is not None
        outcome = prune_features(
            train,
            valid,
            self.params,
            prune.tolerance,
            prune.metric,
            seed=seed,
            min_features=prune.min_features,
        )
        metrics["pruning"] = outcome.to_json()
        return outcome.result, outcome.columns

    def _train_flat(
        self,
        train: TrainingSet,
        valid: TrainingSet,
        objective: str,
        columns: list[int],
        seed: int,
        metrics: dict[str, Any],
    ) -> BoostResult:
        from trigml_xgboost.flat import train_flat

        flat = self.params.flat
        assert flat is not None
        outcome = train_flat(
            self.params,
            objective,
            train,
            valid,
            columns,
            seed=seed,
            progress=self._on_round,
        )
        metrics["flatness"] = {
            "features": list(flat.features),
            "strength": flat.strength,
            "n_bins": flat.n_bins,
            "stages": outcome.trail,
        }
        return outcome.result

    def _summary(
        self, bdt: FittedBDT, result: BoostResult, valid: TrainingSet
    ) -> dict[str, Any]:
        scores = bdt.predict(valid.features)
        figure = "resolution" if bdt.task == "regression" else "auc"
        return {
            "best_iteration": result.best_iteration,
            "rounds_run": result.rounds_run,
            f"valid_{result.metric}": result.valid_loss,
            f"valid_{figure}": figure_of_merit(
                figure, scores, np.asarray(valid.labels), valid.weights
            ),
            "feature_importance": feature_gain(bdt.booster, bdt.features, "gain"),
        }

    def _bonsai(
        self,
        bdt: FittedBDT,
        train: TrainingSet,
        valid: TrainingSet,
        metrics: dict[str, Any],
    ) -> LookupTable:
        bonsai = self.params.bonsai
        assert bonsai is not None
        lut = build_lookup_table(
            bdt.predict, train.features[:, bdt.columns], bdt.features, bonsai
        )
        metrics["bonsai"] = {
            "bins": list(lut.grid_shape),
            "cells": int(np.prod(lut.grid_shape)),
            "table_bytes": lut.nbytes,
            **compare_with_exact(lut, bdt.predict, valid.features[:, bdt.columns]),
        }
        log.info(
            "bonsai table %s: %d bytes, max |table - exact| %.3g on validation rows",
            "×".join(map(str, lut.grid_shape)),
            lut.nbytes,
            metrics["bonsai"]["max_abs_diff"],
        )
        return lut

    # -- save ----------------------------------------------------------------------

    def save(self, model: TrainedModel, directory: Path) -> dict[str, str]:
        """Write ``model.json``, a verified ``model.onnx`` and, for bonsai, ``lut.npz``.

        The ONNX check (max difference to the native scores on validation rows) is
        recorded in ``model.metrics["onnx"]``.

        Raises
        ------
        ModelError
            ``model`` does not come from this family, or the ONNX file does not
            reproduce the native scores.
        """
        bdt = model.model
        if not isinstance(bdt, FittedBDT):
            raise ModelError(
                f"the xgboost family cannot save a {type(bdt).__name__}; "
                "pass the TrainedModel its fit returned"
            )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        bdt.booster.save_model(str(directory / MODEL_FILE))

        onnx_model = booster_to_onnx(bdt.booster, len(bdt.features))
        data = onnx_model.SerializeToString()
        reference = booster_predict(bdt.booster, bdt.check_rows)
        model.metrics["onnx"] = verify_onnx(data, reference, bdt.check_rows)
        (directory / ONNX_FILE).write_bytes(data)
        formats = {"xgboost-json": MODEL_FILE, "onnx": ONNX_FILE}

        if bdt.lut is not None:
            path = bdt.lut.save(directory / LUT_FILE)
            model.metrics.setdefault("bonsai", {})["file_bytes"] = path.stat().st_size
            formats["lut"] = LUT_FILE
        return formats


def _n_trees(booster: Any) -> int:
    import json

    config = json.loads(booster.save_config())
    params = config["learner"]["gradient_booster"]["gbtree_model_param"]
    return int(params["num_trees"])


def _valid_sde(bdt: FittedBDT, valid: TrainingSet, params: XGBoostParams) -> float:
    from trigml.metrics import flatness_sde
    from trigml_xgboost.flat import uniform_columns

    assert params.flat is not None
    signal = np.asarray(valid.labels) > 0
    uniform = uniform_columns(valid, params.flat.features, "validation")
    scores = bdt.predict(valid.features)
    return flatness_sde(
        scores[signal],
        uniform[signal],
        valid.weights[signal],
        n_bins=params.flat.n_bins,
    )
