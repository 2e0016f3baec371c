"""The cms.deepcsv algorithm: the 66 inputs, decisions, the CSV-like baseline."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from trigml.errors import DataError
from trigml.schema.card import ModelCard
from trigml.testing import check_algorithm
from trigml_cms.btag_sim import BtagSimParams, BtagSimSource
from trigml_cms.deepcsv import (
    CLASSES,
    FEATURES,
    CsvLikelihood,
    DeepCsvAlgorithm,
    b_discriminant,
    tagging_performance,
)


@pytest.fixture(scope="module")
def jets() -> ak.Array:
    return BtagSimSource(BtagSimParams(n_events=16_000, seed=41)).events()


@pytest.fixture(scope="module")
def algorithm() -> DeepCsvAlgorithm:
    return DeepCsvAlgorithm()


def test_conformance(algorithm: DeepCsvAlgorithm, jets: ak.Array) -> None:
    check_algorithm(algorithm, jets[:2000])


def test_sixty_six_inputs(algorithm: DeepCsvAlgorithm, jets: ak.Array) -> None:
    cands = algorithm.candidates(jets)
    assert len(FEATURES) == 66 and cands.features.shape == (len(jets), 66)
    assert np.isfinite(cands.features).all()
    np.testing.assert_array_equal(cands.event_index, np.arange(len(jets)))
    col = {n: i for i, n in enumerate(cands.names)}
    x = cands.features

    # Tracks ranked by decreasing 2D IP significance, missing ones filled with 0.
    s2d = x[:, [col[f"trk{i}_sip2d_sig"] for i in range(6)]]
    n_tracks = x[:, col["n_tracks"]].astype(int)
    full = n_tracks >= 6
    assert np.all(np.diff(s2d[full], axis=1) <= 0)
    short = n_tracks == 2
    assert (s2d[short][:, 2:] == 0).all() and (x[short, col["trk5_delta_r"]] == 0).all()

    # Vertex fields come from the SV when there is one.
    found = ak.to_numpy(jets.sv_found) > 0
    np.testing.assert_allclose(
        x[found, col["sv_mass"]], ak.to_numpy(jets.sv_mass)[found]
    )
    assert (x[found, col["vertex_category"]] == 0).all()
    assert (x[~found, col["sv_flight2d"]] == 0).all()


def test_training_set_labels_flavours(algorithm: DeepCsvAlgorithm) -> None:
    source = BtagSimSource(BtagSimParams(n_events=3_000, seed=2, batch_size=1_000))
    data = algorithm.training_set(source, seed=1)
    assert data.task == "multiclass" and data.classes == CLASSES == [
        "b",
        "bb",
        "c",
        "light",
    ]
    assert data.features.shape == (3_000, 66)
    assert set(np.unique(data.labels)) == {0, 1, 2, 3}


def test_discriminant_and_decisions(
    algorithm: DeepCsvAlgorithm, jets: ak.Array
) -> None:
    cands = algorithm.candidates(jets[:4])
    probs = np.array(
        [
            [0.5, 0.3, 0.1, 0.1],
            [0.1, 0.0, 0.2, 0.7],
            [0.2, 0.2, 0.5, 0.1],
            [0, 0, 0, 1.0],
        ]
    )
    np.testing.assert_allclose(b_discriminant(probs), [0.8, 0.1, 0.4, 0.0])
    fired = algorithm.decide(probs, cands, 4, 0.35)
    np.testing.assert_array_equal(fired, [True, False, True, False])
    np.testing.assert_allclose(
        algorithm.event_scores(probs, cands, 4), [0.8, 0.1, 0.4, 0]
    )
    with pytest.raises(DataError, match="shape"):
        b_discriminant(np.zeros((3, 3)))


def test_csv_likelihood_tags_b_jets(
    algorithm: DeepCsvAlgorithm, jets: ak.Array
) -> None:
    cands = algorithm.candidates(jets)
    labels = ak.to_numpy(jets.flavour).astype(int)
    half = len(labels) // 2
    csv = CsvLikelihood().fit(cands.features[:half], cands.names, labels[:half])
    disc = csv.predict(cands.features[half:], cands.names)
    perf = tagging_performance({"csv": disc}, labels[half:])["csv"]
    assert perf["auc_b_vs_light"] > 0.85
    assert perf["auc_b_vs_c"] < perf["auc_b_vs_light"]
    loose, medium = perf["working_points"]["loose"], perf["working_points"]["medium"]
    assert 0.07 < loose["light_mistag"] < 0.13
    assert medium["b_efficiency"] < loose["b_efficiency"]


def test_card_working_points_and_evaluation(
    algorithm: DeepCsvAlgorithm, jets: ak.Array, tmp_path: Path
) -> None:
    data = algorithm.training_set(
        BtagSimSource(BtagSimParams(n_events=8_000, seed=9)), seed=1
    )
    # A stand-in model: the CSV-like likelihood spread over the four classes.
    csv = CsvLikelihood().fit(data.features, data.names, data.labels)
    d = csv.predict(data.features, data.names)
    scores = np.column_stack([0.8 * d, 0.2 * d, 0.3 * (1 - d), 0.7 * (1 - d)])
    card = ModelCard(
        name="m", algorithm="cms.deepcsv", family="torch", task="multiclass",
        features=data.features_spec, classes=CLASSES,
    )  # fmt: skip
    card = algorithm.describe_card(card, data, scores)
    assert [wp.name for wp in card.working_points] == ["loose", "medium", "tight"]
    effs = [wp.signal_efficiency for wp in card.working_points]
    assert effs == sorted(effs, reverse=True)
    for wp, mistag in zip(card.working_points, (0.1, 0.01, 0.001)):
        assert wp.background_efficiency <= mistag + 1e-9

    extra = algorithm.evaluate(data, scores, tmp_path)
    assert set(extra["deepcsv_evaluation"]) >= {"DeepCSV", "CSV-like LR", "plots"}
    for plot in extra["deepcsv_evaluation"]["plots"]:
        assert Path(plot).stat().st_size > 1000
    assert isinstance(extra["b_efficiency_gain_at_1pc_light"], float)
