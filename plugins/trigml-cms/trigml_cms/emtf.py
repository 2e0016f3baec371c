"""The ``cms.emtf`` algorithm: L1 endcap muon pT assignment, one BDT per mode.

A track's *mode* is the pattern of stations it has hits in (8·s1 + 4·s2 + 2·s3 + s4).
For one mode the algorithm builds the features of the hardware pT assignment (|Δφ|
between consecutive stations with signs relative to the first pair, θ, the station-1
ring, front/rear, the CSC bend, Δθ, an RPC flag), compresses them into the codes of a
lookup-table address (:mod:`trigml_cms.packing`), and gives the model the decoded
values, so that a table filled from the model reproduces it exactly. The regression
target is 1/pT; a track fires an L1 threshold when 1/score ≥ threshold (GeV).

The analytic assignment that preceded the BDT, pT = A(θ)/|Δφ| between the first two
stations, is :class:`AnalyticPt`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from pydantic import Field, field_validator

from trigml.components import Algorithm, Candidates, Source, TrainingSet
from trigml.errors import ConfigError, DataError
from trigml.registry import Params
from trigml.schema.card import FeatureSpec, ModelCard, WorkingPoint
from trigml.schema.events import EventSchema
from trigml_cms.emtf_sim import EmtfSimParams, EmtfSimSource, emtf_event_schema
from trigml_cms.packing import (
    MAX_ADDRESS_BITS,
    PT_LSB_GEV,
    FieldPacking,
    Packing,
    dphi_edges,
    invpt_to_pt_code,
    linear_edges,
)

__all__ = [
    "L1_THRESHOLDS",
    "ROLES",
    "SINGLE_MU_MODES",
    "AnalyticPt",
    "EmtfAlgorithm",
    "EmtfParams",
    "mode_packing",
    "mode_raw_features",
    "pt_from_invpt",
    "stations_of",
    "threshold_for_turn_on",
]

log = logging.getLogger(__name__)

#: Modes the single-muon trigger accepts (three or four stations including station 1).
SINGLE_MU_MODES = (15, 14, 13, 11)
#: True pT (GeV) at which working points put the 90% point of the turn-on.
L1_THRESHOLDS = (10.0, 16.0, 22.0)

#: Address fields in order (most significant first) and what each holds.
ROLES: dict[str, str] = {
    "dphi_a": "|Δφ| between the first two stations",
    "dphi_b": "|Δφ| between the second and third stations",
    "sign_b": "1 when the second Δφ has the opposite sign to the first",
    "dphi_c": "|Δφ| between the third and fourth stations",
    "sign_c": "1 when the third Δφ has the opposite sign to the first",
    "theta": "θ code of the first station",
    "ring1": "1 when the station-1 hit is in ME1/1 (|η| > 1.6)",
    "fr": "front (1) or rear (0) chamber of the first station",
    "bend": "CSC bend of the first station, times the sign of the first Δφ",
    "dtheta": "θ of the last minus θ of the first station",
    "rpc": "1 when any hit of the track comes from an RPC",
}
# Default widths by number of stations; they add up to at most 30 bits.
_DEFAULT_BITS = {
    4: {"dphi_a": 7, "dphi_b": 5, "sign_b": 1, "dphi_c": 4, "sign_c": 1, "theta": 5,
        "ring1": 1, "fr": 1, "bend": 2, "dtheta": 2, "rpc": 1},
    3: {"dphi_a": 7, "dphi_b": 6, "sign_b": 1, "theta": 5, "ring1": 1, "fr": 1,
        "bend": 3, "dtheta": 3, "rpc": 1},
    2: {"dphi_a": 9, "theta": 5, "ring1": 1, "fr": 1, "bend": 3, "dtheta": 3, "rpc": 1},
}  # fmt: skip
# Bits taken away one at a time, in this order, when the address must be narrower
# (the least informative first: the ring is nearly given by θ); then round robin over
# _SHRINK_ORDER, then whole fields in _DROP_ORDER.
_SHRINK_FIRST = ("ring1", "dtheta", "rpc", "fr", "dtheta", "theta", "dphi_c", "bend")
_SHRINK_ORDER = ("dtheta", "bend", "theta", "dphi_c", "dphi_b", "dphi_a")
_DROP_ORDER = ("rpc", "dtheta", "bend", "fr", "ring1", "sign_c", "theta")
_MIN_BITS = {"dphi_a": 2, "dphi_b": 2, "dphi_c": 2}
_DPHI_RANGE = {"dphi_a": 480.0, "dphi_b": 240.0, "dphi_c": 120.0}
_THETA_LO, _THETA_SPAN = 4.0, 88.0


def stations_of(mode: int) -> list[int]:
    """Stations (1-4) present in a mode, in order."""
    return [s for s in range(1, 5) if mode & (1 << (4 - s))]


def _roles_of(mode: int) -> list[str]:
    stations = stations_of(mode)
    return [r for r in _DEFAULT_BITS[len(stations)] if r != "ring1" or stations[0] == 1]


def _field_name(role: str, stations: list[int]) -> str:
    pair = {"dphi_a": 0, "dphi_b": 1, "sign_b": 1, "dphi_c": 2, "sign_c": 2}
    if role in pair:
        i = pair[role]
        return f"{role.split('_')[0]}_{stations[i]}{stations[i + 1]}"
    return role


def _field(role: str, bits: int, stations: list[int]) -> FieldPacking:
    name = _field_name(role, stations)
    if role.startswith("dphi"):
        edges = dphi_edges(bits, _DPHI_RANGE[role])
        return FieldPacking(name, bits, "dphi", edges, "1/60 deg", ROLES[role])
    if role == "theta":
        step = float(np.ceil(_THETA_SPAN / (1 << bits)))
        edges = linear_edges(bits, _THETA_LO, step)
        return FieldPacking(name, bits, "linear", edges, "0.285 deg", ROLES[role])
    if role in ("bend", "dtheta"):
        lo = 0.0 if bits == 1 else -float(1 << (bits - 1))
        unit = "0.285 deg" if role == "dtheta" else "pattern"
        return FieldPacking(
            name, bits, "linear", linear_edges(bits, lo, 1.0), unit, ROLES[role]
        )
    return FieldPacking(name, 1, "flag", linear_edges(1, 0.0, 1.0), "", ROLES[role])


def mode_packing(
    mode: int,
    address_bits: int = MAX_ADDRESS_BITS,
    field_bits: dict[str, int] | None = None,
) -> Packing:
    """The address layout of a mode.

    Parameters
    ----------
    mode : int
        Station pattern, with at least two stations.
    address_bits : int
        Widest address allowed. Bits are taken away until the fields fit: first one
        at a time from ring1, dtheta, rpc, fr, dtheta, θ, dphi_c and bend, then
        round robin from dtheta, bend, θ, dphi_c, dphi_b and dphi_a (down to two
        bits for a Δφ, one for the others), then whole fields are dropped (rpc,
        dtheta, bend, fr, ring1, sign_c, θ).
    field_bits : dict of str to int, optional
        Widths of single fields by role (see :data:`ROLES`), applied before the
        shrinking; 0 drops a field.

    Raises
    ------
    ConfigError
        The mode has fewer than two stations, a role is unknown or does not exist for
        the mode, or the fields cannot fit into ``address_bits``.
    """
    stations = stations_of(mode)
    if len(stations) < 2:
        raise ConfigError(
            f"mode {mode} has {len(stations)} station(s); a track needs two or more",
            key="algorithm.mode",
            hint="modes with a track: 3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15",
        )
    roles = _roles_of(mode)
    bits = {r: _DEFAULT_BITS[len(stations)][r] for r in roles}
    for role, width in (field_bits or {}).items():
        if role not in bits:
            raise ConfigError(
                f"mode {mode} has no address field '{role}'",
                key=f"algorithm.field_bits.{role}",
                hint=f"fields of mode {mode}: {', '.join(roles)}",
            )
        low = _MIN_BITS.get(role, 0)
        if not (low <= width <= 12) or (width > 1 and role not in _SHRINK_ORDER):
            raise ConfigError(
                f"field '{role}' cannot have {width} bits",
                key=f"algorithm.field_bits.{role}",
                hint="Δφ fields take 2-12 bits, θ/bend/dtheta 0-12, flags 0 or 1",
            )
        bits[role] = width
    _shrink(bits, address_bits, mode)
    fields = [_field(r, bits[r], stations) for r in roles if bits[r] > 0]
    return Packing(tuple(fields))


def _shrink(bits: dict[str, int], address_bits: int, mode: int) -> None:
    for role in _SHRINK_FIRST:
        if sum(bits.values()) <= address_bits:
            return
        if bits.get(role, 0) > _MIN_BITS.get(role, 0):
            bits[role] -= 1
    while sum(bits.values()) > address_bits:
        shrunk = False
        for role in _SHRINK_ORDER:
            if sum(bits.values()) <= address_bits:
                break
            if role in bits and bits[role] > _MIN_BITS.get(role, 1):
                bits[role] -= 1
                shrunk = True
        if shrunk:
            continue
        droppable = [r for r in _DROP_ORDER if bits.get(r, 0) > 0]
        if droppable:
            bits[droppable[0]] = 0
        else:
            raise ConfigError(
                f"the fields of mode {mode} need at least {sum(bits.values())} bits, "
                f"more than address_bits={address_bits}",
                key="algorithm.address_bits",
                hint="drop flags with field_bits (e.g. rpc: 0) or allow more bits",
            )


def _col(events: ak.Array, name: str) -> np.ndarray:
    return ak.to_numpy(events[name]).astype(np.float64)


def mode_raw_features(
    events: ak.Array, mode: int, packing: Packing
) -> tuple[np.ndarray, np.ndarray]:
    """Raw (uncompressed) address-field values of the tracks of one mode.

    Parameters
    ----------
    events : ak.Array
        Records with the fields of :func:`trigml_cms.emtf_sim.emtf_event_schema`.
    mode : int
    packing : Packing
        Layout from :func:`mode_packing` for the same mode.

    Returns
    -------
    values : ndarray, float64, shape (n_tracks, n_fields)
    rows : ndarray, int64
        Index of each track's event in ``events``.
    """
    stations = stations_of(mode)
    rows = np.flatnonzero(ak.to_numpy(events["mode"]) == mode)
    sub = events[rows]
    s = stations
    first = _col(sub, f"dphi{s[0]}{s[1]}")
    sign = np.where(first < 0, -1.0, 1.0)
    raw: dict[str, np.ndarray] = {f"dphi_{s[0]}{s[1]}": np.abs(first)}
    for i in (1, 2):
        if len(s) > i + 1:
            rel = _col(sub, f"dphi{s[i]}{s[i + 1]}") * sign
            raw[f"dphi_{s[i]}{s[i + 1]}"] = np.abs(rel)
            raw[f"sign_{s[i]}{s[i + 1]}"] = (rel < 0).astype(np.float64)
    raw["theta"] = _col(sub, f"theta{s[0]}")
    if s[0] == 1:
        raw["ring1"] = (_col(sub, "ring1") == 1).astype(np.float64)
    raw["fr"] = _col(sub, f"fr{s[0]}")
    raw["bend"] = _col(sub, f"bend{s[0]}") * sign
    raw["dtheta"] = _col(sub, f"dtheta{s[0]}{s[-1]}")
    rpc = np.zeros(len(rows))
    for st in s:
        rpc = np.maximum(rpc, _col(sub, f"rpc{st}"))
    raw["rpc"] = rpc
    values = np.stack([raw[name] for name in packing.names], axis=1)
    return values, rows.astype(np.int64)


def pt_from_invpt(invpt: np.ndarray) -> np.ndarray:
    """The hardware pT (GeV) of a predicted 1/pT: the nearest 0.5 GeV step.

    Steps run from 0.5 to 255.5 GeV (9 bits); a 1/pT at or below 1/255.5 per GeV
    saturates. This is the pT a lookup-table word holds, so the BDT and its table
    give the same decisions.
    """
    return invpt_to_pt_code(invpt).astype(np.float64) * PT_LSB_GEV


def threshold_for_turn_on(
    pt_l1: np.ndarray,
    pt_true: np.ndarray,
    at_pt: float,
    efficiency: float = 0.9,
    half_window: float = 1.0,
) -> float:
    """The highest L1 threshold whose turn-on reaches ``efficiency`` at ``at_pt``.

    Parameters
    ----------
    pt_l1 : ndarray
        Assigned pT per muon, GeV.
    pt_true : ndarray
        True pT per muon, GeV.
    at_pt : float
        True pT at which the efficiency is required, GeV.
    efficiency : float
    half_window : float
        Muons with |pT_true − at_pt| < half_window (GeV) measure the efficiency.

    Raises
    ------
    DataError
        Fewer than 20 muons lie in the window.
    """
    from trigml.metrics import threshold_for_efficiency

    window = np.abs(np.asarray(pt_true) - at_pt) < half_window
    if window.sum() < 20:
        raise DataError(
            f"only {int(window.sum())} muons with true pT within {half_window} GeV of "
            f"{at_pt} GeV; too few to place an L1 threshold",
            hint="simulate more events (n_events) or use a flat 1/pT sample",
        )
    return threshold_for_efficiency(np.asarray(pt_l1)[window], efficiency)


@dataclass
class AnalyticPt:
    """pT from |Δφ| between the first two stations: pT = A(θ)/|Δφ|.

    Attributes
    ----------
    theta_edges : ndarray
        Edges of the θ-code bins in which A is calibrated.
    constants : ndarray
        A per θ bin, in φ units × GeV.
    """

    theta_edges: np.ndarray
    constants: np.ndarray

    @classmethod
    def fit(
        cls,
        theta: np.ndarray,
        dphi: np.ndarray,
        pt_true: np.ndarray,
        pt_range: tuple[float, float] = (5.0, 40.0),
        n_bins: int = 16,
    ) -> AnalyticPt:
        """Calibrate A per θ bin as the median of |Δφ|·pT over muons in ``pt_range``.

        Parameters
        ----------
        theta : ndarray
            θ code of the first station.
        dphi : ndarray
            |Δφ| between the first two stations, φ units.
        pt_true : ndarray
            True pT, GeV.
        """
        edges = np.linspace(0.0, 128.0, n_bins + 1)
        use = (pt_true > pt_range[0]) & (pt_true < pt_range[1]) & (dphi > 0)
        if use.sum() < 50:
            raise DataError(
                f"only {int(use.sum())} muons between {pt_range[0]} and "
                f"{pt_range[1]} GeV to calibrate the analytic pT assignment"
            )
        cell = np.clip(np.digitize(theta[use], edges) - 1, 0, n_bins - 1)
        product = dphi[use] * pt_true[use]
        constants = np.full(n_bins, np.nan)
        for b in np.unique(cell):
            if (cell == b).sum() >= 20:
                constants[b] = np.median(product[cell == b])
        filled = np.flatnonzero(np.isfinite(constants))
        centres = 0.5 * (edges[1:] + edges[:-1])
        constants = np.interp(centres, centres[filled], constants[filled])
        return cls(edges, constants)

    def predict_pt(self, theta: np.ndarray, dphi: np.ndarray) -> np.ndarray:
        """Assigned pT (GeV) in hardware steps of 0.5 GeV, at most 255.5 GeV."""
        cell = np.clip(
            np.digitize(theta, self.theta_edges) - 1, 0, len(self.constants) - 1
        )
        pt = self.constants[cell] / np.maximum(np.abs(dphi), 0.5)
        return invpt_to_pt_code(1.0 / pt).astype(np.float64) * PT_LSB_GEV

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "theta_edges": self.theta_edges.tolist(),
            "constants": self.constants.tolist(),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> AnalyticPt:
        return cls(np.asarray(doc["theta_edges"]), np.asarray(doc["constants"]))


class EmtfParams(Params):
    """Parameters of ``cms.emtf``.

    Attributes
    ----------
    mode : int
        Station pattern this model serves (one BDT per mode, as in the hardware).
    address_bits : int
        Widest lookup-table address, ≤ 30.
    field_bits : dict of str to int
        Widths of single address fields by role (``dphi_a``, ``theta`` …; see
        :data:`ROLES`); 0 drops a field.
    """

    mode: int = Field(15, ge=3, le=15)
    address_bits: int = Field(MAX_ADDRESS_BITS, ge=4, le=MAX_ADDRESS_BITS)
    field_bits: dict[str, int] = Field(default_factory=dict)

    @field_validator("mode")
    @classmethod
    def _track_mode(cls, mode: int) -> int:
        if len(stations_of(mode)) < 2:
            raise ValueError(f"mode {mode} has fewer than two stations")
        return mode


class EmtfAlgorithm(Algorithm):
    """L1 endcap muon pT assignment for one mode (``cms.emtf``)."""

    name = "cms.emtf"

    def __init__(self, params: EmtfParams | None = None) -> None:
        self.params = params or EmtfParams()
        self.packing = mode_packing(
            self.params.mode, self.params.address_bits, self.params.field_bits
        )
        self.analytic: AnalyticPt | None = None

    # -- events → candidates -----------------------------------------------------

    def event_schema(self) -> EventSchema:
        return emtf_event_schema()

    def feature_specs(self) -> list[FeatureSpec]:
        """Names, units and meanings of the model inputs, in address order."""
        return [
            FeatureSpec(
                name=f.name,
                unit=f.unit,
                description=f"{f.description} ({f.bits}-bit {f.kind} code, decoded)",
            )
            for f in self.packing.fields
        ]

    def candidates(self, events: ak.Array) -> Candidates:
        """One candidate per event whose track has this algorithm's mode."""
        raw, rows = mode_raw_features(events, self.params.mode, self.packing)
        aux = {"dphi_first": raw[:, 0].astype(np.float32)}
        if "theta" in self.packing.names:
            aux["theta"] = raw[:, self.packing.names.index("theta")].astype(np.float32)
        fields = ak.fields(events)
        for name in ("mu_pt", "mu_eta", "category"):
            if name in fields:
                aux[name] = ak.to_numpy(events[name])[rows]
        return Candidates(
            features=self.packing.quantise(raw),
            event_index=rows,
            names=self.packing.names,
            aux=aux,
        )

    def training_set(self, source: Source, *, seed: int) -> TrainingSet:
        """Tracks of this mode with target 1/pT (1/GeV); calibrates the analytic pT."""
        parts = list(self._candidate_batches(source))
        if not parts or sum(len(p) for p in parts) == 0:
            raise DataError(
                f"{source.describe()} gave no tracks of mode {self.params.mode}",
                hint="check the source, or simulate more events",
            )
        features = np.concatenate([p.features for p in parts])
        aux = {k: np.concatenate([p.aux[k] for p in parts]) for k in parts[0].aux}
        if "mu_pt" not in aux:
            raise DataError(f"{source.describe()}: no true pT ('mu_pt') to train on")
        pt_true = aux["mu_pt"].astype(np.float64)
        self.analytic = AnalyticPt.fit(
            aux["theta"].astype(np.float64),
            aux["dphi_first"].astype(np.float64),
            pt_true,
        )
        aux["analytic_pt"] = self.analytic.predict_pt(aux["theta"], aux["dphi_first"])
        return TrainingSet(
            features=features,
            labels=(1.0 / pt_true).astype(np.float32),
            weights=np.ones(len(features), dtype=np.float32),
            features_spec=self.feature_specs(),
            task="regression",
            classes=[],
            aux=aux,
            description=f"{source.describe()}, mode {self.params.mode} tracks",
        )

    def _candidate_batches(self, source: Source) -> Iterator[Candidates]:
        columns = self.event_schema().columns()
        for batch in source.batches(columns):
            yield self.candidates(batch.events)

    def default_source(self, *, seed: int, n_events: int) -> Source:
        return EmtfSimSource(
            EmtfSimParams(n_events=n_events, seed=seed, spectrum="flat_invpt")
        )

    # -- scores → decisions ---------------------------------------------------------

    def decide(
        self, scores: np.ndarray, cands: Candidates, n_events: int, threshold: float
    ) -> np.ndarray:
        """Events whose track's assigned pT (1/score, GeV) is at least ``threshold``."""
        fired = np.zeros(n_events, dtype=bool)
        passed = pt_from_invpt(scores) >= threshold
        fired[cands.event_index[passed]] = True
        return fired

    def event_scores(
        self, scores: np.ndarray, cands: Candidates, n_events: int
    ) -> np.ndarray:
        """Assigned pT per event (GeV; -inf without a track of this mode)."""
        best = np.full(n_events, -np.inf, dtype=np.float64)
        np.maximum.at(best, cands.event_index, pt_from_invpt(scores))
        return best

    # -- training reports ------------------------------------------------------------

    def describe_card(
        self, card: ModelCard, valid: TrainingSet, scores: np.ndarray
    ) -> ModelCard:
        """Working points placing the 90% point of the turn-on at 10, 16 and 22 GeV.

        Each threshold is the highest hardware pT step that keeps 90% of the
        validation muons within 1 GeV of that true pT.
        """
        pt_true = np.asarray(valid.aux["mu_pt"], dtype=np.float64)
        pt_l1 = pt_from_invpt(scores)
        points = []
        for at in L1_THRESHOLDS:
            try:
                thr = threshold_for_turn_on(pt_l1, pt_true, at)
            except DataError as exc:
                log.warning("no working point at %g GeV: %s", at, exc)
                continue
            window = np.abs(pt_true - at) < 1.0
            points.append(
                WorkingPoint(
                    name=f"eff90at{int(at)}",
                    threshold=float(thr),
                    signal_efficiency=float((pt_l1[window] >= thr).mean()),
                )
            )
        metrics = dict(card.metrics)
        metrics["address"] = {
            "address_bits": self.packing.address_bits,
            "memory_bytes": self.packing.table_bytes(),
            "fields": self.packing.describe(),
        }
        if self.analytic is not None:
            metrics["analytic_calibration"] = self.analytic.to_dict()
        notes = [
            *card.notes,
            "The score is 1/pT in 1/GeV. Working-point thresholds are L1 pT "
            "thresholds in GeV: a track passes when 1/score >= threshold.",
            f"Inputs are the decoded {self.packing.address_bits}-bit address fields of "
            f"mode {self.params.mode}; a table filled from this model reproduces it.",
        ]
        return card.model_copy(
            update={"working_points": points, "metrics": metrics, "notes": notes}
        )

    def evaluate(
        self, valid: TrainingSet, scores: np.ndarray, out_dir: Path
    ) -> dict[str, Any]:
        """Resolution, turn-ons and the rate comparison with the analytic assignment.

        The rate is estimated on the validation muons reweighted from flat 1/pT to a
        prompt spectrum dN/dpT ∝ pT^-3 (so without the decay-in-flight and
        punch-through parts of a zero-bias sample); ``cms_targets.py`` measures it on
        the full zero-bias-like simulation.
        """
        from trigml_cms.emtf_report import compare_assignments

        pt_true = np.asarray(valid.aux["mu_pt"], dtype=np.float64)
        assigned = {"BDT": pt_from_invpt(scores)}
        if "analytic_pt" in valid.aux:
            assigned["analytic"] = np.asarray(valid.aux["analytic_pt"], np.float64)
        # flat in 1/pT means dN/dpT ∝ pT^-2; reweight to pT^-3
        weights = 1.0 / pt_true
        report = compare_assignments(
            assigned,
            pt_true,
            rate_assigned=assigned,
            rate_pt=pt_true,
            rate_weights=weights,
            out_dir=out_dir,
            label=f"EMTF mode {self.params.mode}",
        )
        report["rate_sample"] = "validation muons reweighted to dN/dpT ∝ pT^-3"
        return {"emtf_evaluation": report}
