"""The endcap muon simulation: seeding, bending, stations, modes and spectra."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from trigml.errors import DataError
from trigml.schema.events import validate_batch
from trigml_cms.emtf_sim import (
    EmtfSimParams,
    EmtfSimSource,
    emtf_event_schema,
    simulate_emtf,
)


@pytest.fixture(scope="module")
def flat() -> ak.Array:
    return EmtfSimSource(EmtfSimParams(n_events=60_000, seed=11)).events()


def _np(events: ak.Array, name: str) -> np.ndarray:
    return ak.to_numpy(events[name])


def test_same_seed_same_events_whatever_the_batch_size() -> None:
    a = EmtfSimSource(EmtfSimParams(n_events=40_000, seed=3, batch_size=40_000))
    b = EmtfSimSource(EmtfSimParams(n_events=40_000, seed=3, batch_size=7_000))
    whole = next(iter(a.batches())).events
    parts = ak.concatenate([batch.events for batch in b.batches()])
    assert ak.to_list(whole[["dphi12", "mode", "mu_pt"]]) == ak.to_list(
        parts[["dphi12", "mode", "mu_pt"]]
    )
    other = EmtfSimSource(EmtfSimParams(n_events=1_000, seed=4)).events()
    assert not np.array_equal(_np(whole, "mu_pt")[:1000], _np(other, "mu_pt"))


def test_batches_are_numbered_and_cover_every_event() -> None:
    src = EmtfSimSource(EmtfSimParams(n_events=25_000, seed=1, batch_size=10_000))
    batches = list(src.batches(["mode", "dphi12"]))
    assert [b.start for b in batches] == [0, 10_000, 20_000]
    assert [len(b) for b in batches] == [10_000, 10_000, 5_000]
    assert set(ak.fields(batches[0].events)) == {"mode", "dphi12"}
    with pytest.raises(DataError, match="no field 'nope'"):
        next(src.batches(["nope"]))


def test_events_match_their_schema(flat: ak.Array) -> None:
    checked = validate_batch(flat, emtf_event_schema(), policy="fail")
    assert checked.keep.all()
    assert flat.dphi12.type.content.primitive == "int32"


def test_bending_falls_as_one_over_pt(flat: ak.Array) -> None:
    pt, mode = _np(flat, "mu_pt"), _np(flat, "mode")
    dphi = np.abs(_np(flat, "dphi12")).astype(float)
    eta = np.abs(_np(flat, "mu_eta"))
    central = (mode == 15) & (eta < 1.6)
    low = np.median(dphi[central & (pt > 4) & (pt < 5)])
    high = np.median(dphi[central & (pt > 16) & (pt < 20)])
    assert 2.8 < low / high < 5.5  # pT ratio about 4, energy loss bends low pT more

    # The charge sets the sign of the bending.
    q = _np(flat, "mu_charge")
    sel = (mode == 15) & (pt > 5) & (pt < 50)
    assert (np.sign(_np(flat, "dphi12")[sel]) == q[sel]).mean() > 0.95


def test_bending_weakens_with_eta(flat: ak.Array) -> None:
    pt, mode = _np(flat, "mu_pt"), _np(flat, "mode")
    eta = np.abs(_np(flat, "mu_eta"))
    product = np.abs(_np(flat, "dphi12")) * pt
    sel = (mode == 15) & (pt > 8) & (pt < 40)
    low_eta = np.median(product[sel & (eta < 1.5)])
    high_eta = np.median(product[sel & (eta > 2.1)])
    assert high_eta < 0.7 * low_eta


def test_station_efficiencies_and_modes(flat: ak.Array) -> None:
    mode = _np(flat, "mode").astype(int)
    pt = _np(flat, "mu_pt")
    hard = pt > 10
    for station in range(1, 5):
        present = (mode[hard] & (1 << (4 - station))) > 0
        assert 0.88 < present.mean() < 0.97
    counts = np.bincount(mode[hard], minlength=16) / hard.sum()
    assert counts.argmax() == 15
    assert 0.60 < counts[15] < 0.82
    assert counts[[0, 1, 2, 4, 8]].sum() < 0.01  # one station or none: no track
    # Low-momentum muons range out before the last stations.
    soft = (pt < 2.5) & (np.abs(_np(flat, "mu_eta")) < 1.3)
    assert ((mode[soft] & 1) > 0).mean() < ((mode[hard] & 1) > 0).mean() - 0.2


def test_hardware_quantities_are_quantised(flat: ak.Array) -> None:
    theta = _np(flat, "theta1")
    assert theta.dtype == np.int32 and theta.min() >= 0 and theta.max() <= 127
    bend = _np(flat, "bend1")
    assert bend.dtype == np.int8 and np.abs(bend).max() <= 4
    rpc = _np(flat, "rpc1")
    assert set(np.unique(rpc)) <= {0, 1} and 0.0 < rpc.mean() < 0.1


def test_zero_bias_sample_falls_steeply() -> None:
    params = EmtfSimParams(n_events=50_000, seed=2, spectrum="falling")
    events = EmtfSimSource(params).events()
    pt = _np(events, "mu_pt")
    counts, _ = np.histogram(pt, bins=[2, 4, 8, 16, 32, 64])
    assert np.all(np.diff(counts) < 0)
    assert (pt > 20).mean() < 0.01
    category = np.bincount(_np(events, "category"), minlength=3) / len(pt)
    np.testing.assert_allclose(category, params.composition.fractions(), atol=0.01)


def test_generator_is_a_pure_function_of_the_rng() -> None:
    a = simulate_emtf(np.random.default_rng(5), 500)
    b = simulate_emtf(np.random.default_rng(5), 500)
    assert ak.to_list(a) == ak.to_list(b)


def test_bad_parameters_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="pt_max"):
        EmtfSimParams(pt_min=50, pt_max=20)
    with pytest.raises(ValidationError, match="extra"):
        EmtfSimParams.model_validate({"n_event": 10})
