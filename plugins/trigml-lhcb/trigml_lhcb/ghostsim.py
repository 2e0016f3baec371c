"""Simulated long tracks of the LHCb HLT1 for the ghost-track classifier.

True tracks have a fit χ²/ndof distributed as χ²(ndof)/ndof and consistent VELO, UT
and SciFi measurements. Ghosts are wrong combinations of hits: a real VELO segment
matched to the SciFi seed of another particle (mismatch), a seed made of random SciFi
hits (fake seed), or a VELO segment made of random hits (fake VELO). They have inflated
matching χ², residuals and slopes at the matching plane, inconsistent momentum
estimates and unusual hit counts. The ghost fraction rises with occupancy from about 5%
in quiet events to about 25% in busy ones, and busy events also make ghosts harder to
tell from true tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from trigml_lhcb.detector import soft_pt, zero_truncated_poisson

__all__ = [
    "GHOST_FEATURES",
    "GhostConditions",
    "ghost_fraction",
    "simulate_ghost",
]

#: Track features of the ghost classifier, in model order.
GHOST_FEATURES = (
    "pt",
    "chi2ndof",
    "first_qop",
    "n_scifi_hits",
    "n_velo_hits",
    "ndof",
    "pr_quality",
    "qop",
    "match_chi2",
    "dx",
    "dy",
    "dtx",
    "dty",
    "seed_chi2",
)


@dataclass(frozen=True)
class GhostConditions:
    """Parameters of the ghost simulation.

    Attributes
    ----------
    pv_mean : float
        Mean number of primary vertices (Run 3: about 5.6).
    tracks_per_pv : float
        Mean number of true long tracks per collision.
    ghost_low, ghost_high : float
        Ghost fraction in the quietest and the busiest events.
    occupancy_low, occupancy_high : float
        True long tracks per event at which the ghost fraction is ``ghost_low`` and
        ``ghost_high``; it is linear in between and constant outside.
    min_pt : float
        Lowest reconstructed pT, GeV.
    """

    pv_mean: float = 5.6
    tracks_per_pv: float = 18.0
    ghost_low: float = 0.05
    ghost_high: float = 0.25
    occupancy_low: float = 20.0
    occupancy_high: float = 200.0
    min_pt: float = 0.3


def _busy(n_true: np.ndarray, cond: GhostConditions) -> np.ndarray:
    """Occupancy scaled to [0, 1] between ``occupancy_low`` and ``occupancy_high``."""
    span = cond.occupancy_high - cond.occupancy_low
    return np.clip((n_true - cond.occupancy_low) / span, 0.0, 1.0)


def ghost_fraction(
    n_true: np.ndarray, cond: GhostConditions | None = None
) -> np.ndarray:
    """Expected fraction of ghosts among reconstructed tracks at a given occupancy.

    Parameters
    ----------
    n_true : ndarray
        True long tracks per event.
    """
    cond = cond or GhostConditions()
    return cond.ghost_low + (cond.ghost_high - cond.ghost_low) * _busy(n_true, cond)


def simulate_ghost(
    n_events: int,
    rng: np.random.Generator,
    *,
    conditions: GhostConditions | None = None,
    first_event: int = 0,
) -> ak.Array:
    """Generate events whose ``tracks`` carry the ghost-classifier features.

    Parameters
    ----------
    n_events : int
    rng : numpy Generator
    conditions : GhostConditions, optional
    first_event : int
        Global number of the first event, stored in ``event_id``.

    Returns
    -------
    ak.Array
        Records with ``event_id``, ``nPV``, ``n_true``, ``occupancy`` (all
        reconstructed tracks), ``ghost_rate`` (the expected ghost fraction) and the
        jagged ``tracks`` (features of :data:`GHOST_FEATURES` plus ``eta``,
        ``is_ghost`` and ``ghost_type``: 0 true, 1 mismatch, 2 fake seed, 3 fake VELO).
    """
    cond = conditions or GhostConditions()
    n_pv = zero_truncated_poisson(rng, cond.pv_mean, n_events)
    n_true = rng.poisson(cond.tracks_per_pv * n_pv)
    frac = ghost_fraction(n_true, cond)
    n_ghost = rng.poisson(n_true * frac / (1.0 - frac))
    total = n_true + n_ghost

    # Flat track table, sorted by event, ghosts shuffled among true tracks.
    event = np.repeat(np.arange(n_events), total)
    first = np.concatenate([[0], np.cumsum(total)[:-1]])
    slot = np.arange(len(event)) - first[event]
    order = np.lexsort((rng.random(len(event)), event))
    is_ghost = (slot < n_ghost[event])[order]
    busy = _busy(n_true, cond)[event]

    tracks = _features(rng, is_ghost, busy, cond)
    counts = np.bincount(event, minlength=n_events)
    n_ghost_real = np.bincount(event, weights=is_ghost, minlength=n_events)

    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    record = ak.contents.RecordArray(
        [ak.contents.NumpyArray(v) for v in tracks.values()], list(tracks)
    )
    jagged = ak.contents.ListOffsetArray(ak.index.Index64(offsets), record)
    fields = {
        "event_id": np.arange(first_event, first_event + n_events, dtype=np.int64),
        "nPV": n_pv.astype(np.int32),
        "n_true": (counts - n_ghost_real).astype(np.int32),
        "occupancy": counts.astype(np.int32),
        "ghost_rate": frac.astype(np.float32),
    }
    contents = [ak.contents.NumpyArray(v) for v in fields.values()] + [jagged]
    return ak.Array(
        ak.contents.RecordArray(contents, [*fields, "tracks"], length=n_events)
    )


def _features(
    rng: np.random.Generator,
    is_ghost: np.ndarray,
    busy: np.ndarray,
    cond: GhostConditions,
) -> dict[str, np.ndarray]:
    """Per-track features of true tracks and the three kinds of ghosts."""
    n = len(is_ghost)
    kind = np.where(
        is_ghost, 1 + np.searchsorted([0.6, 0.85], rng.random(n), side="right"), 0
    ).astype(np.int8)
    fake_seed, fake_velo = kind == 2, kind == 3
    # Ghosts of busy events look more like true tracks: inflation shrinks by half.
    soften = 1.0 - 0.5 * busy

    # Kinematics. A ghost's momentum comes from a seed of another particle.
    eta = rng.uniform(2.0, 5.0, n)
    pt = soft_pt(rng, n, cond.min_pt)
    pt = np.where(
        is_ghost, np.maximum(pt * rng.lognormal(0.0, 0.5, n), cond.min_pt), pt
    )
    charge = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    p = pt * np.cosh(eta)
    qop = charge / p

    # The VELO-UT estimate of q/p has a 15% resolution. The forward tracking looks
    # for SciFi hits in a window around it, so a ghost's momentum agrees with it only
    # loosely (35%), and one time in five the charge is wrong.
    first_qop = qop * (1.0 + 0.15 * rng.standard_normal(n))
    loose = qop * (1.0 + 0.35 * rng.standard_normal(n))
    loose *= np.where(rng.random(n) < 0.2, -1.0, 1.0)
    first_qop = np.where(is_ghost, loose, first_qop)

    # Hit counts: 26 VELO stations (fewer for tracks near the edges), 12 SciFi
    # layers of which at least 9 are used.
    short = rng.random(n) < 0.15
    n_velo = np.where(short, 3 + rng.binomial(8, 0.6, n), 3 + rng.binomial(14, 0.75, n))
    n_velo = np.where(fake_velo, 3 + rng.binomial(8, 0.45, n), n_velo)
    n_scifi = np.clip(rng.binomial(12, 0.98, n), 9, 12)
    n_scifi = np.where(fake_seed, 9 + rng.binomial(3, 0.5, n), n_scifi)
    ndof = 2 * n_velo + n_scifi - 5

    # Fit quality, inflated for ghosts.
    chi2ndof = rng.chisquare(ndof) / ndof * (1.0 + 0.1 * busy)
    chi2ndof *= np.where(rng.random(n) < 0.02, 2.0, 1.0)
    inflate = 1.0 + soften * rng.exponential(0.5, n)
    chi2ndof = np.where(is_ghost, chi2ndof * inflate, chi2ndof)

    seed_ndof = n_scifi - 4
    seed_chi2 = rng.chisquare(seed_ndof) / seed_ndof
    seed_chi2 = np.where(
        fake_seed, seed_chi2 * (1.0 + soften * rng.exponential(0.8, n)), seed_chi2
    )
    pr_quality = rng.gamma(2.0, 0.5, n)
    pr_quality = np.where(
        is_ghost, pr_quality * (1.0 + soften * rng.exponential(0.5, n)), pr_quality
    )

    # Matching of the VELO segment to the SciFi seed behind the magnet.
    sx = 2.0 + 20.0 / p
    sy = 1.0 + 8.0 / p
    st = 0.002 + 0.02 / p
    spread = np.where(is_ghost, 1.0 + soften * rng.exponential(1.8, n), 1.0)
    dx = sx * spread * rng.standard_normal(n)
    dy = sy * spread * rng.standard_normal(n)
    dtx = st * spread * rng.standard_normal(n)
    dty = st * spread * rng.standard_normal(n)
    match_chi2 = (dx / sx) ** 2 + (dy / sy) ** 2 + (dtx / st) ** 2 + (dty / st) ** 2

    f32 = np.float32
    return {
        "pt": pt.astype(f32),
        "eta": eta.astype(f32),
        "chi2ndof": chi2ndof.astype(f32),
        "first_qop": first_qop.astype(f32),
        "n_scifi_hits": n_scifi.astype(np.int16),
        "n_velo_hits": n_velo.astype(np.int16),
        "ndof": ndof.astype(np.int16),
        "pr_quality": pr_quality.astype(f32),
        "qop": qop.astype(f32),
        "match_chi2": match_chi2.astype(f32),
        "dx": dx.astype(f32),
        "dy": dy.astype(f32),
        "dtx": dtx.astype(f32),
        "dty": dty.astype(f32),
        "seed_chi2": seed_chi2.astype(f32),
        "is_ghost": is_ghost,
        "ghost_type": kind,
    }
