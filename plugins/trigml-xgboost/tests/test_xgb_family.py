"""Fitting and saving boosted trees for binary, multiclass and regression tasks."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnxruntime as ort
import pytest
import xgboost as xgb

from trigml.artifact import load_artifact, save_artifact
from trigml.components import TrainedModel
from trigml.errors import ConfigError, DataError, ModelError
from trigml.metrics import auc
from trigml.schema.card import ModelCard
from trigml.testing import isolated_plugins
from trigml_xgboost import hooks
from trigml_xgboost.family import FittedBDT, XGBoostFamily
from trigml_xgboost.onnx_export import booster_to_onnx, verify_onnx
from trigml_xgboost.params import XGBoostParams

FAST = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.3}


def _onnx_scores(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"features": x})
    return out


def test_binary_fit_save_and_reload(binary_sets, tmp_path, caplog):
    train, valid = binary_sets
    family = XGBoostFamily(XGBoostParams(**FAST, early_stopping_rounds=5, log_every=10))
    rounds = []
    family.progress = lambda done, total: rounds.append((done, total))

    with caplog.at_level(logging.INFO, logger="trigml_xgboost"):
        model = family.fit(train, valid, seed=3)

    assert isinstance(model.model, FittedBDT)
    scores = model.predict(valid.features)
    assert scores.shape == (len(valid),) and scores.dtype == np.float32
    assert 0.75 < auc(scores, valid.labels) == pytest.approx(model.metrics["valid_auc"])
    assert rounds and rounds[0] == (1, 60)
    assert any("round 10/60" in r.getMessage() for r in caplog.records)
    importance = model.metrics["feature_importance"]
    assert set(importance) == set(train.names)
    assert max(importance, key=importance.get) in ("x0", "x1")
    n_trees = model.hyperparameters["n_trees"]
    assert n_trees == model.metrics["best_iteration"] + 1
    assert model.hyperparameters["objective_resolved"] == "binary:logistic"

    formats = family.save(model, tmp_path)
    assert formats == {"xgboost-json": "model.json", "onnx": "model.onnx"}
    assert model.metrics["onnx"]["max_abs_diff"] < 1e-5
    native = xgb.Booster(model_file=str(tmp_path / "model.json"))
    assert native.num_boosted_rounds() == n_trees
    np.testing.assert_allclose(
        native.inplace_predict(valid.features), scores, atol=1e-6
    )
    onnx_out = _onnx_scores(tmp_path / "model.onnx", valid.features)
    assert onnx_out.shape == (len(valid), 2)
    np.testing.assert_allclose(onnx_out[:, 1], scores, atol=1e-5)


def test_early_stopping_keeps_best_round_only(binary_sets):
    train, valid = binary_sets
    params = XGBoostParams(n_estimators=400, max_depth=6, learning_rate=0.5)
    model = XGBoostFamily(params).fit(train, valid, seed=0)
    assert model.metrics["rounds_run"] < 400
    assert model.metrics["best_iteration"] < model.metrics["rounds_run"] - 1
    assert model.hyperparameters["n_trees"] == model.metrics["best_iteration"] + 1


def test_sample_weights_change_the_model(binary_sets):
    train, valid = binary_sets
    family = XGBoostFamily(XGBoostParams(**FAST, early_stopping_rounds=None))
    plain = family.fit(train, valid, seed=0).predict(valid.features)
    heavy = train.subset(np.arange(len(train)))
    heavy.weights = np.where(heavy.labels == 1, 5.0, 1.0).astype(np.float32)
    weighted = family.fit(heavy, valid, seed=0).predict(valid.features)
    # Up-weighting signal raises every signal probability on average.
    assert weighted.mean() > plain.mean() + 0.1


def test_multiclass(multiclass_sets, tmp_path):
    train, valid = multiclass_sets
    family = XGBoostFamily(XGBoostParams(**FAST))
    model = family.fit(train, valid, seed=1)
    probs = model.predict(valid.features)
    assert probs.shape == (len(valid), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == valid.labels).mean() > 0.6
    assert model.hyperparameters["objective_resolved"] == "multi:softprob"
    assert model.metrics["valid_auc"] > 0.75

    family.save(model, tmp_path)
    assert model.metrics["onnx"]["max_abs_diff"] < 1e-5
    np.testing.assert_allclose(
        _onnx_scores(tmp_path / "model.onnx", valid.features), probs, atol=1e-5
    )


def test_regression(regression_sets, tmp_path):
    train, valid = regression_sets
    family = XGBoostFamily(XGBoostParams(n_estimators=150, max_depth=4))
    model = family.fit(train, valid, seed=2)
    pred = model.predict(valid.features)
    assert pred.shape == (len(valid),)
    residual = pred - valid.labels
    assert abs(np.median(residual)) < 1.0
    assert model.metrics["valid_resolution"] < 3.0
    assert "valid_rmse" in model.metrics

    family.save(model, tmp_path)
    assert model.metrics["onnx"]["max_rel_diff"] < 1e-5
    onnx_out = _onnx_scores(tmp_path / "model.onnx", valid.features)
    assert onnx_out.shape == (len(valid), 1)
    np.testing.assert_allclose(onnx_out[:, 0], pred, rtol=1e-5, atol=1e-4)


def test_artifact_round_trip(binary_sets, tmp_path):
    train, valid = binary_sets
    family = XGBoostFamily(XGBoostParams(**FAST))
    model = family.fit(train, valid, seed=0)
    formats = family.save(model, tmp_path)
    card = ModelCard(
        name="toy-bdt",
        algorithm="toy",
        family="xgboost",
        features=train.features_spec,
        formats=formats,
        metrics=json.loads(json.dumps(model.metrics)),
    )
    artifact = load_artifact(save_artifact(tmp_path, card).path)
    assert artifact.card.metrics["onnx"]["max_abs_diff"] < 1e-5
    assert artifact.file("onnx").name == "model.onnx"


def test_wrong_tasks_and_labels(binary_sets):
    train, valid = binary_sets
    family = XGBoostFamily(XGBoostParams(**FAST))
    anomaly = train.subset(np.arange(100))
    anomaly.task = "anomaly"
    with pytest.raises(ConfigError, match="cannot train a 'anomaly' model"):
        family.fit(anomaly, anomaly, seed=0)

    wrong = XGBoostFamily(XGBoostParams(**FAST, objective="reg:squarederror"))
    with pytest.raises(ConfigError, match="does not fit a 'binary'") as info:
        wrong.fit(train, valid, seed=0)
    assert info.value.key == "family.params.objective"

    bad = train.subset(np.arange(100))
    bad.labels = bad.labels + 1
    with pytest.raises(DataError, match=r"class indices 0\.\.1"):
        family.fit(bad, valid, seed=0)


def test_save_refuses_foreign_models(tmp_path):
    family = XGBoostFamily()
    with pytest.raises(ModelError, match="cannot save a int"):
        family.save(TrainedModel(model=1, predict=None), tmp_path)


def test_onnx_disagreement_is_refused(binary_sets):
    train, valid = binary_sets
    model = XGBoostFamily(XGBoostParams(**FAST)).fit(train, valid, seed=0)
    booster = model.model.booster
    onnx_bytes = booster_to_onnx(booster, train.features.shape[1]).SerializeToString()
    rows = valid.features[:200]
    ok = verify_onnx(onnx_bytes, booster.inplace_predict(rows), rows)
    assert ok["max_abs_diff"] < 1e-5 and ok["rows"] == 200
    shifted = booster.inplace_predict(rows) + 1e-3
    with pytest.raises(ModelError, match="disagrees with the native xgboost model"):
        verify_onnx(onnx_bytes, shifted, rows)


def test_registered_through_the_hook():
    registry = isolated_plugins(("xgboost", hooks)).registry
    family = registry.build("family", "xgboost", {"n_estimators": 10, "prune": {}})
    assert isinstance(family, XGBoostFamily)
    assert family.params.prune is not None and family.params.prune.tolerance == 0.005
    with pytest.raises(ConfigError, match="n_trees"):
        registry.build("family", "xgboost", {"n_trees": 10})
    with pytest.raises(ConfigError, match="bins"):
        registry.build("family", "xgboost", {"bonsai": {"bins": 0}})
