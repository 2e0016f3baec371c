"""Simulation of jets for b-tagging: tracks, impact parameters and secondary vertices.

Each event holds one jet of flavour b (one B hadron), bb (two, from gluon splitting),
c (one D hadron) or light. A B hadron takes about 70% of the jet momentum, flies
βγ·cτ (cτ ≈ 470 µm) and decays into a few charged particles and a D hadron, which flies
on and decays in turn; c jets carry a D hadron. Every jet also has fragmentation tracks
from the primary vertex, K_S and Λ decays, and now and then a nuclear interaction in
the beam pipe or a pixel layer. Tracks are straight lines smeared with a pT-dependent
impact-parameter resolution (with a non-Gaussian tail) and selected as CMS b-tagging
does (pT > 1 GeV, ΔR < 0.3, distance to the jet axis < 0.07 cm, decay length < 5 cm,
|IP| < 0.2 cm). A toy inclusive vertex finder keeps at most one secondary vertex per
jet. Lengths are in cm, momenta in GeV.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import awkward as ak
import numpy as np
from pydantic import Field, model_validator

from trigml.components import Batch, Source
from trigml.registry import Params
from trigml.schema.events import CollectionSpec, EventSchema, FieldSpec
from trigml_cms._stream import generate, project, stream

__all__ = [
    "FLAVOURS",
    "ORIGINS",
    "BtagSimParams",
    "BtagSimSource",
    "FlavourMix",
    "btag_event_schema",
    "simulate_btag",
]

#: Truth flavour codes of the ``flavour`` field.
FLAVOURS = ("b", "bb", "c", "light")
#: Truth origin codes of ``tracks.origin``.
ORIGINS = ("fragmentation", "b_decay", "c_decay", "v0", "material")

_M_PI = 0.1396
_M_B, _CTAU_B = 5.279, 0.0470
_M_D = 1.870
# D hadrons: (fraction, cτ in cm): D0, D+, Ds.
_D_SPECIES = ((0.6, 0.0123), (0.25, 0.0312), (0.15, 0.0150))
_M_KS, _CTAU_KS, _PSTAR_KS = 0.4976, 2.684, 0.206
_M_LAMBDA, _CTAU_LAMBDA, _PSTAR_LAMBDA = 1.1157, 7.89, 0.101
_PIXEL_RADII = np.array([2.2, 4.3, 7.2, 11.0])
# Track selection of the b-tagging inputs.
_SEL_PT, _SEL_DR, _SEL_JETDIST, _SEL_DECAYLEN, _SEL_IP = 1.0, 0.3, 0.07, 5.0, 0.2
# Impact-parameter resolution: sqrt(a² + (b/pT)²), cm; a tail of badly measured tracks.
_RES_D0 = (0.0015, 0.0060)
_RES_Z = (0.0025, 0.0090)
_TAIL_FRACTION, _TAIL_FACTOR = 0.03, 4.0
# Track-finding efficiency: at the beam line, and its fall-off radius (cm).
_TRACK_EFF, _TRACK_EFF_RADIUS = 0.93, 15.0
# Vertex finding: position resolution (cm) and the efficiency of the fit.
_SV_SIGMA_XY, _SV_SIGMA_Z, _SV_FIT_EFF = 0.005, 0.010, 0.95
_FAKE_SV_PROB = 0.75

Rng = np.random.Generator
Arrays = dict[str, np.ndarray]


class FlavourMix(Params):
    """Fractions of jet flavours (normalised to their sum)."""

    b: float = Field(0.30, ge=0.0)
    bb: float = Field(0.05, ge=0.0)
    c: float = Field(0.20, ge=0.0)
    light: float = Field(0.45, ge=0.0)

    @model_validator(mode="after")
    def _positive(self) -> FlavourMix:
        if self.b + self.bb + self.c + self.light <= 0.0:
            raise ValueError("at least one flavour fraction must be > 0")
        return self

    def fractions(self) -> np.ndarray:
        f = np.array([self.b, self.bb, self.c, self.light])
        return f / f.sum()


class BtagSimParams(Params):
    """Parameters of the ``cms.btag_sim`` source.

    Attributes
    ----------
    n_events : int
        Jets to simulate (one per event).
    seed : int
    batch_size : int
    composition : FlavourMix
        Flavour fractions.
    pt_min, pt_max : float
        Jet pT range, GeV; dN/dpT ∝ pT^-pt_slope.
    pt_slope : float
    max_tracks : int
        Selected tracks kept per jet (the highest-pT ones).
    """

    n_events: int = Field(200_000, gt=0)
    seed: int = 1
    batch_size: int = Field(100_000, gt=0)
    composition: FlavourMix = Field(default_factory=FlavourMix)
    pt_min: float = Field(30.0, gt=5.0)
    pt_max: float = Field(1000.0, gt=10.0)
    pt_slope: float = Field(2.5, gt=1.0)
    max_tracks: int = Field(20, ge=6, le=100)

    @model_validator(mode="after")
    def _range(self) -> BtagSimParams:
        if self.pt_max <= self.pt_min:
            raise ValueError(
                f"pt_max ({self.pt_max}) must exceed pt_min ({self.pt_min})"
            )
        return self


# -- geometry --------------------------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rotate(axis: np.ndarray, angle: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """Unit vectors at ``angle`` to ``axis`` (n, 3), turned by ``azimuth`` around it."""
    ref = np.zeros_like(axis)
    near_z = np.abs(axis[:, 2]) > 0.9
    ref[near_z, 0] = 1.0
    ref[~near_z, 2] = 1.0
    u = _unit(np.cross(axis, ref))
    v = np.cross(axis, u)
    ca, sa = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return ca * axis + sa * (
        np.cos(azimuth)[:, None] * u + np.sin(azimuth)[:, None] * v
    )


def _eta_phi(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pt = np.hypot(v[:, 0], v[:, 1])
    return np.arcsinh(v[:, 2] / pt), np.arctan2(v[:, 1], v[:, 0])


def _direction(eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    theta = 2.0 * np.arctan(np.exp(-eta))
    st = np.sin(theta)
    return np.stack([st * np.cos(phi), st * np.sin(phi), np.cos(theta)], axis=1)


# -- particles -------------------------------------------------------------------------


class _Particles:
    """Flat arrays of charged particles of a block, appended category by category."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {
            k: [] for k in ("jet", "vertex", "dir", "p", "origin", "group")
        }

    def add(
        self,
        jet: np.ndarray,
        vertex: np.ndarray,
        direction: np.ndarray,
        p: np.ndarray,
        origin: int,
        group: np.ndarray,
    ) -> None:
        for key, value in zip(
            ("jet", "vertex", "dir", "p", "origin", "group"),
            (jet, vertex, direction, p, np.full(len(jet), origin, np.int8), group),
        ):
            self.parts[key].append(value)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {k: np.concatenate(v) for k, v in self.parts.items()}
        order = np.argsort(out["jet"], kind="stable")
        return {k: v[order] for k, v in out.items()}


def _decay(
    rng: np.random.Generator,
    parent_p: np.ndarray,
    parent_dir: np.ndarray,
    mass: float | np.ndarray,
    e_star: np.ndarray,
    m_child: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Lab momentum and direction of children emitted isotropically in the rest frame.

    Parameters
    ----------
    parent_p : ndarray
        Parent momentum per child, GeV.
    parent_dir : ndarray (n, 3)
    mass : float or ndarray
        Parent mass, GeV.
    e_star : ndarray
        Child energy in the parent rest frame, GeV.
    m_child : float
    """
    n = len(parent_p)
    e_star = np.maximum(e_star, m_child + 0.01)
    p_star = np.sqrt(e_star**2 - m_child**2)
    cos_t = rng.uniform(-1.0, 1.0, n)
    bg = parent_p / mass
    gamma = np.sqrt(1.0 + bg**2)
    p_long = gamma * p_star * cos_t + bg * e_star
    p_trans = p_star * np.sqrt(1.0 - cos_t**2)
    angle = np.arctan2(p_trans, p_long)
    direction = _rotate(parent_dir, angle, rng.uniform(0, 2 * np.pi, n))
    return np.hypot(p_long, p_trans), direction


def _shares(
    rng: np.random.Generator, owner: np.ndarray, n_owners: int, alpha: float
) -> np.ndarray:
    """Dirichlet-like shares of each owner's total among its members."""
    g = rng.gamma(alpha, size=len(owner))
    total = np.bincount(owner, weights=g, minlength=n_owners)
    return g / total[owner]


def _fragmentation(rng: Rng, jets: Arrays, out: _Particles, group0: int) -> None:
    n_jets = len(jets["pt"])
    mean = np.where(jets["flavour"] <= 1, 2.0, 3.0) + 2.5 * np.log(jets["pt"] / 20.0)
    count = rng.poisson(np.maximum(mean, 0.5))
    jet = np.repeat(np.arange(n_jets), count)
    p_rest = jets["p"] * (1.0 - jets["x_heavy"]) * 0.65
    p = p_rest[jet] * _shares(rng, jet, n_jets, 0.6)
    angle = np.minimum(rng.exponential(0.6, len(jet)) / np.maximum(p, 0.1), 0.6)
    direction = _rotate(jets["axis"][jet], angle, rng.uniform(0, 2 * np.pi, len(jet)))
    out.add(jet, np.zeros((len(jet), 3)), direction, p, 0, np.full(len(jet), group0))


def _heavy_hadrons(rng: Rng, jets: Arrays) -> Arrays:
    """B hadrons (b, bb jets) and D hadrons (c jets) with their decay vertices."""
    flav = jets["flavour"]
    n_had = np.select([flav == 0, flav == 1, flav == 2], [1, 2, 1], 0)
    jet = np.repeat(np.arange(len(flav)), n_had)
    first = np.r_[True, jet[1:] != jet[:-1]] if len(jet) else np.zeros(0, bool)
    is_b = flav[jet] <= 1
    pair = flav[jet] == 1
    u = rng.beta(3.0, 3.0, len(jet))
    x = np.where(
        pair, 0.8 * np.where(first, u, 1.0 - np.roll(u, 1)), jets["x_heavy"][jet]
    )
    p = np.maximum(x * jets["p"][jet], 1.0)
    spread = np.where(pair, 0.08 + 3.0 / jets["pt"][jet], 0.01 + 0.5 / jets["pt"][jet])
    angle = np.abs(rng.normal(0.0, 1.0, len(jet))) * spread
    direction = _rotate(jets["axis"][jet], angle, rng.uniform(0, 2 * np.pi, len(jet)))
    species = rng.choice(3, len(jet), p=[s[0] for s in _D_SPECIES])
    ctau = np.where(is_b, _CTAU_B, np.array([s[1] for s in _D_SPECIES])[species])
    mass = np.where(is_b, _M_B, _M_D)
    flight = (p / mass) * ctau * rng.exponential(1.0, len(jet))
    return {
        "jet": jet,
        "p": p,
        "dir": direction,
        "mass": mass,
        "vertex": flight[:, None] * direction,
        "is_b": is_b,
    }


def _charged_daughters(
    rng: Rng, parents: Arrays, n_min: int, n_extra: float, e_budget: np.ndarray
) -> Arrays:
    """``n_min`` + Poisson(``n_extra``) charged children sharing ``e_budget``.

    ``e_budget`` is each parent's energy (GeV) in its rest frame that goes to charged
    children.
    """
    count = n_min + rng.poisson(n_extra, len(parents["p"]))
    owner = np.repeat(np.arange(len(count)), count)
    e_star = e_budget[owner] * _shares(rng, owner, len(count), 2.0)
    p, direction = _decay(
        rng,
        parents["p"][owner],
        parents["dir"][owner],
        parents["mass"][owner],
        e_star,
        _M_PI,
    )
    return {"owner": owner, "p": p, "dir": direction}


def _heavy_decays(rng: Rng, jets: Arrays, out: _Particles, group0: int) -> None:
    had = _heavy_hadrons(rng, jets)
    n = len(had["p"])
    group = group0 + np.arange(n)

    # B → D + charged + neutrals: the D gets 2.3 GeV in the B rest frame.
    b = np.flatnonzero(had["is_b"])
    p_d, dir_d = _decay(
        rng, had["p"][b], had["dir"][b], _M_B, np.full(len(b), 2.3), _M_D
    )
    species = rng.choice(3, len(b), p=[s[0] for s in _D_SPECIES])
    ctau_d = np.array([s[1] for s in _D_SPECIES])[species]
    flight_d = (p_d / _M_D) * ctau_d * rng.exponential(1.0, len(b))
    cascade = {
        "p": p_d,
        "dir": dir_d,
        "mass": np.full(len(b), _M_D),
        "vertex": had["vertex"][b] + flight_d[:, None] * dir_d,
        "jet": had["jet"][b],
        "group": group[b],
    }
    direct = _charged_daughters(
        rng, {k: had[k][b] for k in ("p", "dir", "mass")}, 1, 1.6, np.full(len(b), 2.2)
    )
    o = direct["owner"]
    out.add(
        had["jet"][b][o],
        had["vertex"][b][o],
        direct["dir"],
        direct["p"],
        1,
        group[b][o],
    )

    # D decays: cascade D's of B hadrons, and the D hadrons of c jets.
    c = np.flatnonzero(~had["is_b"])
    d_all = {
        k: np.concatenate([cascade[k], had[k][c] if k != "group" else group[c]])
        for k in ("p", "dir", "mass", "vertex", "jet", "group")
    }
    origin_code = np.r_[np.ones(len(b), np.int8), np.full(len(c), 2, np.int8)]
    dd = _charged_daughters(rng, d_all, 2, 0.5, 0.7 * d_all["mass"])
    o = dd["owner"]
    for code in (1, 2):
        keep = origin_code[o] == code
        ok = o[keep]
        out.add(
            d_all["jet"][ok],
            d_all["vertex"][ok],
            dd["dir"][keep],
            dd["p"][keep],
            code,
            d_all["group"][ok],
        )


def _two_body(
    rng: Rng,
    p: np.ndarray,
    direction: np.ndarray,
    mass: float,
    p_star: float,
    m1: float,
    m2: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Both children of two-body decays: (momentum, direction) each."""
    n = len(p)
    cos_t = rng.uniform(-1.0, 1.0, n)
    az = rng.uniform(0, 2 * np.pi, n)
    bg = p / mass
    gamma = np.sqrt(1.0 + bg**2)
    out = []
    for sign, m in ((1.0, m1), (-1.0, m2)):
        e_star = np.sqrt(p_star**2 + m**2)
        p_long = gamma * sign * p_star * cos_t + bg * e_star
        p_trans = p_star * np.sqrt(1.0 - cos_t**2)
        angle = np.arctan2(p_trans, p_long)
        out.append(
            (
                np.hypot(p_long, p_trans),
                _rotate(direction, angle, az + (sign < 0) * np.pi),
            )
        )
    return out


def _v0s(rng: Rng, jets: Arrays, out: _Particles, group0: int) -> int:
    n_jets = len(jets["pt"])
    lam_k = 0.25 + 0.15 * np.log(jets["pt"] / 20.0)
    group = group0
    for mean, mass, ctau, p_star, m1 in (
        (lam_k, _M_KS, _CTAU_KS, _PSTAR_KS, _M_PI),
        (0.35 * lam_k, _M_LAMBDA, _CTAU_LAMBDA, _PSTAR_LAMBDA, 0.9383),
    ):
        jet = np.repeat(np.arange(n_jets), rng.poisson(mean))
        p = np.maximum(
            jets["p"][jet] * np.minimum(rng.exponential(0.08, len(jet)), 0.5), 0.5
        )
        angle = np.minimum(rng.exponential(0.4, len(jet)) / p, 0.6)
        direction = _rotate(
            jets["axis"][jet], angle, rng.uniform(0, 2 * np.pi, len(jet))
        )
        vertex = ((p / mass) * ctau * rng.exponential(1.0, len(jet)))[
            :, None
        ] * direction
        ids = group + np.arange(len(jet))
        for p_d, dir_d in _two_body(rng, p, direction, mass, p_star, m1, _M_PI):
            out.add(jet, vertex, dir_d, p_d, 3, ids)
        group += len(jet)
    return group


def _material(rng: Rng, jets: Arrays, out: _Particles, group0: int) -> None:
    n_jets = len(jets["pt"])
    jet = np.flatnonzero(rng.random(n_jets) < 0.04)
    p = jets["p"][jet] * rng.uniform(0.03, 0.15, len(jet))
    angle = np.minimum(rng.exponential(0.5, len(jet)) / p, 0.5)
    direction = _rotate(jets["axis"][jet], angle, rng.uniform(0, 2 * np.pi, len(jet)))
    radius = rng.choice(_PIXEL_RADII, len(jet))
    vertex = (radius / np.hypot(direction[:, 0], direction[:, 1]))[:, None] * direction
    count = 2 + rng.integers(0, 2, len(jet))
    owner = np.repeat(np.arange(len(jet)), count)
    e_star = rng.uniform(0.25, 0.6, len(owner))
    p_d, dir_d = _decay(rng, p[owner], direction[owner], 1.5, e_star, _M_PI)
    out.add(jet[owner], vertex[owner], dir_d, p_d, 4, group0 + owner)


# -- tracks ----------------------------------------------------------------------------


def _measure(rng: Rng, part: Arrays, axis_of: np.ndarray) -> Arrays:
    """Impact parameters, their errors and jet-relative quantities of every track."""
    t, p = part["dir"], part["p"]
    n = len(p)
    j = axis_of[part["jet"]]
    pt = p * np.hypot(t[:, 0], t[:, 1])
    # Resolution worsens forward, the longitudinal one most.
    abs_eta = np.abs(np.arcsinh(t[:, 2] / np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)))
    sigma_d0 = np.hypot(_RES_D0[0], _RES_D0[1] / np.maximum(pt, 0.1)) * (
        1 + 0.25 * abs_eta
    )
    sigma_z = np.hypot(_RES_Z[0], _RES_Z[1] / np.maximum(pt, 0.1)) * (1 + 0.6 * abs_eta)
    tail = np.where(rng.random(n) < _TAIL_FRACTION, _TAIL_FACTOR, 1.0)
    e_t = _unit(np.stack([-t[:, 1], t[:, 0], np.zeros(n)], axis=1))
    zhat = np.array([0.0, 0.0, 1.0])
    e_l = _unit(zhat[None, :] - t[:, 2:3] * t)
    g = rng.normal(0.0, 1.0, (n, 2)) * tail[:, None]
    point = (
        part["vertex"]
        + (g[:, :1] * sigma_d0[:, None]) * e_t
        + (g[:, 1:] * sigma_z[:, None]) * e_l
    )

    # 3D: vector from the primary vertex to the point of closest approach.
    ip3 = point - np.sum(point * t, axis=1, keepdims=True) * t
    ip3_abs = np.linalg.norm(ip3, axis=1)
    sign3 = np.where(np.sum(ip3 * j, axis=1) >= 0, 1.0, -1.0)
    n3 = ip3 / np.maximum(ip3_abs, 1e-12)[:, None]
    sigma3 = np.hypot(
        sigma_d0 * np.sum(n3 * e_t, axis=1), sigma_z * np.sum(n3 * e_l, axis=1)
    )
    sigma3 = np.maximum(sigma3, _RES_D0[0])

    # 2D: the same in the transverse plane.
    t2 = _unit(t[:, :2])
    p2 = point[:, :2] - np.sum(point[:, :2] * t2, axis=1, keepdims=True) * t2
    sign2 = np.where(np.sum(p2 * j[:, :2], axis=1) >= 0, 1.0, -1.0)
    ip2_abs = np.linalg.norm(p2, axis=1)

    # Closest approach between the track and the jet axis through the primary vertex.
    b = np.sum(j * t, axis=1)
    d = -np.sum(j * point, axis=1)
    e = -np.sum(t * point, axis=1)
    denom = np.maximum(1.0 - b**2, 1e-12)
    s_jet = (b * e - d) / denom
    u_trk = (e - b * d) / denom
    gap = -point + s_jet[:, None] * j - u_trk[:, None] * t

    cos_a = np.clip(b, -1.0, 1.0)
    eta_t, phi_t = _eta_phi(t)
    eta_j, phi_j = _eta_phi(j)
    dphi = (phi_t - phi_j + np.pi) % (2 * np.pi) - np.pi
    p_long = p * cos_a
    return {
        "pt": pt,
        "eta": eta_t,
        "phi": phi_t,
        "p": p,
        "delta_r": np.hypot(eta_t - eta_j, dphi),
        "pt_rel": p * np.sqrt(1.0 - cos_a**2),
        "pt_ratio": np.sqrt(1.0 - cos_a**2),
        "eta_rel": 0.5 * np.log((p + p_long + 1e-9) / np.maximum(p - p_long, 1e-9)),
        "sip2d": sign2 * ip2_abs,
        "sip2d_sig": sign2 * ip2_abs / sigma_d0,
        "sip3d": sign3 * ip3_abs,
        "sip3d_sig": sign3 * ip3_abs / sigma3,
        "decay_length": s_jet,
        "jet_dist": np.linalg.norm(gap, axis=1),
    }


def _select(rng: Rng, trk: Arrays, part: Arrays) -> np.ndarray:
    """Reconstructed and selected tracks: efficiency falls with the origin's radius."""
    radius = np.hypot(part["vertex"][:, 0], part["vertex"][:, 1])
    found = rng.random(len(radius)) < _TRACK_EFF * np.exp(-radius / _TRACK_EFF_RADIUS)
    return (
        found
        & (trk["pt"] > _SEL_PT)
        & (trk["delta_r"] < _SEL_DR)
        & (trk["jet_dist"] < _SEL_JETDIST)
        & (np.abs(trk["decay_length"]) < _SEL_DECAYLEN)
        & (np.abs(trk["sip2d"]) < _SEL_IP)
    )


def _group_sums(group: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    return np.bincount(group, weights=values, minlength=n_groups)


def _vertices(
    rng: Rng, trk: Arrays, part: Arrays, n_jets: int, axis: np.ndarray
) -> Arrays:
    """A toy inclusive vertex finder: at most one secondary vertex per jet."""
    jet = part["jet"]
    disp = trk["sip3d_sig"] > 2.0
    # Real displaced groups, and a fake group per jet from mismeasured prompt tracks.
    fake = (part["origin"] == 0) & (trk["sip3d_sig"] > 1.5)
    group = np.where(part["origin"] == 0, -1, part["group"])
    group = np.where(fake, part["group"].max(initial=0) + 1 + jet, group)
    use = (disp | fake) & (group >= 0)
    ids, inverse = np.unique(group[use], return_inverse=True)
    n_groups = len(ids)
    count = np.bincount(inverse, minlength=n_groups)
    g_jet = np.zeros(n_groups, dtype=np.int64)
    g_jet[inverse] = jet[use]
    g_fake = np.zeros(n_groups, dtype=bool)
    g_fake[inverse] = fake[use]

    # Vertex position: mean true origin of the group's tracks, smeared.
    pos = (
        np.stack(
            [
                _group_sums(inverse, n_groups, part["vertex"][use][:, k])
                for k in range(3)
            ],
            1,
        )
        / np.maximum(count, 1)[:, None]
    )
    pca = trk["decay_length"][use][:, None] * axis[jet[use]]
    fake_pos = np.stack(
        [_group_sums(inverse, n_groups, pca[:, k]) for k in range(3)], 1
    )
    pos = np.where(g_fake[:, None], fake_pos / np.maximum(count, 1)[:, None], pos)
    sigma = np.array([_SV_SIGMA_XY, _SV_SIGMA_XY, _SV_SIGMA_Z])
    pos = pos + rng.normal(0.0, 1.0, (n_groups, 3)) * sigma
    flight2d = np.hypot(pos[:, 0], pos[:, 1])
    flight3d = np.linalg.norm(pos, axis=1)
    sig2d = flight2d / _SV_SIGMA_XY
    sig3d = flight3d / np.sqrt(
        np.sum((pos / np.maximum(flight3d, 1e-9)[:, None]) ** 2 * sigma**2, 1)
    )

    # Invariant mass of the group's tracks (pion hypothesis).
    mom = trk["p"][use][:, None] * part["dir"][use]
    energy = np.sqrt(trk["p"][use] ** 2 + _M_PI**2)
    e_sum = _group_sums(inverse, n_groups, energy)
    p_sum = np.stack([_group_sums(inverse, n_groups, mom[:, k]) for k in range(3)], 1)
    mass = np.sqrt(np.maximum(e_sum**2 - np.sum(p_sum**2, axis=1), 0.0))

    v0_like = (count == 2) & (np.abs(mass - _M_KS) < 0.05)
    good = (
        (count >= 2)
        & (sig2d > 3.0)
        & (flight2d < 2.5)
        & (mass < 6.5)
        & ~v0_like
        & (rng.random(n_groups) < np.where(g_fake, _FAKE_SV_PROB, _SV_FIT_EFF))
        & (np.sum(pos * axis[g_jet], axis=1) > 0)
    )
    # The best vertex of each jet: most tracks, then highest significance.
    cand = np.flatnonzero(good)
    order = np.lexsort((-sig2d[cand], -count[cand], g_jet[cand]))
    cand = cand[order]
    best = cand[np.r_[True, g_jet[cand][1:] != g_jet[cand][:-1]]] if len(cand) else cand

    out = {
        "found": np.zeros(n_jets, dtype=bool),
        "mass": np.zeros(n_jets),
        "ntracks": np.zeros(n_jets, dtype=np.int64),
        "e_sum": np.zeros(n_jets),
        "flight2d": np.zeros(n_jets),
        "flight2d_sig": np.zeros(n_jets),
        "flight3d": np.zeros(n_jets),
        "flight3d_sig": np.zeros(n_jets),
        "dir": axis.copy(),
        "group": np.full(n_jets, -1, dtype=np.int64),
    }
    j = g_jet[best]
    out["found"][j] = True
    out["mass"][j] = mass[best]
    out["ntracks"][j] = count[best]
    out["e_sum"][j] = e_sum[best]
    out["flight2d"][j] = flight2d[best]
    out["flight2d_sig"][j] = sig2d[best]
    out["flight3d"][j] = flight3d[best]
    out["flight3d_sig"][j] = sig3d[best]
    out["dir"][j] = _unit(pos[best]) if len(best) else out["dir"][j]
    out["group"][j] = ids[best]
    out["in_sv"] = use.copy()
    out["in_sv"][use] = out["group"][jet[use]] == group[use]
    return out


# -- events ----------------------------------------------------------------------------


def _jets(rng: Rng, n: int, p: BtagSimParams) -> Arrays:
    flavour = rng.choice(4, n, p=p.composition.fractions()).astype(np.int8)
    a = 1.0 - p.pt_slope
    u = rng.random(n)
    pt = (p.pt_min**a + u * (p.pt_max**a - p.pt_min**a)) ** (1.0 / a)
    eta = rng.uniform(-2.4, 2.4, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    x_heavy = np.select(
        [flavour == 0, flavour == 1, flavour == 2],
        [rng.beta(7.0, 3.0, n), np.full(n, 0.8), rng.beta(5.5, 4.5, n)],
        0.0,
    )
    return {
        "flavour": flavour,
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "p": pt * np.cosh(eta),
        "axis": _direction(eta, phi),
        "x_heavy": x_heavy,
    }


def simulate_btag(
    rng: np.random.Generator, n: int, params: BtagSimParams | None = None
) -> ak.Array:
    """Simulate ``n`` jets (one per event).

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
    params : BtagSimParams, optional

    Returns
    -------
    ak.Array
        One record per event: flat jet and secondary-vertex fields and the jagged
        ``tracks`` collection of :func:`btag_event_schema`.
    """
    p = params or BtagSimParams()
    jets = _jets(rng, n, p)
    particles = _Particles()
    _fragmentation(rng, jets, particles, 0)
    _heavy_decays(rng, jets, particles, 1)
    group = _v0s(rng, jets, particles, 1 + 2 * n)
    _material(rng, jets, particles, group + 1)
    part = particles.arrays()

    trk = _measure(rng, part, jets["axis"])
    keep = _select(rng, trk, part)
    part = {k: v[keep] for k, v in part.items()}
    trk = {k: v[keep] for k, v in trk.items()}
    # Keep the max_tracks highest-pT tracks of each jet, in decreasing pT.
    order = np.lexsort((-trk["pt"], part["jet"]))
    part = {k: v[order] for k, v in part.items()}
    trk = {k: v[order] for k, v in trk.items()}
    counts = np.bincount(part["jet"], minlength=n)
    rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    cap = rank < p.max_tracks
    part = {k: v[cap] for k, v in part.items()}
    trk = {k: v[cap] for k, v in trk.items()}
    counts = np.minimum(counts, p.max_tracks)

    sv = _vertices(rng, trk, part, n, jets["axis"])
    energy = np.sqrt(trk["p"] ** 2 + _M_PI**2)
    e_all = np.bincount(part["jet"], weights=energy, minlength=n)
    sv_eta, sv_phi = _eta_phi(sv["dir"])
    dphi = (sv_phi - jets["phi"] + np.pi) % (2 * np.pi) - np.pi
    found = sv["found"]

    tracks = {k: v.astype(np.float32) for k, v in trk.items()}
    tracks["in_sv"] = sv["in_sv"].astype(np.int8)
    tracks["origin"] = part["origin"]
    fields: dict[str, object] = {
        "jet_pt": jets["pt"].astype(np.float32),
        "jet_eta": jets["eta"].astype(np.float32),
        "jet_phi": jets["phi"].astype(np.float32),
        "flavour": jets["flavour"],
        "sv_found": found.astype(np.int8),
        "sv_mass": sv["mass"].astype(np.float32),
        "sv_ntracks": sv["ntracks"].astype(np.int32),
        "sv_energy_ratio": np.where(
            found, sv["e_sum"] / np.maximum(e_all, 1e-9), 0.0
        ).astype(np.float32),
        "sv_flight2d": sv["flight2d"].astype(np.float32),
        "sv_flight2d_sig": sv["flight2d_sig"].astype(np.float32),
        "sv_flight3d": sv["flight3d"].astype(np.float32),
        "sv_flight3d_sig": sv["flight3d_sig"].astype(np.float32),
        "sv_dr": np.where(found, np.hypot(sv_eta - jets["eta"], dphi), 0.0).astype(
            np.float32
        ),
        "tracks": ak.unflatten(ak.zip(tracks), counts),
    }
    return ak.zip(fields, depth_limit=1)


def btag_event_schema() -> EventSchema:
    """Fields of a jet and its tracks as the b-tagging algorithm reads them."""
    f32 = "float32"
    track_fields = {
        "pt": FieldSpec(unit="GeV", min=0.0, description="track pT"),
        "eta": FieldSpec(description="track pseudorapidity"),
        "phi": FieldSpec(unit="rad", description="track azimuth"),
        "p": FieldSpec(unit="GeV", min=0.0, description="track momentum"),
        "delta_r": FieldSpec(min=0.0, description="ΔR to the jet axis"),
        "pt_rel": FieldSpec(
            unit="GeV", min=0.0, description="momentum ⊥ to the jet axis"
        ),
        "pt_ratio": FieldSpec(min=0.0, max=1.0, description="pt_rel / p"),
        "eta_rel": FieldSpec(description="pseudorapidity relative to the jet axis"),
        "sip2d": FieldSpec(unit="cm", description="signed transverse impact parameter"),
        "sip2d_sig": FieldSpec(description="its significance"),
        "sip3d": FieldSpec(unit="cm", description="signed 3D impact parameter"),
        "sip3d_sig": FieldSpec(description="its significance"),
        "decay_length": FieldSpec(
            unit="cm",
            description="distance from the PV to the track's closest approach "
            "to the jet axis, along the axis",
        ),
        "jet_dist": FieldSpec(
            unit="cm", min=0.0, description="distance to the jet axis"
        ),
        "in_sv": FieldSpec(dtype="int8", min=0, max=1, description="track of the SV"),
        "origin": FieldSpec(
            dtype="int8", min=0, max=4, description="truth: " + ", ".join(ORIGINS)
        ),
    }
    return EventSchema(
        name="cms.deepcsv",
        fields={
            "jet_pt": FieldSpec(dtype=f32, unit="GeV", min=0.0, description="jet pT"),
            "jet_eta": FieldSpec(dtype=f32, description="jet pseudorapidity"),
            "jet_phi": FieldSpec(dtype=f32, unit="rad", description="jet azimuth"),
            "flavour": FieldSpec(
                dtype="int8", min=0, max=3, description="truth: 0 b, 1 bb, 2 c, 3 light"
            ),
            "sv_found": FieldSpec(
                dtype="int8", min=0, max=1, description="an SV exists"
            ),
            "sv_mass": FieldSpec(unit="GeV", min=0.0, description="SV mass (pions)"),
            "sv_ntracks": FieldSpec(dtype="int32", min=0, description="SV tracks"),
            "sv_energy_ratio": FieldSpec(min=0.0, description="E(SV) / E(all tracks)"),
            "sv_flight2d": FieldSpec(
                unit="cm", min=0.0, description="transverse flight"
            ),
            "sv_flight2d_sig": FieldSpec(min=0.0, description="its significance"),
            "sv_flight3d": FieldSpec(unit="cm", min=0.0, description="3D flight"),
            "sv_flight3d_sig": FieldSpec(min=0.0, description="its significance"),
            "sv_dr": FieldSpec(min=0.0, description="ΔR(flight direction, jet axis)"),
        },
        collections={
            "tracks": CollectionSpec(
                fields=track_fields, description="selected tracks, highest pT first"
            )
        },
    )


class BtagSimSource(Source):
    """The ``cms.btag_sim`` source: seeded jets with tracks and SVs, in batches."""

    def __init__(self, params: BtagSimParams | None = None) -> None:
        self.params = params or BtagSimParams()

    def _block(self, rng: np.random.Generator, n: int) -> ak.Array:
        return simulate_btag(rng, n, self.params)

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Batch]:
        p = self.params
        start = 0
        for chunk, events in enumerate(
            stream(p.n_events, p.seed, p.batch_size, self._block)
        ):
            origin = f"{self.describe()}[{start}:{start + len(events)}]"
            yield Batch(project(events, columns, origin), start, origin, chunk)
            start += len(events)

    def events(self) -> ak.Array:
        """The whole sample in one array."""
        return generate(self.params.n_events, self.params.seed, self._block)

    def describe(self) -> str:
        p = self.params
        return f"cms.btag_sim(n_events={p.n_events}, seed={p.seed})"
