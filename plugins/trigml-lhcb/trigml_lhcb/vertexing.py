"""Secondary-vertex candidates of the topological trigger, built from displaced tracks.

Displaced, well-fitted tracks are combined into pairs, triples and quads within each
event; each combination gets a least-squares vertex, the topological features (ΣpT, min
pT, mass, corrected mass, DOCA, vertex χ², IP χ², FD χ², tracks with IP χ² > 16, η) with
respect to its best primary vertex, and a loose preselection. Everything is done on
flat arrays: combinations come from precomputed index tables, one per track count.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np

from trigml_lhcb.detector import PION_MASS, Tracks

__all__ = [
    "SV_FIELDS",
    "SVCuts",
    "build_secondary_vertices",
]

#: Fields of the secondary-vertex table, in output order.
SV_FIELDS = (
    "n_tracks",
    "sumpt",
    "minpt",
    "mass",
    "mcorr",
    "doca",
    "vchi2",
    "ipchi2",
    "fdchi2",
    "n_ipchi2_gt16",
    "eta",
    "pt",
    "fd",
    "dira",
    "truth",
    "from_signal",
)


@dataclass(frozen=True)
class SVCuts:
    """Track selection and loose vertex preselection of the topological candidates.

    Attributes
    ----------
    track_min_pt : float
        GeV.
    track_min_ipchi2 : float
    track_max_chi2ndof : float
    max_tracks : int
        At most this many selected tracks per event (highest pT first) are combined.
    body_counts : tuple of int
        Numbers of tracks per candidate, from 2 to 4.
    max_doca : float
        Largest distance of closest approach between any two tracks, mm.
    max_vchi2ndof : float
        Vertex χ² per degree of freedom (ndof = 2n - 3).
    min_fdchi2 : float
        Flight-distance χ² from the best primary vertex.
    min_dira : float
        Cosine of the angle between momentum and flight direction.
    eta_range : tuple of float
    max_mass : float
        GeV, with the pion mass for every track.
    """

    track_min_pt: float = 0.25
    track_min_ipchi2: float = 4.0
    track_max_chi2ndof: float = 3.0
    max_tracks: int = 10
    body_counts: tuple[int, ...] = (2, 3, 4)
    max_doca: float = 0.2
    max_vchi2ndof: float = 10.0
    min_fdchi2: float = 16.0
    min_dira: float = 0.0
    eta_range: tuple[float, float] = (2.0, 5.0)
    max_mass: float = 10.0


@lru_cache(maxsize=64)
def _index_table(k: int, n_body: int) -> np.ndarray:
    """All ``n_body``-subsets of ``range(k)``, shape (n_comb, n_body)."""
    rows = list(combinations(range(k), n_body))
    return np.array(rows, dtype=np.int64).reshape(len(rows), n_body)


def _selected_tracks(tracks: Tracks, n_events: int, cuts: SVCuts) -> np.ndarray:
    """Indices of the tracks to combine, grouped by event, highest pT first."""
    ok = (
        (tracks.pt > cuts.track_min_pt)
        & (tracks.ipchi2 > cuts.track_min_ipchi2)
        & (tracks.chi2ndof < cuts.track_max_chi2ndof)
    )
    idx = np.flatnonzero(ok)
    order = np.lexsort((-tracks.pt[idx], tracks.event[idx]))
    idx = idx[order]
    ev = tracks.event[idx]
    count = np.bincount(ev, minlength=n_events)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    rank = np.arange(len(idx)) - first[ev]
    return idx[rank < cuts.max_tracks]


def _combinations(
    sel: np.ndarray, event: np.ndarray, n_events: int, n_body: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ``n_body`` combination of the selected tracks of each event.

    Returns
    -------
    idx : ndarray, int64, shape (n_comb, n_body)
        Track indices.
    rank : ndarray, int64, shape (n_comb, n_body)
        Position of each track among the event's selected tracks.
    event : ndarray, int64, shape (n_comb,)
    """
    count = np.bincount(event, minlength=n_events)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    rows: list[np.ndarray] = []
    ranks: list[np.ndarray] = []
    events: list[np.ndarray] = []
    for k in range(n_body, int(count.max(initial=0)) + 1):
        evs = np.flatnonzero(count == k)
        if len(evs) == 0:
            continue
        table = _index_table(k, n_body)
        pos = first[evs][:, None, None] + table[None]
        rows.append(sel[pos.reshape(-1, n_body)])
        ranks.append(np.broadcast_to(table, pos.shape).reshape(-1, n_body))
        events.append(np.repeat(evs, len(table)))
    if not rows:
        empty = np.zeros((0, n_body), np.int64)
        return empty, empty, np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(ranks), np.concatenate(events)


def _pair_doca(points: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Distance of closest approach of two straight tracks, mm.

    Parameters
    ----------
    points, dirs : ndarray, shape (n, 2, 3)
        A point (mm) and the unit direction of each track.
    """
    d0, d1 = dirs[:, 0], dirs[:, 1]
    cross = np.stack(
        [
            d0[:, 1] * d1[:, 2] - d0[:, 2] * d1[:, 1],
            d0[:, 2] * d1[:, 0] - d0[:, 0] * d1[:, 2],
            d0[:, 0] * d1[:, 1] - d0[:, 1] * d1[:, 0],
        ],
        axis=1,
    )
    norm = np.sqrt((cross * cross).sum(axis=1))
    sep = points[:, 1] - points[:, 0]
    dist = np.abs((sep * cross).sum(axis=1)) / np.maximum(norm, 1e-12)

    # Nearly parallel tracks: distance of one line from a point of the other.
    along = (sep * d0).sum(axis=1)
    perp = sep - along[:, None] * d0
    parallel = np.sqrt((perp * perp).sum(axis=1))
    return np.where(norm > 1e-9, dist, parallel)


def _fit_vertices(
    points: np.ndarray, dirs: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares vertex of straight tracks.

    Minimises Σ w_i d_i², d_i the perpendicular distance of the vertex to track i.

    Parameters
    ----------
    points, dirs : ndarray, shape (n, k, 3)
        A point (mm) and the unit direction of each of k tracks.
    weight : ndarray, shape (n, k)
        Inverse variance of each track's transverse position, mm⁻².

    Returns
    -------
    vertex : (n, 3) mm
    cov : (n, 3, 3) mm²
    chi2 : (n,)
    """
    a = -np.einsum("nk,nki,nkj->nij", weight, dirs, dirs)
    a[:, [0, 1, 2], [0, 1, 2]] += weight.sum(axis=1)[:, None]
    along = (points * dirs).sum(axis=2)
    b = (weight[..., None] * (points - along[..., None] * dirs)).sum(axis=1)
    cov = np.linalg.inv(a)
    vertex = np.einsum("nij,nj->ni", cov, b)
    sep = vertex[:, None, :] - points
    resid = sep - (sep * dirs).sum(axis=2)[..., None] * dirs
    chi2 = (weight * (resid * resid).sum(axis=2)).sum(axis=1)
    return vertex, cov, chi2


def build_secondary_vertices(
    tracks: Tracks,
    n_events: int,
    pv_pos: np.ndarray,
    pv_sig: np.ndarray,
    cuts: SVCuts,
    pv_count: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Build the preselected candidates of every event.

    Parameters
    ----------
    tracks : Tracks
        Reconstructed tracks with their IP χ² filled, sorted by event.
    n_events : int
    pv_pos, pv_sig : ndarray, float64, shape (n_events, max_pv, 3)
        Padded primary-vertex positions and resolutions, mm.
    cuts : SVCuts
    pv_count : ndarray, int64, shape (n_events,), optional
        Primary vertices per event; speeds up the vertex association.

    Returns
    -------
    dict of str to ndarray
        ``event`` (int64) and the columns of :data:`SV_FIELDS`, one row per candidate,
        sorted by event.
    """
    if pv_count is None:
        pv_count = np.full(n_events, pv_pos.shape[1], dtype=np.int64)
    sel = _selected_tracks(tracks, n_events, cuts)
    sel_event = tracks.event[sel]

    # DOCA of every pair once; larger combinations look their pairs up.
    width = cuts.max_tracks
    pair_idx, pair_rank, pair_event = _combinations(sel, sel_event, n_events, 2)
    pair_table = np.full((n_events, width, width), np.inf, dtype=np.float32)
    pair_doca = _pair_doca(tracks.point[pair_idx], tracks.direction[pair_idx])
    pair_table[pair_event, pair_rank[:, 0], pair_rank[:, 1]] = pair_doca

    parts = []
    for n_body in sorted(set(cuts.body_counts)):
        if n_body == 2:
            idx, event, doca = pair_idx, pair_event, pair_doca
        else:
            idx, rank, event = _combinations(sel, sel_event, n_events, n_body)
            doca = np.zeros(len(idx))
            for i, j in combinations(range(n_body), 2):
                doca = np.maximum(doca, pair_table[event, rank[:, i], rank[:, j]])
        keep = doca < cuts.max_doca
        parts.append(
            _candidates(
                tracks,
                idx[keep],
                event[keep],
                doca[keep],
                pv_pos,
                pv_sig,
                pv_count,
                cuts,
            )
        )
    table = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(table["event"], kind="stable")
    return {k: v[order] for k, v in table.items()}


def _candidates(
    tracks: Tracks,
    idx: np.ndarray,
    event: np.ndarray,
    doca: np.ndarray,
    pv_pos: np.ndarray,
    pv_sig: np.ndarray,
    pv_count: np.ndarray,
    cuts: SVCuts,
) -> dict[str, np.ndarray]:
    """Fit, compute the features of and preselect combinations of ``n_body`` tracks."""
    n_body = idx.shape[1]
    points = tracks.point[idx]
    dirs = tracks.direction[idx]
    weight = 1.0 / tracks.sigma[idx] ** 2
    vertex, cov, vchi2 = _fit_vertices(points, dirs, weight)

    p3 = tracks.p3[idx]
    mom = p3.sum(axis=1)
    energy = np.sqrt((p3 * p3).sum(axis=2) + PION_MASS**2).sum(axis=1)
    p2 = (mom * mom).sum(axis=1)
    mass = np.sqrt(np.clip(energy**2 - p2, 0.0, None))
    pt = np.hypot(mom[:, 0], mom[:, 1])
    eta = np.arcsinh(mom[:, 2] / np.maximum(pt, 1e-12))
    unit = mom / np.sqrt(p2)[:, None]

    ipchi2, delta, pv_var = _best_pv(vertex, cov, unit, event, pv_pos, pv_sig, pv_count)
    total_cov = cov.copy()
    total_cov[:, [0, 1, 2], [0, 1, 2]] += pv_var
    fdchi2 = (delta * np.linalg.solve(total_cov, delta[..., None])[..., 0]).sum(axis=1)
    fd = np.sqrt((delta * delta).sum(axis=1))
    flight = delta / np.maximum(fd, 1e-12)[:, None]
    dira = (flight * unit).sum(axis=1)
    p_along = (mom * flight).sum(axis=1)
    p_perp = np.sqrt(np.clip(p2 - p_along**2, 0.0, None))
    mcorr = np.sqrt(mass**2 + p_perp**2) + p_perp

    trk_pt = tracks.pt[idx]
    anc = tracks.ancestor[idx]
    cat = tracks.category[idx]
    same = (anc == anc[:, :1]).all(axis=1) & (anc[:, 0] >= 0)
    truth = np.where(same, cat[:, 0], np.where((anc >= 0).any(axis=1), 4, 0))

    ndof = 2 * n_body - 3
    presel = (
        (vchi2 / ndof < cuts.max_vchi2ndof)
        & (fdchi2 > cuts.min_fdchi2)
        & (dira > cuts.min_dira)
        & (eta > cuts.eta_range[0])
        & (eta < cuts.eta_range[1])
        & (mass < cuts.max_mass)
    )
    columns = {
        "event": event,
        "n_tracks": np.full(len(event), n_body, dtype=np.int8),
        "sumpt": trk_pt.sum(axis=1),
        "minpt": trk_pt.min(axis=1),
        "mass": mass,
        "mcorr": mcorr,
        "doca": doca,
        "vchi2": vchi2,
        "ipchi2": ipchi2,
        "fdchi2": fdchi2,
        "n_ipchi2_gt16": (tracks.ipchi2[idx] > 16.0).sum(axis=1).astype(np.int8),
        "eta": eta,
        "pt": pt,
        "fd": fd,
        "dira": dira,
        "truth": truth.astype(np.int8),
        "from_signal": truth == 1,
    }
    return {k: v[presel] for k, v in columns.items()}


def _best_pv(
    vertex: np.ndarray,
    cov: np.ndarray,
    unit: np.ndarray,
    event: np.ndarray,
    pv_pos: np.ndarray,
    pv_sig: np.ndarray,
    pv_count: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IP χ² to the primary vertex that minimises it, the flight vector and PV variance.

    Returns
    -------
    ipchi2 : (n,)
    delta : (n, 3)
        Vertex minus best primary vertex, mm.
    pv_var : (n, 3)
        Variance of the best primary vertex per coordinate, mm².
    """
    n = len(vertex)
    best = np.full(n, np.inf)
    best_slot = np.zeros(n, dtype=np.int64)
    n_pv = pv_count[event]
    for slot in range(pv_pos.shape[1]):
        rows = np.flatnonzero(n_pv > slot)
        ev = event[rows]
        delta = vertex[rows] - pv_pos[ev, slot]
        u = unit[rows]
        along = (delta * u).sum(axis=1)
        perp = delta - along[:, None] * u
        ip2 = (perp * perp).sum(axis=1)
        normal = perp / np.sqrt(np.maximum(ip2, 1e-30))[:, None]
        var = np.einsum("ni,nij,nj->n", normal, cov[rows], normal)
        var += (normal**2 * pv_sig[ev, slot] ** 2).sum(axis=1)
        chi2 = ip2 / var
        better = chi2 < best[rows]
        best[rows[better]] = chi2[better]
        best_slot[rows[better]] = slot
    return best, vertex - pv_pos[event, best_slot], pv_sig[event, best_slot] ** 2
