"""Flat-efficiency training: flatness gained against AUC lost on a Dalitz-like toy."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from trigml.errors import ConfigError
from trigml.metrics import auc, flatness_sde
from trigml_xgboost.family import XGBoostFamily
from trigml_xgboost.params import XGBoostParams

log = logging.getLogger(__name__)

BASE = {"n_estimators": 100, "max_depth": 4, "learning_rate": 0.1}


def _figures(model, valid):
    scores = model.predict(valid.features)
    signal = valid.labels == 1
    return auc(scores, valid.labels), flatness_sde(
        scores[signal], valid.aux["m"][signal]
    )


def test_flat_training_trades_little_auc_for_flatness(make_dalitz_toy):
    train, valid = make_dalitz_toy(6000, 11), make_dalitz_toy(6000, 12)
    plain = XGBoostFamily(XGBoostParams(**BASE, early_stopping_rounds=None))
    flat = XGBoostFamily(
        XGBoostParams(**BASE, flat={"features": ["m"], "strength": 1.0, "n_bins": 10})
    )

    auc_plain, sde_plain = _figures(plain.fit(train, valid, seed=0), valid)
    model = flat.fit(train, valid, seed=0)
    auc_flat, sde_flat = _figures(model, valid)
    log.info(
        "flat training: SDE %.4f -> %.4f, AUC %.4f -> %.4f",
        sde_plain,
        sde_flat,
        auc_plain,
        auc_flat,
    )

    # The plain BDT is clearly non-flat on this toy; flat training removes most of it.
    assert sde_plain > 0.08
    assert sde_flat < 0.6 * sde_plain
    assert auc_plain - auc_flat < 0.02
    record = model.metrics["flatness"]
    assert record["sde_valid"] == pytest.approx(sde_flat)
    assert len(record["stages"]) == 10
    assert record["stages"][-1]["sde_train"] < record["stages"][0]["sde_train"]


def test_strength_zero_is_a_plain_bdt(make_dalitz_toy):
    train, valid = make_dalitz_toy(1500, 13), make_dalitz_toy(1500, 14)
    params = {"n_estimators": 30, "max_depth": 3, "early_stopping_rounds": None}
    plain = XGBoostFamily(XGBoostParams(**params)).fit(train, valid, seed=0)
    flat_params = XGBoostParams(**params, flat={"features": ["m"], "strength": 0.0})
    zero = XGBoostFamily(flat_params).fit(train, valid, seed=0)
    np.testing.assert_allclose(
        zero.predict(valid.features), plain.predict(valid.features), atol=1e-6
    )


def test_flat_needs_aux_columns_and_a_binary_task(make_dalitz_toy, multiclass_sets):
    train, valid = make_dalitz_toy(500, 15), make_dalitz_toy(500, 16)
    family = XGBoostFamily(
        XGBoostParams(n_estimators=5, flat={"features": ["m", "tau"]})
    )
    with pytest.raises(ConfigError, match=r"aux columns \['tau'\].*has: m") as info:
        family.fit(train, valid, seed=0)
    assert info.value.key == "family.params.flat.features"

    mc_train, mc_valid = multiclass_sets
    with pytest.raises(ConfigError, match="needs a binary classification task"):
        family.fit(mc_train, mc_valid, seed=0)
