"""The classical baseline: cut optimisation, the cuts backend, end-to-end training."""

from __future__ import annotations

import numpy as np
import pytest

from trigml.artifact import load_artifact
from trigml.cuts import CutsBackend, CutSet, optimise_cuts
from trigml.schema.config import ComponentRef, TrainConfig
from trigml.testing import check_algorithm, check_backend
from trigml.toy import toy_events
from trigml.train import train_model


def _toy_matrix(n=20_000, seed=3):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    x = np.stack(
        [
            rng.normal(np.where(y, 2.0, 0.0), 1.0),  # signal high: a 'min' cut
            rng.normal(np.where(y, -1.0, 0.0), 1.0),  # signal low: a 'max' cut
            rng.normal(0.0, 1.0, n),  # useless
        ],
        axis=1,
    ).astype(np.float32)
    return x, y.astype(int)


def test_optimiser_reaches_target_and_picks_directions():
    x, y = _toy_matrix()
    cuts = optimise_cuts(x, y, ["a", "b", "c"], target_efficiency=0.8)
    passed = cuts.score(x) >= 0
    eff = passed[y == 1].mean()
    assert 0.78 <= eff <= 0.82
    assert cuts.directions[:2] == ["min", "max"]
    # the useless feature is left (almost) uncut: it removes little background
    bkg_rej = 1 - passed[y == 0].mean()
    assert bkg_rej > 0.8


def test_cut_scores_are_margins():
    cuts = CutSet(
        ["a", "b"], ["min", "max"], np.array([1.0, 2.0]), np.array([1.0, 2.0])
    )
    x = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(cuts.score(x), [0.0, 1.0, -1.0])
    again = CutSet.from_json(cuts.to_json())
    np.testing.assert_allclose(again.score(x), cuts.score(x))


def test_optimiser_needs_both_classes():
    x, _ = _toy_matrix(100)
    from trigml.errors import DataError

    with pytest.raises(DataError, match="both signal and background"):
        optimise_cuts(x, np.ones(100), ["a", "b", "c"], target_efficiency=0.9)


def test_train_cuts_on_toy_and_backend_conformance(tmp_path, trigml_builtins):
    config = TrainConfig(
        algorithm=ComponentRef(type="cuts", params={"features": ["x0", "x1", "x2"]}),
        family=ComponentRef(type="cuts", params={"target_efficiency": 0.7}),
        source=ComponentRef(type="toy", params={"n_events": 20_000, "seed": 4}),
        output=str(tmp_path / "cuts-model"),
    )
    artifact = train_model(config, trigml_builtins.registry)
    again = load_artifact(artifact.path)
    assert again.card.formats == {"cuts-json": "cuts.json"}
    assert [wp.name for wp in again.card.working_points] == ["eff50", "eff70", "eff90"]
    hold = again.holdout()
    check_backend(CutsBackend(), again, hold["features"], hold["scores"])
    algo = trigml_builtins.registry.build(
        "algorithm", "cuts", {"features": ["x0", "x1"]}
    )
    check_algorithm(algo, toy_events(500, seed=1))


def test_optimiser_handles_integer_features():
    rng = np.random.default_rng(8)
    n = 20_000
    y = rng.random(n) < 0.5
    counts = rng.integers(0, 10, n) + 3 * y  # signal has three more
    cont = rng.normal(np.where(y, 1.5, 0.0), 1.0)
    x = np.stack([counts, cont], axis=1).astype(np.float32)
    cuts = optimise_cuts(x, y.astype(int), ["count", "x"], target_efficiency=0.8)
    eff = (cuts.score(x) >= 0)[y].mean()
    assert 0.78 <= eff <= 0.81
    assert np.isfinite(cuts.values).all()
