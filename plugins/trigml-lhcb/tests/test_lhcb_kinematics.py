"""Phase space and boosts of the LHCb simulation."""

from __future__ import annotations

import numpy as np

from trigml_lhcb.kinematics import boost, invariant_mass_sq, phase_space


def test_phase_space_conserves_four_momentum_and_masses():
    rng = np.random.default_rng(1)
    masses = [0.494, 0.494, 0.1396, 0.1396]
    p = phase_space(rng, 5.28, masses, 2000)
    total = p.sum(axis=1)
    np.testing.assert_allclose(total[:, :3], 0.0, atol=1e-9)
    np.testing.assert_allclose(total[:, 3], 5.28, rtol=1e-12)
    m2 = p[..., 3] ** 2 - (p[..., :3] ** 2).sum(axis=-1)
    np.testing.assert_allclose(
        np.sqrt(np.clip(m2, 0, None)), [masses] * 2000, atol=1e-6
    )


def test_three_body_phase_space_is_flat_in_the_dalitz_plane():
    rng = np.random.default_rng(2)
    m = [0.494, 0.494, 0.1396]
    p = phase_space(rng, 5.279, m, 200_000)
    m12 = invariant_mass_sq(p[:, 0], p[:, 1])
    m23 = invariant_mass_sq(p[:, 1], p[:, 2])
    # Cells well inside the kinematic boundary must hold equal counts.
    counts, _, _ = np.histogram2d(m12, m23, bins=6, range=[[4.0, 12.0], [4.0, 12.0]])
    expected = counts.mean()
    chi2 = ((counts - expected) ** 2 / expected).sum() / (counts.size - 1)
    assert counts.min() > 0
    assert chi2 < 2.0


def _dalitz_width(s12: np.ndarray, big: float, m1: float, m2: float, m3: float):
    """Length of the allowed m23² interval at m12² = s12 (PDG kinematics)."""
    m12 = np.sqrt(s12)
    e2 = (s12 - m1**2 + m2**2) / (2 * m12)
    e3 = (big**2 - s12 - m3**2) / (2 * m12)
    p2 = np.sqrt(np.clip(e2**2 - m2**2, 0, None))
    p3 = np.sqrt(np.clip(e3**2 - m3**2, 0, None))
    return 4 * p2 * p3


def test_m12_projection_follows_phase_space():
    big, m = 5.279, (0.494, 0.494, 0.1396)
    p = phase_space(np.random.default_rng(3), big, list(m), 200_000)
    s12 = invariant_mass_sq(p[:, 0], p[:, 1])
    edges = np.linspace((m[0] + m[1]) ** 2, (big - m[2]) ** 2, 21)
    counts, _ = np.histogram(s12, edges)
    fine = np.linspace(edges[0], edges[-1], 20_001)
    width = _dalitz_width(0.5 * (fine[1:] + fine[:-1]), big, *m)
    expected = np.add.reduceat(width, np.arange(0, 20_000, 1000))
    expected *= counts.sum() / expected.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum() / (len(counts) - 1)
    assert chi2 < 2.5


def test_boost_of_a_particle_at_rest():
    p4 = np.array([[0.0, 0.0, 0.0, 2.0]])
    beta = np.array([[0.0, 0.0, 0.6]])
    out = boost(p4, beta)
    gamma = 1.0 / np.sqrt(1 - 0.36)
    np.testing.assert_allclose(out[0], [0.0, 0.0, 2.0 * gamma * 0.6, 2.0 * gamma])
