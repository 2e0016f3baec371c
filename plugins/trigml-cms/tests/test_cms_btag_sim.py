"""The b-tagging jet simulation: impact parameters, vertices, selection, seeding."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from trigml.schema.events import validate_batch
from trigml_cms.btag_sim import (
    BtagSimParams,
    BtagSimSource,
    FlavourMix,
    btag_event_schema,
)


@pytest.fixture(scope="module")
def jets() -> ak.Array:
    return BtagSimSource(BtagSimParams(n_events=24_000, seed=21)).events()


def _flavour(jets: ak.Array) -> np.ndarray:
    return ak.to_numpy(jets.flavour)


def test_same_seed_same_jets_whatever_the_batch_size() -> None:
    a = BtagSimSource(BtagSimParams(n_events=18_000, seed=4, batch_size=18_000))
    b = BtagSimSource(BtagSimParams(n_events=18_000, seed=4, batch_size=5_000))
    whole = next(iter(a.batches())).events
    parts = ak.concatenate([batch.events for batch in b.batches()])
    np.testing.assert_array_equal(
        ak.to_numpy(ak.flatten(whole.tracks.sip2d_sig)),
        ak.to_numpy(ak.flatten(parts.tracks.sip2d_sig)),
    )


def test_jets_match_their_schema(jets: ak.Array) -> None:
    assert validate_batch(jets, btag_event_schema(), policy="fail").keep.all()


def test_flavour_composition_follows_the_parameters(jets: ak.Array) -> None:
    fractions = np.bincount(_flavour(jets), minlength=4) / len(jets)
    np.testing.assert_allclose(fractions, FlavourMix().fractions(), atol=0.015)


def test_ip_significance_positive_for_b_symmetric_for_light(jets: ak.Array) -> None:
    flavour = _flavour(jets)
    for code, min_asymmetry in ((0, 0.2), (2, 0.07)):
        sig = ak.to_numpy(ak.flatten(jets.tracks.sip2d_sig[flavour == code]))
        assert (sig > 3).mean() - (sig < -3).mean() > min_asymmetry
    light = ak.to_numpy(ak.flatten(jets.tracks.sip2d_sig[flavour == 3]))
    assert abs(np.median(light)) < 0.05
    assert abs((light > 3).mean() - (light < -3).mean()) < 0.01
    # The light-jet tails are wider than a Gaussian (K_S, Λ, material, bad tracks).
    assert (np.abs(light) > 4).mean() > 10 * 6.3e-5


def test_secondary_vertex_efficiency_per_flavour(jets: ak.Array) -> None:
    flavour = _flavour(jets)
    found = ak.to_numpy(jets.sv_found) > 0
    eff = [found[flavour == f].mean() for f in range(4)]
    assert 0.58 < eff[0] < 0.72  # b: about 65%
    assert 0.22 < eff[2] < 0.38  # c: about 30%
    assert 0.02 < eff[3] < 0.08  # light: about 5%
    mass = ak.to_numpy(jets.sv_mass)
    assert np.median(mass[found & (flavour == 0)]) > 1.4 * np.median(
        mass[found & (flavour == 2)]
    )
    assert (mass[~found] == 0).all()


def test_tracks_pass_the_btag_selection(jets: ak.Array) -> None:
    t = ak.flatten(jets.tracks)
    assert ak.all(t.pt > 1.0) and ak.all(t.delta_r < 0.3)
    assert ak.all(t.jet_dist < 0.07) and ak.all(np.abs(t.sip2d) < 0.2)
    assert ak.max(ak.num(jets.tracks)) <= BtagSimParams().max_tracks
    # Highest pT first within each jet.
    assert ak.all(jets.tracks.pt[:, :-1] >= jets.tracks.pt[:, 1:])


def test_b_jets_carry_displaced_heavy_flavour_tracks(jets: ak.Array) -> None:
    flavour = _flavour(jets)
    origin = jets.tracks.origin
    b_tracks = ak.to_numpy(ak.sum(origin[flavour == 0] == 1, axis=1))
    assert b_tracks.mean() > 1.5
    assert ak.sum(origin[flavour == 3] == 1) == 0
    decay = ak.to_numpy(ak.flatten(jets.tracks.decay_length[flavour == 0]))
    assert np.median(decay) > 0.0
