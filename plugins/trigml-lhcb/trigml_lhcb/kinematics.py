"""Vectorised relativistic kinematics: four-vectors, boosts and n-body phase space.

Four-vectors are arrays whose last axis is ``(px, py, pz, E)`` in GeV. Every function
works on whole arrays of decays at once; nothing loops over events.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "boost",
    "breakup_momentum",
    "eta_of",
    "four_vector",
    "invariant_mass_sq",
    "phase_space",
    "pt_of",
    "random_directions",
]


def breakup_momentum(
    mass: np.ndarray | float, m1: np.ndarray | float, m2: np.ndarray | float
) -> np.ndarray:
    """Momentum of either daughter in the two-body decay ``mass → m1 m2``, GeV.

    Returns 0 below threshold.
    """
    mass = np.asarray(mass, dtype=np.float64)
    s = mass * mass
    lam = (s - (m1 + m2) ** 2) * (s - (m1 - m2) ** 2)
    return np.sqrt(np.clip(lam, 0.0, None)) / (2.0 * mass)


def random_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` unit vectors distributed isotropically, shape (n, 3)."""
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    sin_t = np.sqrt(1.0 - cos_t * cos_t)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=-1)


def four_vector(
    pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: np.ndarray | float
) -> np.ndarray:
    """Four-vectors from transverse momentum (GeV), pseudorapidity, azimuth and mass."""
    px = pt * np.cos(phi)
    py = pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    e = np.sqrt(px * px + py * py + pz * pz + np.asarray(mass) ** 2)
    return np.stack([px, py, pz, e], axis=-1)


def boost(p4: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Boost four-vectors ``p4`` (…, 4) by velocity ``beta`` (…, 3), broadcast."""
    b2 = np.sum(beta * beta, axis=-1, keepdims=True)
    b2 = np.clip(b2, 0.0, 1.0 - 1e-15)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta * p4[..., :3], axis=-1, keepdims=True)
    safe = np.where(b2 > 0.0, b2, 1.0)
    coef = np.where(b2 > 0.0, (gamma - 1.0) / safe, 0.0)
    e = p4[..., 3:4]
    p3 = p4[..., :3] + (coef * bp + gamma * e) * beta
    return np.concatenate([p3, gamma * (e + bp)], axis=-1)


def invariant_mass_sq(*p4s: np.ndarray) -> np.ndarray:
    """Squared invariant mass of the sum of four-vectors, GeV²."""
    tot = np.sum(np.stack(p4s, axis=0), axis=0)
    return tot[..., 3] ** 2 - np.sum(tot[..., :3] ** 2, axis=-1)


def pt_of(p: np.ndarray) -> np.ndarray:
    """Transverse momentum of three- or four-vectors, GeV."""
    return np.hypot(p[..., 0], p[..., 1])


def eta_of(p: np.ndarray) -> np.ndarray:
    """Pseudorapidity of three- or four-vectors."""
    return np.arcsinh(p[..., 2] / np.maximum(pt_of(p), 1e-12))


def _max_weight(mass: float, masses: Sequence[float]) -> float:
    """Upper bound of the phase-space weight (product of breakup momenta)."""
    kinetic = mass - sum(masses)
    hi = kinetic + masses[0]
    lo = 0.0
    weight = 1.0
    for i in range(1, len(masses)):
        lo += masses[i - 1]
        hi += masses[i]
        weight *= float(breakup_momentum(hi, lo, masses[i]))
    return weight


def phase_space(
    rng: np.random.Generator, mass: float, masses: Sequence[float], n: int
) -> np.ndarray:
    """Decay ``n`` particles at rest uniformly in n-body phase space.

    The decay is built as a chain of two-body decays with random intermediate masses
    (the classic GENBOD construction); events are accepted with probability
    proportional to the product of the breakup momenta, which makes the accepted sample
    uniform in Lorentz-invariant phase space (flat in a Dalitz plot for three bodies).

    Parameters
    ----------
    rng : numpy Generator
    mass : float
        Parent mass, GeV.
    masses : sequence of float
        Daughter masses, GeV, at least two.
    n : int
        Number of decays.

    Returns
    -------
    ndarray, float64, shape (n, len(masses), 4)
        Daughter four-vectors in the parent rest frame.
    """
    k = len(masses)
    m = np.asarray(masses, dtype=np.float64)
    out = np.empty((n, k, 4))
    if n == 0:
        return out
    if k == 2:
        q = float(breakup_momentum(mass, m[0], m[1]))
        u = random_directions(rng, n)
        out[:, 0, :3] = q * u
        out[:, 1, :3] = -q * u
        out[:, :, 3] = np.sqrt(q * q + m * m)
        return out

    inv, mom = _accepted_masses(rng, mass, m, n)

    # Particles 0 and 1 back to back in the rest frame of the first subsystem.
    u = random_directions(rng, n)
    out[:, 0, :3] = mom[:, :1] * u
    out[:, 1, :3] = -mom[:, :1] * u
    out[:, 0, 3] = np.sqrt(mom[:, 0] ** 2 + m[0] ** 2)
    out[:, 1, 3] = np.sqrt(mom[:, 0] ** 2 + m[1] ** 2)

    # Add one particle at a time: the subsystem recoils against it.
    for i in range(1, k - 1):
        u = random_directions(rng, n)
        p = mom[:, i : i + 1]
        e_sub = np.sqrt(p * p + inv[:, i : i + 1] ** 2)
        beta = p * u / e_sub
        out[:, : i + 1] = boost(out[:, : i + 1], beta[:, None, :])
        out[:, i + 1, :3] = -p * u
        out[:, i + 1, 3] = np.sqrt(p[:, 0] ** 2 + m[i + 1] ** 2)
    return out


def _accepted_masses(
    rng: np.random.Generator, mass: float, m: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Intermediate masses and breakup momenta of ``n`` accepted phase-space decays."""
    k = len(m)
    kinetic = mass - m.sum()
    w_max = _max_weight(mass, list(m))
    partial = np.cumsum(m)
    inv_parts: list[np.ndarray] = []
    mom_parts: list[np.ndarray] = []
    have = 0
    accept_rate = 0.5
    while have < n:
        tries = int((n - have) / accept_rate * 1.2) + 64
        r = np.sort(rng.random((tries, k - 2)), axis=1)
        inv = np.empty((tries, k))
        inv[:, 0] = m[0]
        inv[:, 1 : k - 1] = partial[1 : k - 1] + r * kinetic
        inv[:, k - 1] = mass
        mom = breakup_momentum(inv[:, 1:], inv[:, :-1], m[1:])
        ok = rng.random(tries) * w_max < np.prod(mom, axis=1)
        accept_rate = max(ok.mean(), 0.01)
        inv_parts.append(inv[ok])
        mom_parts.append(mom[ok])
        have += int(ok.sum())
    return np.concatenate(inv_parts)[:n], np.concatenate(mom_parts)[:n]
