"""The topological-trigger algorithm: candidates, training set, event-level figures."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from trigml.errors import ConfigError, DataError
from trigml.schema.card import ModelCard
from trigml.schema.events import validate_batch
from trigml_lhcb.modes import mode_id
from trigml_lhcb.simulation import LHCbSimSource
from trigml_lhcb.topo import (
    DEFAULT_TOPO_FEATURES,
    TopoAlgorithm,
    TopoParams,
    event_level,
)


@pytest.fixture(scope="module")
def topo_data():
    algo = TopoAlgorithm()
    source = LHCbSimSource(n_events=16_000, seed=21, batch_size=8_000)
    data = algo.training_set(source, seed=1)
    return algo, data


def test_candidates_match_the_vertices_of_each_event(signal_events):
    algo = TopoAlgorithm(TopoParams(body_counts=[2, 4]))
    cands = algo.candidates(signal_events)
    n_tracks = ak.to_numpy(ak.flatten(signal_events.svs.n_tracks))
    counts = ak.to_numpy(ak.num(signal_events.svs[signal_events.svs.n_tracks != 3]))
    np.testing.assert_array_equal(
        np.bincount(cands.event_index, minlength=len(signal_events)), counts
    )
    assert np.all(np.diff(cands.event_index) >= 0)
    assert set(np.unique(cands.aux["n_tracks"])) <= {2, 4}
    j = algo.params.features.index("mcorr")
    mcorr = ak.to_numpy(ak.flatten(signal_events.svs.mcorr))[n_tracks != 3]
    np.testing.assert_array_equal(cands.features[:, j], mcorr)
    assert cands.features.dtype == np.float32
    assert cands.names == DEFAULT_TOPO_FEATURES


def test_simulated_events_pass_the_event_schema(signal_events, minbias_events):
    schema = TopoAlgorithm(
        TopoParams(features=["mass", "mcorr", "dira"])
    ).event_schema()
    for events in (signal_events, minbias_events):
        assert validate_batch(events, schema, policy="fail").keep.all()


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="did you mean 'mcorr'"):
        TopoParams(features=["mcor"])
    with pytest.raises(ValueError, match="body_counts"):
        TopoParams(body_counts=[5])
    with pytest.raises(ConfigError, match="Bs_Dspii"):
        TopoAlgorithm(TopoParams(train_modes=["Bs_Dspii"]))


def test_candidates_without_vertices_name_the_problem():
    with pytest.raises(DataError, match="svs"):
        TopoAlgorithm().candidates(ak.Array([{"nPV": 1}]))


def test_training_set_labels_weights_and_aux(topo_data):
    algo, data = topo_data
    aux = data.aux
    sig = data.labels == 1
    assert sig.any() and (~sig).any()
    # Signal rows come from signal events, background rows from minimum bias.
    assert not aux["is_minbias"][sig].any()
    assert aux["is_minbias"][~sig].all()
    # Held-out modes and true b of minimum bias do not train.
    held = np.isin(aux["mode"], [mode_id(m) for m in ("Bs_Dspi", "Lb_pK")])
    assert held.any() and (data.weights[held] == 0).all()
    assert (data.weights[~sig & (aux["truth"] == 2)] == 0).all()
    # Every trained mode weighs the same; signal weighs as much as background.
    totals = [
        data.weights[sig & (aux["mode"] == mode_id(m))].sum() for m in algo.train_modes
    ]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-4)
    np.testing.assert_allclose(
        data.weights[sig].sum(), data.weights[~sig].sum(), rtol=1e-4
    )
    assert data.features.shape == (len(data), len(algo.params.features))
    dal = aux["flat_sample"]
    assert dal.any() and (aux["dalitz_m12sq"][dal] > 0).all()
    assert (aux["b_decay_time"][sig] >= 0).all()


def test_split_keeps_events_whole_and_counts_events_without_candidates(topo_data):
    _, data = topo_data
    train, valid = data.split(0.3, seed=4)
    assert not set(train.aux["group"]) & set(valid.aux["group"])
    share = len(np.unique(valid.aux["group"])) / len(np.unique(data.aux["group"]))
    assert abs(share - 0.3) < 0.01
    table = event_level(data, np.zeros(len(data)))
    # All 16000 events: about half minimum bias, each counted once.
    assert abs(len(table["minbias"]) - 8000) < 300
    assert len(table["minbias"]) > len(
        np.unique(data.aux["group"][data.aux["is_minbias"]])
    )


def _event_efficiency(algo, data, scores, rate_hz):
    card = ModelCard(name="t", algorithm="lhcb.topo", family="x", features=[])
    algo = TopoAlgorithm(algo.params.model_copy(update={"target_rates_hz": [rate_hz]}))
    card = algo.describe_card(card, data, scores)
    return card.working_points[-1], card.metrics["lhcb.topo"]


def test_bdt_beats_rectangular_cuts_at_the_same_rate(topo_data):
    import xgboost as xgb

    from trigml.cuts import optimise_cuts

    algo, data = topo_data
    train, valid = data.split(0.4, seed=2)
    booster = xgb.train(
        {"max_depth": 4, "eta": 0.2, "objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(train.features, train.labels, weight=train.weights),
        80,
    )
    bdt = booster.inplace_predict(valid.features)
    # The greedy optimiser steps over whole tied values, so it gets the continuous
    # features only (a cut on the integer n_tracks would drop a body count at once).
    cont = [
        i for i, n in enumerate(train.names) if n not in ("n_tracks", "n_ipchi2_gt16")
    ]
    cuts = optimise_cuts(
        train.features[:, cont],
        train.labels,
        [train.names[i] for i in cont],
        target_efficiency=0.7,
        weights=train.weights,
    ).score(valid.features[:, cont])

    wp_bdt, fig_bdt = _event_efficiency(algo, valid, bdt, 2.0e4)
    wp_cut, _ = _event_efficiency(algo, valid, cuts, 2.0e4)
    # Same rate (2% of minimum bias at 1 MHz), within the granularity of the sample.
    assert wp_bdt.rate_hz == pytest.approx(2.0e4, rel=0.1)
    assert wp_cut.rate_hz == pytest.approx(2.0e4, rel=0.1)
    assert wp_bdt.level == "event"
    assert wp_bdt.signal_efficiency > wp_cut.signal_efficiency + 0.05
    eff = fig_bdt["rates"][wp_bdt.name]["efficiency"]
    assert set(eff) == set(algo.eval_modes)


def test_working_points_get_tighter_as_the_rate_falls(topo_data):
    algo, data = topo_data
    rng = np.random.default_rng(0)
    scores = np.where(data.labels > 0, 0.5, 0.0) + rng.random(len(data))
    card = ModelCard(name="t", algorithm="lhcb.topo", family="x", features=[])
    algo = TopoAlgorithm(
        algo.params.model_copy(update={"target_rates_hz": [5e4, 2e4, 1e4]})
    )
    points = algo.describe_card(card, data, scores).working_points
    assert [p.name for p in points] == ["rate_50khz", "rate_20khz", "rate_10khz"]
    thresholds = [p.threshold for p in points]
    assert thresholds == sorted(thresholds)
    assert all(p.rate_hz <= r * 1.0001 for p, r in zip(points, [5e4, 2e4, 1e4]))


def test_evaluate_writes_figures(topo_data, tmp_path):
    algo, data = topo_data
    scores = np.where(data.labels > 0, 0.7, 0.2) + 0.1 * np.random.default_rng(
        1
    ).random(len(data))
    out = algo.evaluate(data, scores, tmp_path)
    assert (tmp_path / "lhcb_topo.json").is_file()
    assert (tmp_path / "efficiency_vs_decay_time.png").is_file()
    flat = out["lhcb.topo.evaluation"]["dalitz_flatness"]
    assert flat["n_candidates"] == int(data.aux["flat_sample"].sum())
