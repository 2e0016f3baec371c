"""Training on a two-worker Dask cluster with ``distributed: {address: ...}``."""

from __future__ import annotations

import numpy as np
import pytest

from trigml.errors import ConfigError
from trigml.metrics import auc
from trigml_xgboost.family import XGBoostFamily
from trigml_xgboost.params import XGBoostParams

distributed = pytest.importorskip("distributed")
pytest.importorskip("xgboost.dask")

FAST = {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.3}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # the scheduler's HTTP endpoint on a free port: clusters of parallel tests
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as local:
        yield local


def test_distributed_training_matches_one_process(binary_sets, cluster, tmp_path):
    train, valid = binary_sets
    local = XGBoostFamily(XGBoostParams(**FAST, early_stopping_rounds=5))
    spread = XGBoostFamily(
        XGBoostParams(
            **FAST,
            early_stopping_rounds=5,
            distributed={"address": cluster.scheduler_address},
        )
    )
    rounds = []
    spread.progress = lambda done, total: rounds.append((done, total))

    one = local.fit(train, valid, seed=3)
    two = spread.fit(train, valid, seed=3)

    scores = two.predict(valid.features)
    assert abs(auc(scores, valid.labels) - one.metrics["valid_auc"]) < 0.01
    assert two.hyperparameters["n_trees"] == two.metrics["best_iteration"] + 1
    assert rounds and rounds[-1][0] == two.metrics["rounds_run"]
    assert two.hyperparameters["distributed"]["address"] == cluster.scheduler_address
    # the saved files are those of any booster: JSON and a verified ONNX
    assert spread.save(two, tmp_path) == {
        "xgboost-json": "model.json",
        "onnx": "model.onnx",
    }
    assert two.metrics["onnx"]["max_abs_diff"] < 1e-5
    assert np.isfinite(scores).all()


def test_flat_training_is_refused_on_a_cluster(binary_sets, cluster):
    train, valid = binary_sets
    family = XGBoostFamily(
        XGBoostParams(
            **FAST,
            flat={"features": ["m"]},
            distributed={"address": cluster.scheduler_address},
        )
    )
    with pytest.raises(ConfigError, match="cannot run on a Dask cluster"):
        family.fit(train, valid, seed=1)
