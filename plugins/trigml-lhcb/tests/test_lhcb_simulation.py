"""Physics and mechanics of the LHCb event simulation."""

from __future__ import annotations

import time

import awkward as ak
import numpy as np
import pytest

from trigml.errors import ConfigError
from trigml_lhcb.ghostsim import simulate_ghost
from trigml_lhcb.modes import MODES, mode_id
from trigml_lhcb.simulation import LHCbSimSource, simulate_topo


def _flat(events, collection, field):
    return ak.to_numpy(ak.flatten(events[collection][field]))


def test_same_seed_same_events_other_seed_other_events():
    a = simulate_topo(300, np.random.default_rng(7))
    b = simulate_topo(300, np.random.default_rng(7))
    c = simulate_topo(300, np.random.default_rng(8))
    for coll, field in (("tracks", "ipchi2"), ("svs", "mcorr")):
        np.testing.assert_array_equal(_flat(a, coll, field), _flat(b, coll, field))
    assert not np.array_equal(ak.to_numpy(a.nPV), ak.to_numpy(c.nPV)) or not (
        np.array_equal(_flat(a, "tracks", "pt"), _flat(c, "tracks", "pt"))
    )


def test_source_batches_are_reproducible_and_numbered():
    src = LHCbSimSource(n_events=500, seed=3, batch_size=200, kind="minbias")
    first = list(src.batches())
    again = list(src.batches(["svs.mcorr", "nPV"]))
    assert [len(b) for b in first] == [200, 200, 100]
    assert [b.start for b in first] == [0, 200, 400]
    ids = np.concatenate([ak.to_numpy(b.events.event_id) for b in first])
    np.testing.assert_array_equal(ids, np.arange(500))
    assert ak.fields(again[1].events) == ["svs", "nPV"]
    assert ak.fields(again[1].events.svs) == ["mcorr"]
    np.testing.assert_array_equal(
        _flat(first[1].events, "svs", "mcorr"), _flat(again[1].events, "svs", "mcorr")
    )
    chunk = src.read_chunk(src.chunks()[2])
    np.testing.assert_array_equal(
        _flat(chunk.events, "tracks", "pt"), _flat(first[2].events, "tracks", "pt")
    )


def test_unknown_mode_and_kind_are_refused():
    with pytest.raises(ConfigError, match="B0_Kpii"):
        LHCbSimSource(modes=["B0_Kpii"])
    with pytest.raises(ConfigError, match="kind"):
        LHCbSimSource(kind="zerobias")  # type: ignore[arg-type]


def test_decay_time_is_exponential_with_the_lifetime():
    ev = simulate_topo(4000, np.random.default_rng(5), kind="signal", modes=["B0_Kpi"])
    t = ak.to_numpy(ev.b_decay_time)
    tau = MODES["B0_Kpi"].chain.ctau / 299.792458
    assert abs(t.mean() / tau - 1.0) < 0.06
    # Exponential: the standard deviation equals the mean, the median is tau ln 2.
    assert abs(t.std() / t.mean() - 1.0) < 0.08
    assert abs(np.median(t) / (tau * np.log(2)) - 1.0) < 0.08


def test_signal_tracks_are_displaced_prompt_tracks_are_not(signal_events):
    origin = _flat(signal_events, "tracks", "origin")
    ipchi2 = _flat(signal_events, "tracks", "ipchi2")
    sig, prompt = ipchi2[origin == 1], ipchi2[origin == 0]
    assert np.median(sig) > 10 * np.median(prompt)
    # Prompt IP χ² follows χ²(2) in the core: median 2 ln 2 ≈ 1.39.
    assert 1.0 < np.median(prompt) < 1.9


def test_missing_neutral_mass_below_mb_and_corrected_mass_near_it(signal_events):
    ev = signal_events[ak.to_numpy(signal_events["mode"]) == mode_id("Bp_D0munu")]
    sv = ak.flatten(ev.svs)
    full = sv[ak.to_numpy(sv.from_signal) & (ak.to_numpy(sv.n_tracks) == 3)]
    mass, mcorr = ak.to_numpy(full.mass), ak.to_numpy(full.mcorr)
    m_b = MODES["Bp_D0munu"].chain.mass
    assert len(mass) > 50
    assert np.mean(mass < m_b) > 0.97
    assert np.median(mcorr) > np.median(mass) + 0.7
    counts, edges = np.histogram(mcorr, bins=np.arange(2.0, 8.01, 0.5))
    peak = edges[np.argmax(counts)] + 0.25
    assert abs(peak - m_b) < 1.0


def test_fully_reconstructed_two_body_peaks_at_the_b_mass(signal_events):
    ev = signal_events[ak.to_numpy(signal_events["mode"]) == mode_id("B0_Kpi")]
    sv = ak.flatten(ev.svs)
    mass = ak.to_numpy(sv.mass[ak.to_numpy(sv.from_signal)])
    # Pion masses for the kaon pull the peak a little below m(B0).
    assert 5.0 < np.median(mass) < 5.3


def test_minimum_bias_has_no_signal_and_realistic_heavy_flavour(minbias_events):
    ev = minbias_events
    assert not ak.any(ev.is_signal)
    assert not ak.any(ev.tracks.from_signal)
    n_pv = ak.to_numpy(ev.nPV)
    assert n_pv.min() >= 1 and 1.5 < n_pv.mean() < 2.3
    charm = np.mean(ak.to_numpy(ev.n_charm) > 0)
    assert 0.1 < charm < 0.25
    assert np.mean(ak.to_numpy(ev.n_b) > 0) < 0.02
    truth = _flat(ev, "svs", "truth")
    # Vertices of charm outnumber those of true b hadrons in minimum bias.
    assert (truth == 3).sum() > (truth == 2).sum()


def test_ghost_fraction_rises_with_occupancy(ghost_events):
    n_true = ak.to_numpy(ghost_events.n_true)
    occupancy = ak.to_numpy(ghost_events.occupancy)
    ghosts = occupancy - n_true
    quiet = n_true < np.quantile(n_true, 0.2)
    busy = n_true > np.quantile(n_true, 0.8)
    frac_quiet = ghosts[quiet].sum() / occupancy[quiet].sum()
    frac_busy = ghosts[busy].sum() / occupancy[busy].sum()
    assert 0.03 < frac_quiet < 0.12
    assert 0.18 < frac_busy < 0.28
    is_ghost = ak.to_numpy(ak.flatten(ghost_events.tracks.is_ghost))
    assert ghosts.sum() == is_ghost.sum()


def test_true_track_chi2_follows_chi2_over_ndof(ghost_events):
    tracks = ak.flatten(ghost_events.tracks)
    true = ~ak.to_numpy(tracks.is_ghost)
    chi2 = ak.to_numpy(tracks.chi2ndof)[true]
    ndof = ak.to_numpy(tracks.ndof)[true]
    from scipy import stats

    # Mean of χ²(ndof)/ndof is 1 (times the small occupancy factor and tails).
    assert 0.98 < chi2.mean() < 1.15
    common = np.bincount(ndof).argmax()
    sel = chi2[ndof == common] * common
    quartiles = np.quantile(sel, [0.25, 0.5, 0.75])
    expected = stats.chi2.ppf([0.25, 0.5, 0.75], common)
    np.testing.assert_allclose(quartiles / expected, 1.05, atol=0.07)


def test_generation_speed():
    # The issue asks for ≥ 100k events per minute on one core; allow a slow machine
    # a factor two here, the benchmark in the docs measures the real number.
    simulate_topo(500, np.random.default_rng(0))
    start = time.process_time()
    simulate_topo(5000, np.random.default_rng(1))
    per_minute = 5000 / (time.process_time() - start) * 60
    assert per_minute > 50_000
    start = time.process_time()
    simulate_ghost(2000, np.random.default_rng(1))
    assert 2000 / (time.process_time() - start) * 60 > 50_000
