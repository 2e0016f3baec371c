"""The cms.emtf algorithm: candidates, training, decisions, BDT vs analytic, LUT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest

from trigml.artifact import HOLDOUT_FILE, load_artifact, save_artifact
from trigml.components import TrainingSet
from trigml.errors import ModelError
from trigml.schema.card import FeatureSpec, ModelCard, WorkingPoint
from trigml_cms.emtf import (
    EmtfAlgorithm,
    EmtfParams,
    pt_from_invpt,
    threshold_for_turn_on,
)
from trigml_cms.emtf_report import compare_assignments
from trigml_cms.emtf_sim import EmtfSimParams, EmtfSimSource
from trigml_cms.lut_backend import EmtfLutBackend, EmtfLutParams


@pytest.fixture(scope="module")
def algorithm() -> EmtfAlgorithm:
    return EmtfAlgorithm(EmtfParams(mode=15))


@pytest.fixture(scope="module")
def train(algorithm: EmtfAlgorithm) -> TrainingSet:
    source = EmtfSimSource(EmtfSimParams(n_events=100_000, seed=31, batch_size=50_000))
    return algorithm.training_set(source, seed=1)


def _events(n: int, seed: int, spectrum: str = "flat_invpt") -> ak.Array:
    return EmtfSimSource(
        EmtfSimParams(n_events=n, seed=seed, spectrum=spectrum)
    ).events()


def test_candidates_are_the_tracks_of_one_mode(algorithm: EmtfAlgorithm) -> None:
    events = _events(5_000, 1)
    cands = algorithm.candidates(events)
    mode = ak.to_numpy(events["mode"])
    np.testing.assert_array_equal(cands.event_index, np.flatnonzero(mode == 15))
    assert cands.names == algorithm.packing.names
    assert cands.names[:3] == ["dphi_12", "dphi_23", "sign_23"]
    assert cands.features.dtype == np.float32
    # The features are already decoded address fields: packing them changes nothing.
    np.testing.assert_array_equal(
        algorithm.packing.quantise(cands.features), cands.features
    )

    three = EmtfAlgorithm(EmtfParams(mode=7)).candidates(events)
    assert three.names[:2] == ["dphi_23", "dphi_34"] and "ring1" not in three.names


def test_training_set_targets_inverse_pt(train: TrainingSet) -> None:
    assert train.task == "regression"
    assert train.features.shape == (len(train), 11)
    np.testing.assert_allclose(train.labels, 1.0 / train.aux["mu_pt"], rtol=1e-6)
    assert train.labels.min() > 0 and train.labels.max() <= 0.5 + 1e-6
    assert set(train.aux) >= {"mu_pt", "analytic_pt", "theta", "dphi_first"}


def test_analytic_assignment_is_calibrated(train: TrainingSet) -> None:
    pt, analytic = train.aux["mu_pt"], train.aux["analytic_pt"]
    mid = (pt > 10) & (pt < 30)
    response = np.median(pt[mid] / analytic[mid])
    assert 0.9 < response < 1.1
    assert analytic.max() <= 255.5


def test_decisions_cut_on_the_assigned_pt(algorithm: EmtfAlgorithm) -> None:
    events = _events(2_000, 2)
    cands = algorithm.candidates(events)
    invpt = np.full(len(cands), 1.0 / 30.0, dtype=np.float32)
    invpt[::2] = 1.0 / 10.0
    fired = algorithm.decide(invpt, cands, len(events), 22.0)
    assert fired.shape == (len(events),) and fired.sum() == len(cands) // 2
    best = algorithm.event_scores(invpt, cands, len(events))
    np.testing.assert_allclose(best[cands.event_index[1]], 30.0, rtol=1e-5)
    assert np.isneginf(
        best[np.setdiff1d(np.arange(len(events)), cands.event_index)]
    ).all()
    assert pt_from_invpt(np.array([0.0, -1.0]))[0] == pytest.approx(255.5)


def test_card_gets_turn_on_working_points(
    algorithm: EmtfAlgorithm, train: TrainingSet
) -> None:
    card = ModelCard(
        name="m", algorithm="cms.emtf", family="xgboost", task="regression",
        features=train.features_spec,
    )  # fmt: skip
    noisy = train.labels * np.random.default_rng(0).lognormal(0, 0.2, len(train))
    card = algorithm.describe_card(card, train, noisy)
    names = [wp.name for wp in card.working_points]
    assert names == ["eff90at10", "eff90at16", "eff90at22"]
    for wp in card.working_points:
        assert wp.signal_efficiency >= 0.9
    assert card.metrics["address"]["address_bits"] <= 30
    thresholds = [wp.threshold for wp in card.working_points]
    assert thresholds == sorted(thresholds)


def test_threshold_for_turn_on_reaches_the_efficiency() -> None:
    rng = np.random.default_rng(1)
    pt_true = rng.uniform(10, 40, 20_000)
    pt_l1 = pt_true * rng.lognormal(0.0, 0.25, len(pt_true))
    thr = threshold_for_turn_on(pt_l1, pt_true, 22.0)
    window = np.abs(pt_true - 22) < 1
    assert (pt_l1[window] >= thr).mean() >= 0.9
    assert (pt_l1[window] >= thr + 0.5).mean() < 0.9


def _fit_bdt(train: TrainingSet, trees: int = 40) -> Any:
    xgb = pytest.importorskip("xgboost")
    params = {"max_depth": 4, "eta": 0.2, "nthread": 2, "objective": "reg:squarederror"}
    data = xgb.DMatrix(train.features, label=train.labels)
    return xgb.train(params, data, trees)


def test_bdt_beats_analytic_rate_at_equal_turn_on(
    algorithm: EmtfAlgorithm, train: TrainingSet
) -> None:
    booster = _fit_bdt(train)
    flat = _events(120_000, 32)
    fc = algorithm.candidates(flat)
    assert algorithm.analytic is not None
    assigned = {
        "BDT": pt_from_invpt(booster.inplace_predict(fc.features)),
        "analytic": algorithm.analytic.predict_pt(
            fc.aux["theta"], fc.aux["dphi_first"]
        ),
    }
    zero_bias = _events(150_000, 33, "falling")
    zc = algorithm.candidates(zero_bias)
    rate_assigned = {}
    for name, pt in (
        ("BDT", pt_from_invpt(booster.inplace_predict(zc.features))),
        (
            "analytic",
            algorithm.analytic.predict_pt(zc.aux["theta"], zc.aux["dphi_first"]),
        ),
    ):
        per_event = np.zeros(len(zero_bias))
        per_event[zc.event_index] = pt
        rate_assigned[name] = per_event
    report = compare_assignments(assigned, fc.aux["mu_pt"], rate_assigned=rate_assigned)
    for name in ("BDT", "analytic"):
        assert report[name]["efficiency_at"] >= 0.9
    assert (
        report["BDT"]["invpt_resolution_15_30"]
        < report["analytic"]["invpt_resolution_15_30"]
    )
    assert report["rate_ratio"]["analytic/BDT"] > 1.5, report["rate_ratio"]


def _bdt_artifact(tmp_path: Path, params: EmtfParams) -> Path:
    algorithm = EmtfAlgorithm(params)
    source = EmtfSimSource(EmtfSimParams(n_events=30_000, seed=34))
    data = algorithm.training_set(source, seed=1)
    booster = _fit_bdt(data, trees=30)
    out = tmp_path / "bdt"
    out.mkdir()
    booster.save_model(str(out / "model.json"))
    scores = booster.inplace_predict(data.features).astype(np.float32)
    np.savez(
        out / HOLDOUT_FILE,
        features=data.features,
        labels=data.labels,
        scores=scores,
        aux_mu_pt=data.aux["mu_pt"],
    )
    card = ModelCard(
        name="emtf-test",
        algorithm="cms.emtf",
        family="xgboost",
        task="regression",
        features=[FeatureSpec(name=n) for n in data.names],
        formats={"xgboost-json": "model.json"},
        algorithm_params=params.model_dump(),
        working_points=[WorkingPoint(name="eff90at22", threshold=18.0)],
    )
    save_artifact(out, card)
    return out


def test_lut_export_reproduces_the_bdt(tmp_path: Path) -> None:
    params = EmtfParams(mode=15, address_bits=16)
    artifact = load_artifact(_bdt_artifact(tmp_path, params))
    backend = EmtfLutBackend(EmtfLutParams(check_addresses=1 << 16))
    result = backend.export(artifact, tmp_path / "lut")

    report = json.loads((tmp_path / "lut" / "consistency.json").read_text())
    assert report["addresses"]["all_addresses"] is True
    assert report["addresses"]["pt_word_agreement"] == 1.0
    assert report["pt_word_agreement"] == 1.0
    point = report["working_points"][0]
    assert point["agreement"] == 1.0
    assert point["signal_efficiency_deployed"] == point["signal_efficiency_float"]
    assert 0.5 < point["signal_efficiency_deployed"] <= 1.0
    assert report["lut"]["address_bits"] <= 16
    assert (
        report["lut"]["memory_bytes"] == (1 << report["lut"]["address_bits"]) * 9 // 8
    )
    assert result.report == report

    lut = load_artifact(tmp_path / "lut" / "model")
    assert lut.card.formats == {"lut": "lut.npz"}
    scorer = backend.load(lut)
    hold = artifact.holdout()
    words = np.round(1.0 / (scorer.predict(hold["features"]) * 0.5))
    expected = pt_from_invpt(hold["scores"]) / 0.5
    np.testing.assert_array_equal(words, expected)
    with pytest.raises(ModelError, match="emtf-test-lut"):
        scorer.predict(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ModelError, match="no lookup table"):
        backend.load(artifact)
    assert report["lut"]["method"] == "trees"

    # Evaluating the BDT address by address gives the same table.
    slow = EmtfLutBackend(EmtfLutParams(method="evaluate", check_addresses=1000))
    slow.export(artifact, tmp_path / "lut-evaluated")
    tables = [
        np.load(tmp_path / d / "model" / "lut.npz")["table"]
        for d in ("lut", "lut-evaluated")
    ]
    np.testing.assert_array_equal(tables[0], tables[1])
