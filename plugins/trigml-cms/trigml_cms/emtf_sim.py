"""Simulation of muons in the CMS endcap muon system as the L1 track finder sees them.

Each event holds one muon (or, in the zero-bias-like sample, a punch-through hadron)
crossing up to four endcap stations. Between stations the track bends in φ by
q·A_ij(η)/pT, where the local momentum is reduced by energy loss in the iron and the
bending weakens with |η|; multiple scattering adds kicks ∝ 1/pT that persist to later
stations, hits carry CSC or RPC resolution, and a few hits are replaced by a wrong
nearby hit (a large scatter). Stations are missing with a few per cent probability
(a muon of low momentum may also range out), and the pattern of stations present is
the track's *mode*. Everything the trigger sees is quantised to hardware units:
φ in 1/60°, θ in steps of 36.5°/128.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import awkward as ak
import numpy as np
from pydantic import Field, model_validator

from trigml.components import Batch, Source
from trigml.registry import Params
from trigml.schema.events import EventSchema, FieldSpec
from trigml_cms._stream import generate, project, stream

__all__ = [
    "CATEGORIES",
    "PAIRS",
    "PHI_LSB_DEG",
    "THETA_LSB_DEG",
    "Composition",
    "EmtfSimParams",
    "EmtfSimSource",
    "emtf_event_schema",
    "simulate_emtf",
    "theta_to_eta",
]

#: φ unit of the track finder, degrees.
PHI_LSB_DEG = 1.0 / 60.0
#: θ unit of the track finder, degrees; θ code 0 is 8.5°.
THETA_LSB_DEG = 36.5 / 128.0
THETA_MIN_DEG = 8.5
#: Event categories of the ``category`` field.
CATEGORIES = ("prompt", "decay_in_flight", "punch_through")
#: Station pairs for which Δφ and Δθ are stored, as (first, second) station.
PAIRS = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))

ETA_MIN, ETA_MAX = 1.2, 2.4
# Bending of consecutive station pairs at |η| = 1.2 for pT = 1 GeV, in φ units.
_BEND = np.array([450.0, 200.0, 110.0])
# Multiple scattering between consecutive stations for pT = 1 GeV, in φ units; a kick
# also shifts the next pair by _MS_CARRY of its size.
_MS = np.array([80.0, 40.0, 30.0])
_MS_CARRY = 0.0
_MS_TAIL_FRACTION, _MS_TAIL_FACTOR = 0.04, 3.0
# Momentum lost before each station, GeV.
_ELOSS = np.array([2.5, 3.1, 3.6, 4.0])
# Hit efficiencies: CSC, and RPC filling a missing CSC hit (only where |η| < 1.9).
_CSC_EFF = np.array([0.90, 0.91, 0.90, 0.89])
_RPC_FILL, _RPC_ETA_MAX = 0.5, 1.9
_SIGMA_CSC, _SIGMA_RPC = 1.0, 5.0
# Probability per station that the hit is a wrong nearby one (station 1 sees the most
# background: neutron-induced hits and showers), and the scale of its offset.
_WRONG_HIT = np.array([0.05, 0.02, 0.02, 0.02])
_WRONG_SCALE = 50.0
# CSC bend (pattern units) for pT = 1 GeV in ME1/1, ME1/2 and stations 2-4.
_BEND_ME11, _BEND_ME12, _BEND_OTHER = 14.0, 9.0, 5.0
_MS_THETA = 6.0
# Falling spectra of the zero-bias-like sample: slope of dN/dpT ∝ pT^-slope.
_SLOPE = {"prompt": 3.0, "decay_in_flight": 4.0, "punch_through": 4.0}


class Composition(Params):
    """Fractions of the zero-bias-like sample (normalised to their sum)."""

    prompt: float = Field(0.35, ge=0.0)
    decay_in_flight: float = Field(0.55, ge=0.0)
    punch_through: float = Field(0.10, ge=0.0)

    @model_validator(mode="after")
    def _positive(self) -> Composition:
        if self.prompt + self.decay_in_flight + self.punch_through <= 0.0:
            raise ValueError("at least one fraction of the composition must be > 0")
        return self

    def fractions(self) -> np.ndarray:
        f = np.array([self.prompt, self.decay_in_flight, self.punch_through])
        return f / f.sum()


class EmtfSimParams(Params):
    """Parameters of the ``cms.emtf_sim`` source.

    Attributes
    ----------
    n_events : int
    seed : int
    batch_size : int
    spectrum : {"flat_invpt", "falling"}
        ``flat_invpt``: prompt muons flat in q/pT between ``pt_min`` and ``pt_max``
        (the training sample). ``falling``: a zero-bias-like mixture of prompt muons
        (dN/dpT ∝ pT^-3), decay-in-flight muons (∝ pT^-4) and punch-through hadrons,
        for rates.
    pt_min, pt_max : float
        Range of generated pT, GeV.
    composition : Composition
        Fractions of the ``falling`` sample.
    """

    n_events: int = Field(200_000, gt=0)
    seed: int = 1
    batch_size: int = Field(100_000, gt=0)
    spectrum: Literal["flat_invpt", "falling"] = "flat_invpt"
    pt_min: float = Field(2.0, gt=0.5)
    pt_max: float = Field(1000.0, gt=1.0)
    composition: Composition = Field(default_factory=Composition)

    @model_validator(mode="after")
    def _range(self) -> EmtfSimParams:
        if self.pt_max <= self.pt_min:
            raise ValueError(
                f"pt_max ({self.pt_max}) must exceed pt_min ({self.pt_min})"
            )
        return self


def _spectrum_pt(
    rng: np.random.Generator, n: int, slope: float, pt_min: float, pt_max: float
) -> np.ndarray:
    """pT drawn from dN/dpT ∝ pT^-slope between pt_min and pt_max (inverse CDF)."""
    a = 1.0 - slope
    u = rng.random(n)
    return (pt_min**a + u * (pt_max**a - pt_min**a)) ** (1.0 / a)


def theta_to_eta(theta_code: np.ndarray) -> np.ndarray:
    """Pseudorapidity |η| of a hardware θ code."""
    theta = np.radians(THETA_MIN_DEG + (np.asarray(theta_code) + 0.5) * THETA_LSB_DEG)
    return -np.log(np.tan(theta / 2.0))


def _truth(rng: np.random.Generator, n: int, p: EmtfSimParams) -> dict[str, np.ndarray]:
    charge = rng.choice(np.array([-1, 1], dtype=np.int8), n)
    if p.spectrum == "flat_invpt":
        category = np.zeros(n, dtype=np.int8)
        pt = 1.0 / rng.uniform(1.0 / p.pt_max, 1.0 / p.pt_min, n)
    else:
        category = rng.choice(3, n, p=p.composition.fractions()).astype(np.int8)
        pt = np.empty(n)
        for i, name in enumerate(CATEGORIES):
            sel = category == i
            pt[sel] = _spectrum_pt(
                rng, int(sel.sum()), _SLOPE[name], p.pt_min, p.pt_max
            )
    abs_eta = rng.uniform(ETA_MIN, ETA_MAX, n)
    eta = abs_eta * rng.choice(np.array([-1.0, 1.0]), n)
    phi = rng.uniform(-np.pi, np.pi, n)
    return {"charge": charge, "pt": pt, "eta": eta, "phi": phi, "category": category}


def _stations_reached(
    rng: np.random.Generator, p_mu: np.ndarray, punch: np.ndarray
) -> np.ndarray:
    """Boolean (n, 4): the particle reaches station j (energy loss, punch-through)."""
    eloss = _ELOSS[None, :] * rng.normal(1.0, 0.1, (len(p_mu), 1))
    reached = p_mu[:, None] - eloss > 0.5
    punch_depth = np.array([1.0, 0.4, 0.1, 0.05])
    pt_hits = rng.random((len(p_mu), 1)) < punch_depth[None, :]
    return np.where(punch[:, None], np.cumprod(pt_hits, axis=1).astype(bool), reached)


def _hits(
    rng: np.random.Generator, n: int, reached: np.ndarray, abs_eta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """CSC and RPC hit flags (n, 4); a station has at most one of them."""
    csc = reached & (rng.random((n, 4)) < _CSC_EFF[None, :])
    rpc_ok = (abs_eta < _RPC_ETA_MAX)[:, None]
    rpc = reached & ~csc & rpc_ok & (rng.random((n, 4)) < _RPC_FILL)
    return csc, rpc


def _phi_positions(
    rng: np.random.Generator,
    truth: dict[str, np.ndarray],
    abs_eta: np.ndarray,
    pt_local: np.ndarray,
    fr: np.ndarray,
    rpc: np.ndarray,
) -> np.ndarray:
    """Track position in each station relative to station 1, φ units (float, (n, 4))."""
    n = len(abs_eta)
    q = truth["charge"].astype(np.float64)
    strength = np.exp(-0.6 * (abs_eta - ETA_MIN))
    me11 = abs_eta > 1.6
    a12 = (
        _BEND[0]
        * strength
        * np.where(me11, 1.1, 1.0)
        * (1.0 + 0.04 * (2 * fr[:, 0] - 1))
    )
    amps = np.stack([a12, _BEND[1] * strength, _BEND[2] * strength], axis=1)
    bend = q[:, None] * amps / pt_local[:, :3]

    width = _MS[None, :] / pt_local[:, :3]
    tail = rng.random((n, 3)) < _MS_TAIL_FRACTION
    kicks = rng.normal(0.0, 1.0, (n, 3)) * width * np.where(tail, _MS_TAIL_FACTOR, 1.0)
    carried = np.concatenate([np.zeros((n, 1)), _MS_CARRY * kicks[:, :2]], axis=1)
    steps = bend + kicks + carried
    x = np.concatenate([np.zeros((n, 1)), np.cumsum(steps, axis=1)], axis=1)

    sigma = np.where(rpc, _SIGMA_RPC, _SIGMA_CSC)
    x += rng.normal(0.0, 1.0, (n, 4)) * sigma
    wrong = rng.random((n, 4)) < _WRONG_HIT[None, :]
    x += np.where(wrong, rng.laplace(0.0, _WRONG_SCALE, (n, 4)), 0.0)
    return x


def simulate_emtf(
    rng: np.random.Generator, n: int, params: EmtfSimParams | None = None
) -> ak.Array:
    """Simulate ``n`` endcap muons (one per event) as flat records.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
    params : EmtfSimParams, optional

    Returns
    -------
    ak.Array
        One record per event with the fields of :func:`emtf_event_schema`. Fields of
        missing stations (and Δφ, Δθ of pairs that involve one) are 0.
    """
    p = params or EmtfSimParams()
    truth = _truth(rng, n, p)
    abs_eta = np.abs(truth["eta"])
    punch = truth["category"] == 2
    p_mu = truth["pt"] * np.cosh(abs_eta)

    reached = _stations_reached(rng, p_mu, punch)
    csc, rpc = _hits(rng, n, reached, abs_eta)
    present = csc | rpc

    # Local transverse momentum between consecutive stations after energy loss.
    p_station = np.maximum(p_mu[:, None] - _ELOSS[None, :], 0.3)
    p_pair = 0.5 * (p_station[:, :3] + p_station[:, 1:])
    pt_local = (
        np.concatenate([p_pair, p_station[:, 3:]], axis=1) / np.cosh(abs_eta)[:, None]
    )

    phi_deg = np.degrees(truth["phi"]) % 360.0
    fr = ((np.floor((phi_deg[:, None] + 5.0 * np.arange(4)) / 10.0)) % 2).astype(
        np.int8
    )
    x = _phi_positions(rng, truth, abs_eta, pt_local, fr, rpc)
    # Punch-through hits do not follow a track: random offsets between stations.
    x = np.where(punch[:, None], np.cumsum(rng.normal(0.0, 80.0, (n, 4)), axis=1), x)
    phi_int = np.floor(rng.random(n)[:, None] * 4096.0 + x).astype(np.int64)

    theta_deg = np.degrees(2.0 * np.arctan(np.exp(-abs_eta)))
    theta_true = (theta_deg - THETA_MIN_DEG) / THETA_LSB_DEG
    ms_theta = rng.normal(0.0, 1.0, (n, 4)) * _MS_THETA / pt_local
    ms_theta[:, 0] = 0.0
    theta_f = (
        theta_true[:, None] + np.cumsum(ms_theta, axis=1) + rng.normal(0, 0.4, (n, 4))
    )
    theta_f += np.where(punch[:, None], rng.normal(0.0, 3.0, (n, 4)), 0.0)
    theta_int = np.clip(np.round(theta_f), 0, 127).astype(np.int32)

    ring1 = np.where(abs_eta > 1.6, 1, 2).astype(np.int8)
    scale = np.stack(
        [np.where(ring1 == 1, _BEND_ME11, _BEND_ME12)] + [np.full(n, _BEND_OTHER)] * 3,
        axis=1,
    )
    bend_f = truth["charge"][:, None] * scale / np.maximum(pt_local, 0.3)
    bend_f = np.where(punch[:, None], rng.normal(0.0, 3.0, (n, 4)), bend_f)
    bend = np.clip(np.round(bend_f + rng.normal(0.0, 0.6, (n, 4))), -4, 4)
    bend = np.where(csc, bend, 0).astype(np.int8)

    mode = (present * np.array([8, 4, 2, 1])).sum(axis=1).astype(np.int8)
    fields: dict[str, np.ndarray] = {
        "mu_pt": truth["pt"].astype(np.float32),
        "mu_invpt": (1.0 / truth["pt"]).astype(np.float32),
        "mu_charge": truth["charge"],
        "mu_eta": truth["eta"].astype(np.float32),
        "mu_phi": truth["phi"].astype(np.float32),
        "category": truth["category"],
        "mode": mode,
        "ring1": np.where(present[:, 0], ring1, 0).astype(np.int8),
    }
    for a, b in PAIRS:
        both = present[:, a - 1] & present[:, b - 1]
        dphi = phi_int[:, b - 1] - phi_int[:, a - 1]
        dtheta = theta_int[:, b - 1] - theta_int[:, a - 1]
        fields[f"dphi{a}{b}"] = np.where(both, dphi, 0).astype(np.int32)
        fields[f"dtheta{a}{b}"] = np.where(both, dtheta, 0).astype(np.int32)
    for j in range(4):
        s = j + 1
        fields[f"theta{s}"] = np.where(present[:, j], theta_int[:, j], 0).astype(
            np.int32
        )
        fields[f"bend{s}"] = bend[:, j]
        fields[f"fr{s}"] = np.where(present[:, j], fr[:, j], 0).astype(np.int8)
        fields[f"rpc{s}"] = rpc[:, j].astype(np.int8)
    return ak.zip(fields, depth_limit=1)


def emtf_event_schema() -> EventSchema:
    """The flat fields of a simulated (or real) endcap muon track per event."""
    fields = {
        "mu_pt": FieldSpec(unit="GeV", min=0.0, description="true muon pT"),
        "mu_invpt": FieldSpec(unit="1/GeV", min=0.0, description="true 1/pT"),
        "mu_charge": FieldSpec(dtype="int8", min=-1, max=1, description="true charge"),
        "mu_eta": FieldSpec(description="true pseudorapidity"),
        "mu_phi": FieldSpec(unit="rad", description="true azimuth"),
        "category": FieldSpec(
            dtype="int8",
            min=0,
            max=2,
            description="0 prompt, 1 decay in flight, 2 punch",
        ),
        "mode": FieldSpec(
            dtype="int8",
            min=0,
            max=15,
            description="stations present: 8·s1+4·s2+2·s3+s4",
        ),
        "ring1": FieldSpec(
            dtype="int8",
            min=0,
            max=2,
            description="station-1 ring (1: ME1/1, 2: ME1/2)",
        ),
    }
    for a, b in PAIRS:
        fields[f"dphi{a}{b}"] = FieldSpec(
            dtype="int32", unit="1/60 deg", description=f"φ{b} − φ{a}, 0 if missing"
        )
        fields[f"dtheta{a}{b}"] = FieldSpec(
            dtype="int32", unit="0.285 deg", description=f"θ{b} − θ{a}, 0 if missing"
        )
    for s in range(1, 5):
        fields[f"theta{s}"] = FieldSpec(
            dtype="int32",
            unit="0.285 deg",
            min=0,
            max=127,
            description=f"θ code, st. {s}",
        )
        fields[f"bend{s}"] = FieldSpec(
            dtype="int8", min=-4, max=4, description=f"CSC bend in station {s}"
        )
        fields[f"fr{s}"] = FieldSpec(
            dtype="int8", min=0, max=1, description=f"front/rear chamber, st. {s}"
        )
        fields[f"rpc{s}"] = FieldSpec(
            dtype="int8", min=0, max=1, description=f"hit of station {s} is from an RPC"
        )
    return EventSchema(name="cms.emtf", fields=fields)


class EmtfSimSource(Source):
    """The ``cms.emtf_sim`` source: seeded endcap muons in batches."""

    def __init__(self, params: EmtfSimParams | None = None) -> None:
        self.params = params or EmtfSimParams()

    def _block(self, rng: np.random.Generator, n: int) -> ak.Array:
        return simulate_emtf(rng, n, self.params)

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
        return (
            f"cms.emtf_sim(spectrum={p.spectrum}, n_events={p.n_events}, seed={p.seed})"
        )
