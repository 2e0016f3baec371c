"""The ``cms.deepcsv`` algorithm: b-tagging from jet, track and vertex features.

Each jet becomes one candidate with 66 inputs: 12 jet-level, 8 of the secondary (or
pseudo-) vertex, 7 for each of the six tracks of highest signed 2D impact-parameter
significance, and the rapidity relative to the jet axis of four vertex tracks. Missing
tracks and vertices are filled with 0 (the counts tell the network they are missing).
The model is a multiclass network over b, bb, c and light; the b-tag discriminant is
P(b) + P(bb). :class:`CsvLikelihood` is the likelihood-ratio tagger on a few
high-level variables that preceded it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from pydantic import Field

from trigml.components import Algorithm, Candidates, Source, TrainingSet
from trigml.errors import DataError
from trigml.registry import Params
from trigml.schema.card import FeatureSpec, ModelCard, WorkingPoint
from trigml.schema.events import EventSchema
from trigml_cms.btag_sim import (
    FLAVOURS,
    BtagSimParams,
    BtagSimSource,
    FlavourMix,
    btag_event_schema,
)

__all__ = [
    "CLASSES",
    "FEATURES",
    "MISTAG_POINTS",
    "CsvLikelihood",
    "DeepCsvAlgorithm",
    "DeepCsvParams",
    "b_discriminant",
    "deepcsv_features",
    "tagging_performance",
]

log = logging.getLogger(__name__)

CLASSES = list(FLAVOURS)
#: Working points: name → light-jet mistag rate.
MISTAG_POINTS = {"loose": 0.10, "medium": 0.01, "tight": 0.001}
N_TRACKS, N_ETAREL = 6, 4
_CHARM_MASS = 1.5
_M_PI = 0.1396

_JET = [
    ("jet_pt", "GeV", "jet pT"),
    ("jet_abseta", "", "jet |η|"),
    ("n_tracks", "", "selected tracks"),
    ("n_sv", "", "secondary vertices (0 or 1)"),
    ("n_tracks_etarel", "", "tracks of the secondary vertex"),
    ("vertex_category", "", "0 vertex, 1 pseudo-vertex (≥2 tracks with S2D>2), 2 none"),
    ("track_jet_pt", "GeV", "pT of the sum of selected tracks"),
    ("track_sum_et_ratio", "", "pT(track sum) / pT(jet)"),
    ("track_sum_dr", "", "ΔR(track sum, jet axis)"),
    (
        "sip2d_val_above_charm",
        "cm",
        "2D IP of the track that lifts the mass above 1.5 GeV",
    ),
    ("sip2d_sig_above_charm", "", "its 2D IP significance"),
    ("sip3d_sig_above_charm", "", "its 3D IP significance"),
]
_SV = [
    ("sv_mass", "GeV", "vertex (or pseudo-vertex) mass"),
    ("sv_ntracks", "", "vertex (or pseudo-vertex) tracks"),
    ("sv_energy_ratio", "", "E(vertex tracks) / E(all tracks)"),
    ("sv_flight2d", "cm", "transverse flight distance"),
    ("sv_flight2d_sig", "", "its significance"),
    ("sv_flight3d", "cm", "3D flight distance"),
    ("sv_flight3d_sig", "", "its significance"),
    ("sv_dr", "", "ΔR(flight direction, jet axis)"),
]
_TRACK = [
    ("sip2d_sig", "", "signed 2D IP significance"),
    ("sip3d_sig", "", "signed 3D IP significance"),
    ("pt_rel", "GeV", "momentum ⊥ to the jet axis"),
    ("delta_r", "", "ΔR to the jet axis"),
    ("decay_length", "cm", "decay length along the jet axis"),
    ("jet_dist", "cm", "distance to the jet axis"),
    ("pt_ratio", "", "pt_rel / p"),
]
# Inputs are clipped to these ranges so that rare extremes do not dominate scaling.
_CLIP = {
    "sip2d_sig": 80.0,
    "sip3d_sig": 80.0,
    "sip2d_val_above_charm": 0.2,
    "sv_flight2d_sig": 400.0,
    "sv_flight3d_sig": 400.0,
    "decay_length": 5.0,
    "jet_pt": 1000.0,
    "track_jet_pt": 1000.0,
    "pt_rel": 20.0,
}


def _feature_table() -> list[tuple[str, str, str]]:
    rows = list(_JET) + list(_SV)
    for i in range(N_TRACKS):
        rows += [(f"trk{i}_{n}", u, f"track {i} by S2D: {d}") for n, u, d in _TRACK]
    rows += [
        (
            f"etarel{i}",
            "",
            f"η relative to the jet axis of vertex track {i} (ascending)",
        )
        for i in range(N_ETAREL)
    ]
    return rows


#: The 66 inputs in model order: (name, unit, description).
FEATURES = _feature_table()


def _np(array: ak.Array, dtype: type = np.float64) -> np.ndarray:
    return ak.to_numpy(array).astype(dtype)


def _top(values: ak.Array, k: int) -> np.ndarray:
    """First ``k`` entries of each list, 0 where a list is shorter; shape (n, k)."""
    return ak.to_numpy(ak.fill_none(ak.pad_none(values, k, clip=True), 0.0)).astype(
        np.float64
    )


def _above_charm(tracks: ak.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IP of the first track (by S2D) at which the running mass exceeds 1.5 GeV."""
    counts = _np(ak.num(tracks), np.int64)
    n = len(counts)
    pt = _np(ak.flatten(tracks.pt))
    eta = _np(ak.flatten(tracks.eta))
    phi = _np(ak.flatten(tracks.phi))
    mom = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)
    four = np.column_stack([np.sqrt(np.sum(mom**2, axis=1) + _M_PI**2), mom])
    total = np.cumsum(four, axis=0)
    starts = np.cumsum(counts) - counts
    before = np.vstack([np.zeros((1, 4)), total])[np.repeat(starts, counts)]
    running = total - before
    mass2 = running[:, 0] ** 2 - np.sum(running[:, 1:] ** 2, axis=1)
    crossed = np.flatnonzero(mass2 > _CHARM_MASS**2)
    jet = np.repeat(np.arange(n), counts)[crossed]
    first = crossed[np.r_[True, jet[1:] != jet[:-1]]] if len(crossed) else crossed
    owner = np.repeat(np.arange(n), counts)[first]
    out = [np.zeros(n) for _ in range(3)]
    for arr, name in zip(out, ("sip2d", "sip2d_sig", "sip3d_sig")):
        arr[owner] = _np(ak.flatten(tracks[name]))[first]
    return out[0], out[1], out[2]


def _track_sum(events: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    t = events.tracks
    px = _np(ak.sum(t.pt * np.cos(t.phi), axis=1))
    py = _np(ak.sum(t.pt * np.sin(t.phi), axis=1))
    pz = _np(ak.sum(t.pt * np.sinh(t.eta), axis=1))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), 0.0)
    phi = np.arctan2(py, px)
    dphi = (phi - _np(events.jet_phi) + np.pi) % (2 * np.pi) - np.pi
    dr = np.where(pt > 0, np.hypot(eta - _np(events.jet_eta), dphi), 0.0)
    return pt, dr


def _pseudo_vertex(tracks: ak.Array) -> dict[str, np.ndarray]:
    """Mass, tracks and energy share of the tracks with S2D > 2 (a pseudo-vertex)."""
    sel = tracks[tracks.sip2d_sig > 2.0]
    px = sel.pt * np.cos(sel.phi)
    py = sel.pt * np.sin(sel.phi)
    pz = sel.pt * np.sinh(sel.eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + _M_PI**2)
    m2 = (
        _np(ak.sum(e, axis=1)) ** 2
        - (_np(ak.sum(px, axis=1)) ** 2 + _np(ak.sum(py, axis=1)) ** 2)
        - _np(ak.sum(pz, axis=1)) ** 2
    )
    all_e = np.sqrt((tracks.pt * np.cosh(tracks.eta)) ** 2 + _M_PI**2)
    e_all = _np(ak.sum(all_e, axis=1))
    return {
        "n": _np(ak.num(sel)),
        "mass": np.sqrt(np.maximum(m2, 0.0)),
        "energy_ratio": _np(ak.sum(e, axis=1)) / np.maximum(e_all, 1e-9),
    }


def deepcsv_features(events: ak.Array) -> np.ndarray:
    """The 66 inputs of :data:`FEATURES` for every jet, float32 (n_jets, 66).

    Parameters
    ----------
    events : ak.Array
        One jet per record with the fields of
        :func:`trigml_cms.btag_sim.btag_event_schema`.
    """
    tracks = events.tracks
    order = ak.argsort(tracks.sip2d_sig, axis=1, ascending=False)
    ranked = tracks[order]
    n_tracks = _np(ak.num(tracks))
    found = _np(events.sv_found) > 0
    pseudo = _pseudo_vertex(tracks)
    category = np.where(found, 0.0, np.where(pseudo["n"] >= 2, 1.0, 2.0))
    is_pseudo = category == 1
    track_pt, track_dr = _track_sum(events)
    val2, sig2, sig3 = _above_charm(ranked)
    in_sv = tracks[tracks.in_sv > 0]
    etarel = ak.sort(in_sv.eta_rel, axis=1)

    cols: dict[str, np.ndarray] = {
        "jet_pt": _np(events.jet_pt),
        "jet_abseta": np.abs(_np(events.jet_eta)),
        "n_tracks": n_tracks,
        "n_sv": found.astype(np.float64),
        "n_tracks_etarel": _np(ak.num(in_sv)),
        "vertex_category": category,
        "track_jet_pt": track_pt,
        "track_sum_et_ratio": track_pt / np.maximum(_np(events.jet_pt), 1e-9),
        "track_sum_dr": track_dr,
        "sip2d_val_above_charm": val2,
        "sip2d_sig_above_charm": sig2,
        "sip3d_sig_above_charm": sig3,
    }
    for name in ("sv_mass", "sv_energy_ratio"):
        key = name.removeprefix("sv_")
        cols[name] = np.where(
            found, _np(events[name]), np.where(is_pseudo, pseudo[key], 0.0)
        )
    cols["sv_ntracks"] = np.where(
        found, _np(events.sv_ntracks), np.where(is_pseudo, pseudo["n"], 0.0)
    )
    for name in (
        "sv_flight2d",
        "sv_flight2d_sig",
        "sv_flight3d",
        "sv_flight3d_sig",
        "sv_dr",
    ):
        cols[name] = np.where(found, _np(events[name]), 0.0)
    for name, _, _ in _TRACK:
        block = _top(ranked[name], N_TRACKS)
        for i in range(N_TRACKS):
            cols[f"trk{i}_{name}"] = block[:, i]
    block = _top(etarel, N_ETAREL)
    for i in range(N_ETAREL):
        cols[f"etarel{i}"] = block[:, i]

    matrix = np.stack([cols[name] for name, _, _ in FEATURES], axis=1)
    for j, (name, _, _) in enumerate(FEATURES):
        limit = _CLIP.get(name.split("_", 1)[1] if name.startswith("trk") else name)
        if limit is not None:
            matrix[:, j] = np.clip(matrix[:, j], -limit, limit)
    return matrix.astype(np.float32)


def b_discriminant(scores: np.ndarray) -> np.ndarray:
    """P(b) + P(bb) from class probabilities (n, 4); a 1D array passes through."""
    s = np.asarray(scores)
    if s.ndim == 1:
        return s
    if s.ndim != 2 or s.shape[1] != len(CLASSES):
        raise DataError(
            f"b-tag scores must have shape (n, {len(CLASSES)}) for classes "
            f"{CLASSES}, got {s.shape}"
        )
    return s[:, 0] + s[:, 1]


# -- the likelihood-ratio baseline -----------------------------------------------------

#: Variables of the likelihood ratio, by vertex category.
CSV_VARIABLES = {
    0: ["sv_mass", "sv_ntracks", "sv_energy_ratio", "sv_flight2d_sig", "etarel0",
        "trk0_sip3d_sig", "trk1_sip3d_sig", "trk2_sip3d_sig", "sip3d_sig_above_charm"],
    1: ["sv_mass", "sv_ntracks", "sv_energy_ratio",
        "trk0_sip3d_sig", "trk1_sip3d_sig", "trk2_sip3d_sig", "sip3d_sig_above_charm"],
    2: ["trk0_sip3d_sig", "trk1_sip3d_sig", "trk2_sip3d_sig"],
}  # fmt: skip


@dataclass
class CsvLikelihood:
    """A CSV-like tagger: per vertex category, a product of 1D likelihood ratios.

    The background is the mixture 0.75·light + 0.25·c, as the CSV tagger weighted
    them. Each variable's density is a histogram in 20 quantile bins (Laplace
    smoothed); the output is the sigmoid of the summed log-likelihood ratio.
    """

    n_bins: int = 20
    light_weight: float = 0.75
    tables: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = field(
        default_factory=dict
    )
    category_llr: dict[int, float] = field(default_factory=dict)

    def fit(
        self, features: np.ndarray, names: list[str], labels: np.ndarray
    ) -> CsvLikelihood:
        """Fill the histograms from labelled jets (labels: 0 b, 1 bb, 2 c, 3 light)."""
        col = {n: i for i, n in enumerate(names)}
        cat = features[:, col["vertex_category"]].astype(int)
        is_b, is_c, is_l = labels <= 1, labels == 2, labels == 3
        for c, variables in CSV_VARIABLES.items():
            in_c = cat == c
            self.category_llr[c] = self._llr(
                in_c[is_b].mean(), in_c[is_c].mean(), in_c[is_l].mean()
            )
            self.tables[c] = {}
            for v in variables:
                x = features[in_c, col[v]].astype(np.float64)
                edges = np.unique(np.quantile(x, np.linspace(0, 1, self.n_bins + 1)))
                if len(edges) < 2:
                    continue
                pdf = [
                    self._density(x[(lab)[in_c]], edges) for lab in (is_b, is_c, is_l)
                ]
                self.tables[c][v] = (edges, self._llr(*pdf))
        return self

    def _density(self, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
        cell = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        counts = np.bincount(cell, minlength=len(edges) - 1) + 1.0
        return counts / counts.sum()

    def _llr(self, b: Any, c: Any, light: Any) -> Any:
        bkg = self.light_weight * np.asarray(light) + (
            1 - self.light_weight
        ) * np.asarray(c)
        return np.log(np.maximum(b, 1e-6) / np.maximum(bkg, 1e-6))

    def predict(self, features: np.ndarray, names: list[str]) -> np.ndarray:
        """Discriminant in (0, 1) per jet."""
        if not self.tables:
            raise DataError("the CSV-like likelihood has not been fitted")
        col = {n: i for i, n in enumerate(names)}
        cat = features[:, col["vertex_category"]].astype(int)
        llr = np.zeros(len(features))
        for c, table in self.tables.items():
            in_c = cat == c
            llr[in_c] += self.category_llr[c]
            for v, (edges, ratio) in table.items():
                x = features[in_c, col[v]]
                cell = np.clip(
                    np.searchsorted(edges, x, side="right") - 1, 0, len(ratio) - 1
                )
                llr[in_c] += ratio[cell]
        return 1.0 / (1.0 + np.exp(-llr))


# -- performance -----------------------------------------------------------------------


def tagging_performance(
    discriminants: Mapping[str, np.ndarray],
    labels: np.ndarray,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """ROC curves and working points of b-tag discriminants.

    Parameters
    ----------
    discriminants : mapping of str to ndarray
        Discriminant per jet by tagger name (higher is more b-like).
    labels : ndarray
        Flavour per jet (0 b, 1 bb, 2 c, 3 light); b and bb count as b.
    out_dir : Path, optional
        Where to write ``roc_b_vs_light.png`` and ``roc_b_vs_c.png``.

    Returns
    -------
    dict
        Per tagger: ``auc_b_vs_light``, ``auc_b_vs_c`` and, per working point
        (:data:`MISTAG_POINTS`), the threshold, b efficiency, c and light mistag.
    """
    from trigml.metrics import auc, roc_curve, threshold_for_rate

    labels = np.asarray(labels)
    is_b, is_c, is_l = labels <= 1, labels == 2, labels == 3
    out: dict[str, Any] = {}
    rocs: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"light": {}, "c": {}}
    for name, disc in discriminants.items():
        d = np.asarray(disc, dtype=np.float64)
        entry: dict[str, Any] = {}
        for bkg_name, bkg in (("light", is_l), ("c", is_c)):
            rows = is_b | bkg
            if not bkg.any() or not is_b.any():
                continue
            entry[f"auc_b_vs_{bkg_name}"] = auc(d[rows], is_b[rows])
            fpr, tpr, _ = roc_curve(d[rows], is_b[rows])
            rocs[bkg_name][f"{name} (AUC {entry[f'auc_b_vs_{bkg_name}']:.3f})"] = (
                fpr,
                tpr,
            )
        points = {}
        for wp, mistag in MISTAG_POINTS.items():
            if not is_l.any():
                break
            # the loosest cut whose light mistag does not exceed the target
            thr = threshold_for_rate(d[is_l], mistag, 1.0)
            points[wp] = {
                "light_mistag_target": mistag,
                "threshold": thr,
                "b_efficiency": float((d[is_b] >= thr).mean()),
                "c_mistag": float((d[is_c] >= thr).mean()) if is_c.any() else None,
                "light_mistag": float((d[is_l] >= thr).mean()),
            }
        entry["working_points"] = points
        out[name] = entry
    if out_dir is not None:
        from trigml.plots import plot_roc

        out_dir.mkdir(parents=True, exist_ok=True)
        out["plots"] = [
            str(plot_roc(c, out_dir / f"roc_b_vs_{k}.png", title=f"b vs {k} jets"))
            for k, c in rocs.items()
            if c
        ]
    return out


# -- the algorithm ---------------------------------------------------------------------


class DeepCsvParams(Params):
    """Parameters of ``cms.deepcsv``.

    Attributes
    ----------
    composition : FlavourMix
        Flavour fractions of the built-in simulation used when a config names no
        source.
    """

    composition: FlavourMix = Field(default_factory=FlavourMix)


class DeepCsvAlgorithm(Algorithm):
    """DeepCSV-style b-tagging of jets (``cms.deepcsv``)."""

    name = "cms.deepcsv"

    def __init__(self, params: DeepCsvParams | None = None) -> None:
        self.params = params or DeepCsvParams()

    def event_schema(self) -> EventSchema:
        return btag_event_schema()

    def feature_specs(self) -> list[FeatureSpec]:
        """Names, units and meanings of the 66 inputs."""
        return [FeatureSpec(name=n, unit=u, description=d) for n, u, d in FEATURES]

    def candidates(self, events: ak.Array) -> Candidates:
        """One candidate per jet (one jet per event)."""
        n = len(events)
        aux = {"jet_pt": _np(events.jet_pt, np.float32)}
        if "flavour" in ak.fields(events):
            aux["flavour"] = _np(events.flavour, np.int64)
        return Candidates(
            features=deepcsv_features(events)
            if n
            else np.zeros((0, len(FEATURES)), np.float32),
            event_index=np.arange(n, dtype=np.int64),
            names=[f[0] for f in FEATURES],
            aux=aux,
        )

    def training_set(self, source: Source, *, seed: int) -> TrainingSet:
        """Jets labelled by flavour: 0 b, 1 bb, 2 c, 3 light."""
        columns = self.event_schema().columns()
        parts = [self.candidates(b.events) for b in source.batches(columns)]
        if not parts or sum(len(p) for p in parts) == 0:
            raise DataError(f"{source.describe()} gave no jets")
        if "flavour" not in parts[0].aux:
            raise DataError(f"{source.describe()}: no truth flavour to train on")
        features = np.concatenate([p.features for p in parts])
        aux = {k: np.concatenate([p.aux[k] for p in parts]) for k in parts[0].aux}
        return TrainingSet(
            features=features,
            labels=aux["flavour"].astype(np.int64),
            weights=np.ones(len(features), dtype=np.float32),
            features_spec=self.feature_specs(),
            task="multiclass",
            classes=CLASSES,
            aux=aux,
            description=f"{source.describe()}, one jet per event",
        )

    def default_source(self, *, seed: int, n_events: int) -> Source:
        return BtagSimSource(
            BtagSimParams(
                n_events=n_events, seed=seed, composition=self.params.composition
            )
        )

    def discriminant(self, scores: np.ndarray) -> np.ndarray:
        """The b-tag discriminant P(b) + P(bb) of class probabilities."""
        return b_discriminant(scores)

    def decide(
        self, scores: np.ndarray, cands: Candidates, n_events: int, threshold: float
    ) -> np.ndarray:
        """Events whose jet has P(b) + P(bb) ≥ ``threshold``."""
        fired = np.zeros(n_events, dtype=bool)
        fired[cands.event_index[b_discriminant(scores) >= threshold]] = True
        return fired

    def event_scores(
        self, scores: np.ndarray, cands: Candidates, n_events: int
    ) -> np.ndarray:
        best = np.full(n_events, -np.inf, dtype=np.float64)
        np.maximum.at(
            best, cands.event_index, b_discriminant(scores).astype(np.float64)
        )
        return best

    def describe_card(
        self, card: ModelCard, valid: TrainingSet, scores: np.ndarray
    ) -> ModelCard:
        """Working points loose/medium/tight at 10, 1 and 0.1% light mistag."""
        perf = tagging_performance({"model": b_discriminant(scores)}, valid.labels)
        points = [
            WorkingPoint(
                name=wp,
                threshold=float(v["threshold"]),
                signal_efficiency=v["b_efficiency"],
                background_efficiency=v["light_mistag"],
            )
            for wp, v in perf["model"]["working_points"].items()
        ]
        notes = [
            *card.notes,
            "Working-point thresholds cut on the discriminant P(b) + P(bb); signal "
            "efficiency is the b-jet (b and bb) efficiency, background efficiency the "
            "light-jet mistag rate.",
        ]
        metrics = {**card.metrics, "tagging": perf["model"]}
        return card.model_copy(
            update={"working_points": points, "notes": notes, "metrics": metrics}
        )

    def evaluate(
        self, valid: TrainingSet, scores: np.ndarray, out_dir: Path
    ) -> dict[str, Any]:
        """ROC curves and working points against the CSV-like likelihood ratio.

        The likelihood is filled on the first half of the validation jets; both
        taggers are compared on the second half.
        """
        n = len(valid)
        half = np.arange(n) >= n // 2
        csv = CsvLikelihood().fit(
            valid.features[~half], valid.names, valid.labels[~half]
        )
        disc = {
            "DeepCSV": b_discriminant(scores)[half],
            "CSV-like LR": csv.predict(valid.features[half], valid.names),
        }
        perf = tagging_performance(disc, valid.labels[half], out_dir)
        gain = None
        if "medium" in perf["DeepCSV"]["working_points"]:
            gain = (
                perf["DeepCSV"]["working_points"]["medium"]["b_efficiency"]
                - perf["CSV-like LR"]["working_points"]["medium"]["b_efficiency"]
            )
        return {"deepcsv_evaluation": perf, "b_efficiency_gain_at_1pc_light": gain}
