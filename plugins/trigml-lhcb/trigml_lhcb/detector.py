"""A parametric model of the LHCb tracking system for the topological simulation.

Primary vertices in a luminous region, prompt charged particles with a soft power-law pT
spectrum, the acceptance and efficiency of long tracks, momentum and impact-parameter
resolution (σ_IP ≈ 15 + 29/pT µm per transverse coordinate, with non-Gaussian tails),
track-fit χ², ghost tracks, and the impact parameter of each track with respect to the
closest primary vertex. Lengths are in mm and momenta in GeV.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from trigml_lhcb.decays import FinalState
from trigml_lhcb.kinematics import four_vector

__all__ = [
    "FAR_AWAY_MM",
    "PION_MASS",
    "Conditions",
    "PrimaryVertices",
    "Tracks",
    "heavy_hadrons",
    "ip_resolution",
    "make_ghosts",
    "make_primary_vertices",
    "measure_tracks",
    "prompt_particles",
    "reconstructible",
    "soft_pt",
    "track_impact_parameters",
    "zero_truncated_poisson",
]

PION_MASS = 0.13957039
#: Coordinate given to empty primary-vertex slots, mm: far enough never to be chosen.
FAR_AWAY_MM = 1.0e6


@dataclass(frozen=True)
class Conditions:
    """Running conditions and detector parameters of the simulation.

    Attributes
    ----------
    pv_mean : float
        Mean number of visible primary vertices per event (Run 2 ≈ 1.7, Run 3 ≈ 5.6).
    charged_per_pv : float
        Mean number of charged particles in 2 < η < 5 per collision.
    charm_per_pv : float
        Probability that a collision makes a charm hadron decaying to ≥ 2 charged
        particles in the acceptance.
    b_per_pv : float
        Probability that a collision makes a b hadron in the acceptance.
    b_pt_mean : float
        Mean of the exponential b-hadron pT spectrum, GeV.
    charm_pt_mean : float
        Mean of the exponential charm-hadron pT spectrum, GeV.
    beam_spot_xy, beam_spot_z : float
        Gaussian width of the luminous region, mm.
    momentum_resolution : float
        Relative momentum resolution δp/p.
    track_efficiency : float
        Probability to reconstruct a charged particle in the acceptance.
    min_p : float
        Minimum momentum of a long track, GeV (it must cross the magnet).
    ip_tail_fraction, ip_tail_scale, ip_tail_soft : float
        Fraction of hard tracks whose impact-parameter error is ``ip_tail_scale``
        times the core resolution (hadronic interactions, decays in flight, wrong
        hits); the fraction grows as ``1 + ip_tail_soft · exp(-pT / 0.5 GeV)`` for
        soft tracks.
    chi2_tail_fraction : float
        Fraction of true tracks whose fit χ² is inflated by a factor 2.5.
    ghost_fraction : float
        Fraction of reconstructed tracks that are ghosts (wrong combinations of hits).
    """

    pv_mean: float = 1.7
    charged_per_pv: float = 18.0
    charm_per_pv: float = 0.10
    b_per_pv: float = 0.002
    b_pt_mean: float = 5.0
    charm_pt_mean: float = 2.0
    beam_spot_xy: float = 0.040
    beam_spot_z: float = 45.0
    momentum_resolution: float = 0.005
    track_efficiency: float = 0.96
    min_p: float = 2.0
    ip_tail_fraction: float = 0.03
    ip_tail_scale: float = 4.0
    ip_tail_soft: float = 4.0
    chi2_tail_fraction: float = 0.03
    ghost_fraction: float = 0.04


def ip_resolution(pt: np.ndarray) -> np.ndarray:
    """Impact-parameter resolution per transverse coordinate, mm, for pT in GeV."""
    return (15.0 + 29.0 / np.maximum(pt, 0.05)) * 1e-3


def zero_truncated_poisson(rng: np.random.Generator, mean: float, n: int) -> np.ndarray:
    """Poisson counts with mean parameter ``mean`` conditioned on being ≥ 1."""
    out = rng.poisson(mean, n)
    zero = out == 0
    while zero.any():
        out[zero] = rng.poisson(mean, int(zero.sum()))
        zero = out == 0
    return out


@dataclass
class PrimaryVertices:
    """Primary vertices of a batch, sorted by event.

    Attributes
    ----------
    event : ndarray, int64, shape (n_pv,)
    true : ndarray, float64, shape (n_pv, 3)
        True position, mm.
    measured : ndarray, float64, shape (n_pv, 3)
        Reconstructed position, mm.
    sigma : ndarray, float64, shape (n_pv, 3)
        Resolution per coordinate, mm.
    multiplicity : ndarray, int64, shape (n_pv,)
        Charged particles made by the collision in the acceptance.
    count : ndarray, int64, shape (n_events,)
        Primary vertices per event.
    first : ndarray, int64, shape (n_events,)
        Index of each event's first primary vertex in the table.
    """

    event: np.ndarray
    true: np.ndarray
    measured: np.ndarray
    sigma: np.ndarray
    multiplicity: np.ndarray
    count: np.ndarray
    first: np.ndarray

    def padded(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions and resolutions as (n_events, max_pv, 3) arrays.

        Empty slots sit :data:`FAR_AWAY_MM` from the beam so that no track or vertex
        is ever associated with them.
        """
        n_events = len(self.count)
        width = int(self.count.max()) if n_events else 0
        pos = np.full((n_events, width, 3), FAR_AWAY_MM)
        sig = np.ones((n_events, width, 3))
        slot = np.arange(len(self.event)) - self.first[self.event]
        pos[self.event, slot] = self.measured
        sig[self.event, slot] = self.sigma
        return pos, sig


def make_primary_vertices(
    rng: np.random.Generator, n_events: int, cond: Conditions
) -> PrimaryVertices:
    """Draw the primary vertices of ``n_events`` events (at least one each)."""
    count = zero_truncated_poisson(rng, cond.pv_mean, n_events)
    event = np.repeat(np.arange(n_events), count)
    first = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    n_pv = len(event)

    true = np.empty((n_pv, 3))
    true[:, :2] = rng.normal(0.0, cond.beam_spot_xy, (n_pv, 2))
    true[:, 2] = rng.normal(0.0, cond.beam_spot_z, n_pv)

    # Wide multiplicity fluctuations: negative binomial with shape 1.5.
    shape = 1.5
    mult = rng.negative_binomial(shape, shape / (shape + cond.charged_per_pv), n_pv)
    mult = np.maximum(mult, 2)

    # Resolution of a vertex fitted from n tracks: 60 µm / √n across, 300 µm / √n along.
    root_n = np.sqrt(mult)
    sigma = np.stack([0.060 / root_n, 0.060 / root_n, 0.300 / root_n], axis=1)
    measured = true + sigma * rng.standard_normal((n_pv, 3))
    return PrimaryVertices(event, true, measured, sigma, mult, count, first)


@lru_cache(maxsize=4)
def _soft_pt_table(temperature: float, power: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF table of dN/dpT ∝ pT (1 + pT/(n T))^-n on 0–40 GeV."""
    grid = np.concatenate(
        [np.linspace(0.0, 2.0, 2001), np.linspace(2.0, 40.0, 3801)[1:]]
    )
    density = grid * (1.0 + grid / (power * temperature)) ** (-power)
    cdf = np.concatenate(
        [[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))]
    )
    return cdf / cdf[-1], grid


def soft_pt(rng: np.random.Generator, n: int, min_pt: float = 0.0) -> np.ndarray:
    """pT of prompt charged particles, GeV: a Tsallis spectrum (T = 0.16, n = 7).

    Parameters
    ----------
    rng : numpy Generator
    n : int
    min_pt : float
        Draw only above this pT, GeV.
    """
    cdf, grid = _soft_pt_table(0.16, 7.0)
    lo = float(np.interp(min_pt, grid, cdf)) if min_pt > 0 else 0.0
    return np.interp(rng.uniform(lo, 1.0, n), cdf, grid)


def prompt_particles(rng: np.random.Generator, pvs: PrimaryVertices) -> FinalState:
    """Charged particles from every collision, flat in η over 2–5."""
    pv_of = np.repeat(np.arange(len(pvs.event)), pvs.multiplicity)
    n = len(pv_of)
    pt = soft_pt(rng, n)
    eta = rng.uniform(2.0, 5.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)

    # Species: 80% pions, 13% kaons, 7% protons.
    u = rng.random(n)
    mass = np.where(u < 0.80, PION_MASS, np.where(u < 0.93, 0.493677, 0.93827209))
    p4 = four_vector(pt, eta, phi, mass)
    return FinalState(
        event=pvs.event[pv_of],
        p3=p4[:, :3],
        mass=mass,
        charge=np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8),
        origin=pvs.true[pv_of],
        category=np.zeros(n, dtype=np.int8),
        ancestor=np.full(n, -1, dtype=np.int64),
    )


def heavy_hadrons(
    rng: np.random.Generator, n: int, mass: float, pt_mean: float
) -> np.ndarray:
    """Four-momenta of ``n`` heavy hadrons: pT ~ Exp(pt_mean), η flat in 2–5, GeV."""
    pt = rng.exponential(pt_mean, n)
    eta = rng.uniform(2.0, 5.0, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    return four_vector(pt, eta, phi, mass)


def reconstructible(
    rng: np.random.Generator, parts: FinalState, cond: Conditions
) -> np.ndarray:
    """Which particles become long tracks: 2 < η < 5, p > min_p, then the efficiency."""
    p = np.linalg.norm(parts.p3, axis=1)
    pt = np.hypot(parts.p3[:, 0], parts.p3[:, 1])
    eta = np.arcsinh(parts.p3[:, 2] / np.maximum(pt, 1e-12))
    accepted = (eta > 2.0) & (eta < 5.0) & (p > cond.min_p)
    return accepted & (rng.random(len(p)) < cond.track_efficiency)


def make_ghosts(
    rng: np.random.Generator,
    n_tracks: np.ndarray,
    pvs: PrimaryVertices,
    cond: Conditions,
) -> FinalState:
    """Ghost tracks: a VELO segment near a primary vertex matched to a wrong momentum.

    Parameters
    ----------
    n_tracks : ndarray, int64, shape (n_events,)
        True reconstructed tracks per event; ghosts come in proportion.
    """
    rate = cond.ghost_fraction / (1.0 - cond.ghost_fraction)
    per_event = rng.poisson(rate * n_tracks)
    event = np.repeat(np.arange(len(n_tracks)), per_event)
    n = len(event)

    # A random primary vertex of the event as the segment's origin.
    pv = pvs.first[event] + (rng.random(n) * pvs.count[event]).astype(np.int64)
    pt = soft_pt(rng, n) + rng.exponential(0.3, n)
    p4 = four_vector(pt, rng.uniform(2.0, 5.0, n), rng.uniform(-np.pi, np.pi, n), 0.0)
    return FinalState(
        event=event,
        p3=p4[:, :3],
        mass=np.full(n, PION_MASS),
        charge=np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8),
        origin=pvs.true[pv],
        category=np.full(n, 5, dtype=np.int8),
        ancestor=np.full(n, -1, dtype=np.int64),
    )


@dataclass
class Tracks:
    """Reconstructed tracks of a batch, sorted by event.

    Attributes
    ----------
    event : ndarray, int64
    p3 : ndarray, float64, shape (n, 3)
        Measured momentum, GeV.
    pt, eta, phi : ndarray, float64
        Measured kinematics, GeV and rad.
    charge : ndarray, int8
    point : ndarray, float64, shape (n, 3)
        A point of the measured trajectory near its origin, mm.
    direction : ndarray, float64, shape (n, 3)
        Unit vector along the measured trajectory.
    sigma : ndarray, float64
        Position resolution per transverse coordinate, mm.
    chi2ndof : ndarray, float64
        Track-fit χ² per degree of freedom.
    ndof : ndarray, int64
    category, ancestor : ndarray
        Truth, as in :class:`trigml_lhcb.decays.FinalState`.
    ip, ipchi2 : ndarray, float64
        Impact parameter (mm) and its χ² with respect to the primary vertex that gives
        the smallest χ²; filled by :func:`track_impact_parameters`.
    """

    event: np.ndarray
    p3: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    charge: np.ndarray
    point: np.ndarray
    direction: np.ndarray
    sigma: np.ndarray
    chi2ndof: np.ndarray
    ndof: np.ndarray
    category: np.ndarray
    ancestor: np.ndarray
    ip: np.ndarray
    ipchi2: np.ndarray

    def __len__(self) -> int:
        return len(self.event)


def measure_tracks(
    rng: np.random.Generator, parts: FinalState, cond: Conditions
) -> Tracks:
    """Smear reconstructed particles into tracks (momentum, position, fit χ²)."""
    n = len(parts)
    p_true = np.linalg.norm(parts.p3, axis=1)
    pt_true = np.hypot(parts.p3[:, 0], parts.p3[:, 1])
    direction = parts.p3 / np.maximum(p_true, 1e-12)[:, None]
    ghost = parts.category == 5

    smear = 1.0 + cond.momentum_resolution * rng.standard_normal(n)
    p3 = parts.p3 * smear[:, None]
    pt = pt_true * smear

    # Position error at the origin: core resolution, tails (more frequent for soft
    # tracks, which scatter more in the material) and wide ghosts.
    sigma = ip_resolution(pt_true)
    tail = cond.ip_tail_fraction * (1.0 + cond.ip_tail_soft * np.exp(-pt_true / 0.5))
    scale = np.where(rng.random(n) < tail, cond.ip_tail_scale, 1.0)
    scale = np.where(ghost, 3.0 * scale, scale)
    point = parts.origin.copy()
    point[:, :2] += (sigma * scale)[:, None] * rng.standard_normal((n, 2))

    ndof = rng.integers(12, 41, n)
    chi2ndof = rng.chisquare(ndof) / ndof
    chi2ndof *= np.where(rng.random(n) < cond.chi2_tail_fraction, 2.5, 1.0)
    chi2ndof *= np.where(ghost, rng.uniform(1.0, 4.0, n), 1.0)

    return Tracks(
        event=parts.event,
        p3=p3,
        pt=pt,
        eta=np.arcsinh(p3[:, 2] / np.maximum(pt, 1e-12)),
        phi=np.arctan2(p3[:, 1], p3[:, 0]),
        charge=parts.charge,
        point=point,
        direction=direction,
        sigma=sigma,
        chi2ndof=chi2ndof,
        ndof=ndof,
        category=parts.category,
        ancestor=parts.ancestor,
        ip=np.zeros(n),
        ipchi2=np.zeros(n),
    )


def track_impact_parameters(
    tracks: Tracks, pv_pos: np.ndarray, pv_sig: np.ndarray, pv_count: np.ndarray
) -> None:
    """Fill ``tracks.ip`` and ``tracks.ipchi2`` with respect to the best primary vertex.

    The best vertex is the one giving the smallest IP χ²; the χ² adds the track's
    position resolution and the vertex's transverse resolution in quadrature.

    Parameters
    ----------
    tracks : Tracks
    pv_pos, pv_sig : ndarray, float64, shape (n_events, max_pv, 3)
        From :meth:`PrimaryVertices.padded`.
    pv_count : ndarray, int64, shape (n_events,)
        Primary vertices per event.
    """
    n = len(tracks)
    best = np.full(n, np.inf)
    best_ip = np.zeros(n)
    var = tracks.sigma**2
    n_pv = pv_count[tracks.event]
    for slot in range(pv_pos.shape[1]):
        rows = np.flatnonzero(n_pv > slot)
        ev = tracks.event[rows]
        delta = pv_pos[ev, slot] - tracks.point[rows]
        d = tracks.direction[rows]
        along = (delta * d).sum(axis=1)
        perp = delta - along[:, None] * d
        ip2 = (perp * perp).sum(axis=1)
        chi2 = ip2 / (var[rows] + pv_sig[ev, slot, 0] ** 2)
        better = chi2 < best[rows]
        best[rows[better]] = chi2[better]
        best_ip[rows[better]] = np.sqrt(ip2[better])
    tracks.ip = best_ip
    tracks.ipchi2 = best
