"""The ghost-track classifier: candidates, training set and the χ² baseline."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from trigml.schema.card import ModelCard
from trigml.schema.events import validate_batch
from trigml_lhcb.ghost import GhostAlgorithm, GhostParams, ghost_rejection
from trigml_lhcb.ghostsim import GHOST_FEATURES
from trigml_lhcb.simulation import LHCbSimSource


@pytest.fixture(scope="module")
def ghost_data():
    algo = GhostAlgorithm()
    source = LHCbSimSource(n_events=1500, seed=5, batch_size=500, kind="ghost")
    return algo, algo.training_set(source, seed=1)


def test_candidates_are_the_tracks(ghost_events):
    algo = GhostAlgorithm()
    cands = algo.candidates(ghost_events)
    counts = ak.to_numpy(ak.num(ghost_events.tracks))
    np.testing.assert_array_equal(np.bincount(cands.event_index), counts)
    assert cands.names == list(GHOST_FEATURES)
    j = cands.names.index("match_chi2")
    np.testing.assert_array_equal(
        cands.features[:, j], ak.to_numpy(ak.flatten(ghost_events.tracks.match_chi2))
    )
    assert validate_batch(ghost_events, algo.event_schema(), policy="fail").keep.all()


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="did you mean 'match_chi2'"):
        GhostParams(features=["match_chi"])
    with pytest.raises(ValueError, match="between 0 and 1"):
        GhostParams(true_efficiencies=[1.0])


def test_training_set_balances_true_tracks_and_ghosts(ghost_data):
    _, data = ghost_data
    true = data.labels == 1
    assert 0.75 < true.mean() < 0.92
    np.testing.assert_allclose(data.weights[true].sum(), data.weights[~true].sum())
    assert data.classes == ["ghost", "true"]
    assert (data.aux["ghost_type"][true] == 0).all()
    assert (data.aux["ghost_type"][~true] > 0).all()


def test_max_tracks_stops_reading_early():
    algo = GhostAlgorithm(GhostParams(max_tracks=1000))
    source = LHCbSimSource(n_events=2000, seed=5, batch_size=10, kind="ghost")
    data = algo.training_set(source, seed=1)
    assert 1000 <= len(data) < 4000


def test_classifier_beats_the_chi2_cut(ghost_data, tmp_path):
    import xgboost as xgb

    algo, data = ghost_data
    train, valid = data.split(0.4, seed=3)
    booster = xgb.train(
        {"max_depth": 5, "eta": 0.2, "objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(train.features, train.labels, weight=train.weights),
        60,
    )
    scores = booster.inplace_predict(valid.features)
    fig = ghost_rejection(valid, scores, 0.99)
    assert fig["true_efficiency"] >= 0.99
    assert abs(fig["baseline_true_efficiency"] - 0.99) < 0.002
    # The anchor: > 99% of true tracks kept while about 60% of ghosts go.
    assert fig["ghost_rejection"] > 0.55
    assert fig["ghost_rejection"] > fig["baseline_rejection"] + 0.3

    card = ModelCard(name="g", algorithm="lhcb.ghost", family="x", features=[])
    card = algo.describe_card(card, valid, scores)
    names = [w.name for w in card.working_points]
    assert names == ["true99", "true99p5"]
    out = algo.evaluate(valid, scores, tmp_path)
    by_occ = out["lhcb.ghost.evaluation"]["by_occupancy"]
    assert by_occ[-1]["ghost_fraction"] > by_occ[0]["ghost_fraction"]
    assert (tmp_path / "ghost_rejection_vs_occupancy.png").is_file()
