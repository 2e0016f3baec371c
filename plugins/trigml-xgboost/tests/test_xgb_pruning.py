"""Backward feature pruning, on its own and inside the family."""

from __future__ import annotations

import numpy as np
import pytest

from trigml.errors import ConfigError
from trigml_xgboost.family import XGBoostFamily
from trigml_xgboost.params import XGBoostParams
from trigml_xgboost.pruning import prune_features

FAST = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.3}


def test_noise_features_are_pruned_first(binary_sets):
    train, valid = binary_sets
    result = prune_features(train, valid, FAST, tolerance=0.005, metric="auc")

    assert {"x0", "x1"} <= set(result.kept)
    assert set(result.dropped) >= {"x3", "x4"}
    assert sorted(result.kept + result.dropped) == sorted(train.names)
    assert result.trail[0]["dropped"] is None and result.trail[0]["accepted"]
    accepted = [t for t in result.trail[1:] if t["accepted"]]
    assert [t["dropped"] for t in accepted] == result.dropped
    assert all(t["loss"] <= 0.005 for t in accepted)
    # Pruning stops at the first removal that costs more than the tolerance.
    rejected = [t for t in result.trail if not t["accepted"]]
    assert len(rejected) <= 1
    if rejected:
        assert rejected[0]["loss"] > 0.005 and rejected[0] is result.trail[-1]
    assert result.baseline - result.final <= 0.005
    assert result.to_json()["kept"] == result.kept


def test_zero_tolerance_on_informative_features_keeps_them(binary_sets):
    train, valid = binary_sets
    two = train.subset(np.arange(len(train)))
    two.features = np.ascontiguousarray(two.features[:, :2])
    two.features_spec = two.features_spec[:2]
    valid_two = valid.subset(np.arange(len(valid)))
    valid_two.features = np.ascontiguousarray(valid_two.features[:, :2])
    valid_two.features_spec = valid_two.features_spec[:2]
    result = prune_features(two, valid_two, FAST, tolerance=0.0)
    assert result.kept == ["x0", "x1"] and result.dropped == []
    assert len(result.trail) == 2 and not result.trail[1]["accepted"]


def test_family_prunes_and_names_kept_features(binary_sets, tmp_path):
    train, valid = binary_sets
    params = XGBoostParams(**FAST, prune={"tolerance": 0.005})
    family = XGBoostFamily(params)
    model = family.fit(train, valid, seed=0)

    kept = model.extra["features"]
    assert kept == model.metrics["pruning"]["kept"] and len(kept) < len(train.names)
    assert kept == [n for n in train.names if n in kept]  # training-set order
    assert set(model.metrics["feature_importance"]) == set(kept)
    columns = [train.names.index(n) for n in kept]
    full = model.predict(valid.features)
    np.testing.assert_array_equal(full, model.predict(valid.features[:, columns]))

    family.save(model, tmp_path)
    assert model.metrics["onnx"]["max_abs_diff"] < 1e-5
    import onnx

    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    width = graph.input[0].type.tensor_type.shape.dim[1].dim_value
    assert width == len(kept)


def test_regression_pruned_on_resolution(regression_sets):
    train, valid = regression_sets
    params = {"n_estimators": 80, "max_depth": 4}
    result = prune_features(train, valid, params, tolerance=0.02, metric="auto")
    assert result.figure == "resolution"
    assert {"r0", "r1"} <= set(result.kept)
    assert {"r2", "r3"} & set(result.dropped)
    assert (result.final - result.baseline) / result.baseline <= 0.02


def test_metric_must_fit_the_task(regression_sets):
    train, valid = regression_sets
    with pytest.raises(ConfigError, match="pruning metric 'auc'") as info:
        prune_features(train, valid, FAST, metric="auc")
    assert info.value.key == "family.params.prune.metric"
