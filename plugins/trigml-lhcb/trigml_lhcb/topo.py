"""The LHCb topological trigger: one classifier on 2-, 3- and 4-track vertices.

Candidates are the secondary vertices of an event (``svs``), described by the
topological features; an event fires when any of its candidates passes. One model
serves all body counts, with the number of tracks as a feature: the b-hadron
signature (displacement, corrected mass, hard tracks) is shared between body counts,
so pooling them gives every tree all the statistics, and a single threshold sets the
rate of the whole line instead of three thresholds that must be balanced by hand.

Training rows are the candidates made only of tracks from the signal b decay in
signal events, and every candidate of minimum-bias events. Candidates of signal modes
held out of training, and true b-hadron candidates of minimum bias, ride along with
weight 0: no family learns from them, but their scores reach the validation figures,
which are event-level (efficiency per mode, rate on minimum bias).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from pydantic import Field, field_validator

from trigml.components import Algorithm, Candidates, Source, TrainingSet
from trigml.errors import ConfigError, DataError
from trigml.registry import Params, suggest
from trigml.schema.card import FeatureSpec, ModelCard, WorkingPoint
from trigml.schema.events import CollectionSpec, EventSchema, FieldSpec
from trigml_lhcb.modes import DALITZ_MODE, MODES, mode_id, mode_names

__all__ = [
    "DEFAULT_TOPO_FEATURES",
    "SV_SPECS",
    "TopoAlgorithm",
    "TopoParams",
    "event_level",
]

log = logging.getLogger(__name__)

#: Every field of a secondary-vertex candidate: dtype, unit, range, meaning.
SV_SPECS: dict[str, FieldSpec] = {
    "n_tracks": FieldSpec(
        dtype="int8", min=2, max=4, description="tracks in the vertex"
    ),
    "sumpt": FieldSpec(unit="GeV", min=0, description="scalar sum of track pT"),
    "minpt": FieldSpec(unit="GeV", min=0, description="lowest track pT"),
    "mass": FieldSpec(
        unit="GeV", min=0, description="invariant mass, pion mass for every track"
    ),
    "mcorr": FieldSpec(
        unit="GeV",
        min=0,
        description="corrected mass sqrt(m² + p⊥²) + p⊥, p⊥ the momentum "
        "transverse to the flight direction",
    ),
    "doca": FieldSpec(
        unit="mm", min=0, description="largest distance of closest approach of a pair"
    ),
    "vchi2": FieldSpec(min=0, description="vertex-fit χ² (ndof = 2n - 3)"),
    "ipchi2": FieldSpec(
        min=0, description="χ² of the vertex impact parameter to its primary vertex"
    ),
    "fdchi2": FieldSpec(
        min=0, description="χ² of the flight distance from its primary vertex"
    ),
    "n_ipchi2_gt16": FieldSpec(
        dtype="int8", min=0, max=4, description="tracks with IP χ² > 16"
    ),
    "eta": FieldSpec(description="pseudorapidity of the vertex momentum"),
    "pt": FieldSpec(unit="GeV", min=0, description="transverse momentum of the vertex"),
    "fd": FieldSpec(unit="mm", min=0, description="flight distance"),
    "dira": FieldSpec(
        min=-1, max=1, description="cosine of the angle between momentum and flight"
    ),
}

#: The model's inputs by default: the topological features with the corrected mass
#: but without the vertex mass, which would let the classifier learn the narrow peak
#: of fully reconstructed training modes (see docs/algorithms/lhcb.md).
DEFAULT_TOPO_FEATURES = [
    "sumpt",
    "minpt",
    "mcorr",
    "doca",
    "vchi2",
    "ipchi2",
    "fdchi2",
    "n_ipchi2_gt16",
    "eta",
    "n_tracks",
]

#: Truth fields of the built-in simulation that training reads.
_TRUTH_EVENT = (
    "event_id",
    "is_signal",
    "mode",
    "signal_reco",
    "b_pt",
    "b_decay_time",
    "dalitz_m12sq",
    "dalitz_m23sq",
)
_TRUTH_SV = ("svs.from_signal", "svs.truth")


def _check_modes(names: list[str], key: str) -> list[str]:
    for name in names:
        if name not in MODES:
            close = suggest(name, list(MODES))
            raise ConfigError(
                f"unknown LHCb signal mode '{name}'"
                + (f"; did you mean '{close}'?" if close else ""),
                key=key,
                hint=f"valid modes: {', '.join(MODES)}",
            )
    return names


class TopoParams(Params):
    """Parameters of ``lhcb.topo``.

    Attributes
    ----------
    features : list of str
        Candidate fields fed to the model (keys of :data:`SV_SPECS`).
    body_counts : list of int
        Candidate sizes used, among 2, 3 and 4 tracks.
    train_modes : list of str, optional
        Signal modes trained on; by default those not flagged ``held_out``.
    eval_modes : list of str, optional
        Signal modes generated and evaluated; all modes by default.
    minbias_fraction : float
        Share of minimum-bias events in the built-in simulation.
    input_rate_hz : float, optional
        Rate entering the line, for working points; the training config's
        ``input_rate_hz`` (1 MHz by default) when absent.
    target_rates_hz : list of float
        Output rates of the event-level working points written to the card.
    reference_rate_hz : float
        Rate at which per-mode efficiencies are summarised.
    flatness_mode : str
        Three-body mode whose Dalitz plane the flatness figures use.
    pv_mean : float, optional
        Mean number of primary vertices of the built-in simulation.
    """

    features: list[str] = Field(default_factory=lambda: list(DEFAULT_TOPO_FEATURES))
    body_counts: list[int] = Field(default_factory=lambda: [2, 3, 4])
    train_modes: list[str] | None = None
    eval_modes: list[str] | None = None
    minbias_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    input_rate_hz: float | None = Field(None, gt=0)
    target_rates_hz: list[float] = Field(
        default_factory=lambda: [5.0e3, 1.0e4, 2.0e4, 5.0e4]
    )
    reference_rate_hz: float = Field(1.0e4, gt=0)
    flatness_mode: str = DALITZ_MODE
    pv_mean: float | None = Field(None, gt=0)

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in SV_SPECS:
                close = suggest(name, list(SV_SPECS))
                hint = f"; did you mean '{close}'?" if close else ""
                raise ValueError(
                    f"unknown candidate feature '{name}'{hint} "
                    f"(valid: {', '.join(SV_SPECS)})"
                )
        if len(set(value)) != len(value) or not value:
            raise ValueError("features must be a non-empty list without repeats")
        return value

    @field_validator("body_counts")
    @classmethod
    def _known_counts(cls, value: list[int]) -> list[int]:
        if not value or not set(value) <= {2, 3, 4}:
            raise ValueError(f"body_counts must be a subset of [2, 3, 4], got {value}")
        return sorted(set(value))


class TopoAlgorithm(Algorithm):
    """The topological trigger (``lhcb.topo``)."""

    name = "lhcb.topo"

    def __init__(self, params: TopoParams | None = None) -> None:
        self.params = params or TopoParams()
        p = self.params
        self.train_modes = _check_modes(
            list(p.train_modes)
            if p.train_modes is not None
            else mode_names(held_out=False),
            "algorithm.params.train_modes",
        )
        self.eval_modes = _check_modes(
            list(p.eval_modes) if p.eval_modes is not None else list(MODES),
            "algorithm.params.eval_modes",
        )
        missing = [m for m in self.train_modes if m not in self.eval_modes]
        self.eval_modes += missing
        _check_modes([p.flatness_mode], "algorithm.params.flatness_mode")

    # -- candidates ---------------------------------------------------------------

    def event_schema(self) -> EventSchema:
        """The ``svs`` fields the model reads, plus ``n_tracks``."""
        names = dict.fromkeys([*self.params.features, "n_tracks"])
        return EventSchema(
            name=self.name,
            collections={
                "svs": CollectionSpec(
                    fields={n: SV_SPECS[n] for n in names},
                    description="secondary-vertex candidates of 2, 3 or 4 tracks",
                )
            },
        )

    def candidates(self, events: ak.Array) -> Candidates:
        """Flatten the secondary vertices of the chosen body counts into a matrix.

        Parameters
        ----------
        events : ak.Array
            Records with a jagged ``svs`` collection.

        Returns
        -------
        Candidates
            Features in the order of ``params.features``; ``aux`` holds
            ``n_tracks`` and, when the events carry them, the truth fields
            ``from_signal`` and ``truth``.
        """
        if "svs" not in ak.fields(events):
            raise DataError(
                f"lhcb.topo needs a 'svs' collection; the events have: "
                f"{', '.join(ak.fields(events)) or 'no fields'}",
                hint="map your vertex branches onto 'svs' with the source's aliases",
            )
        svs = events["svs"]
        counts = ak.to_numpy(ak.num(svs, axis=1)).astype(np.int64)
        n_tracks = ak.to_numpy(ak.flatten(svs["n_tracks"])).astype(np.int8)
        keep = np.isin(n_tracks, self.params.body_counts)
        event_index = np.repeat(np.arange(len(events), dtype=np.int64), counts)[keep]

        names = self.params.features
        features = np.empty((int(keep.sum()), len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            column = ak.to_numpy(ak.flatten(svs[name]))
            features[:, j] = column[keep]
        aux: dict[str, np.ndarray] = {"n_tracks": n_tracks[keep]}
        for name in ("from_signal", "truth"):
            if name in ak.fields(svs):
                aux[name] = ak.to_numpy(ak.flatten(svs[name]))[keep]
        return Candidates(features, event_index, list(names), aux)

    def default_source(self, *, seed: int, n_events: int) -> Source:
        """The built-in simulation: signal of every evaluated mode and minimum bias."""
        from trigml_lhcb.simulation import LHCbSimSource

        return LHCbSimSource(
            n_events=n_events,
            seed=seed,
            kind="signal-mix",
            modes=self.eval_modes,
            minbias_fraction=self.params.minbias_fraction,
            pv_mean=self.params.pv_mean,
        )

    # -- training -----------------------------------------------------------------

    def training_set(self, source: Source, *, seed: int) -> TrainingSet:
        """Signal candidates of the evaluated modes and minimum-bias candidates.

        Labels are 1 for candidates made only of tracks from the signal b decay,
        0 for every candidate of a minimum-bias event. Weights give each trained
        mode the same total, signal and background the same total, and 0 to held-out
        modes and to true b-hadron candidates of minimum bias. ``aux`` carries the
        event number (``group``, so that a split keeps events whole), the mode, decay
        time, b pT, Dalitz variables, truth and the event counts that turn
        validation rows into event-level efficiencies and rates.
        """
        columns = [*self.event_schema().columns(), *_TRUTH_EVENT, *_TRUTH_SV]
        parts: list[dict[str, np.ndarray]] = []
        n_minbias = 0
        n_reco = dict.fromkeys(self.eval_modes, 0)
        eval_ids = np.array([mode_id(m) for m in self.eval_modes])
        try:
            for batch in source.batches(columns):
                part, n_mb, reco = self._batch_rows(batch.events, eval_ids)
                parts.append(part)
                n_minbias += n_mb
                for name in n_reco:
                    n_reco[name] += reco.get(mode_id(name), 0)
        except DataError as exc:
            raise DataError(
                f"lhcb.topo cannot build a training set from {source.describe()}: "
                f"{exc.message}",
                hint="training needs the truth of the LHCb simulation; use the "
                "built-in source or files from 'trigml generate lhcb.sim'",
            ) from None

        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if not rows["label"].any() or rows["label"].all():
            raise DataError(
                f"{source.describe()} gave "
                f"{int(rows['label'].sum())} signal and "
                f"{int((~rows['label']).sum())} background candidates; both are needed",
                hint="use kind 'signal-mix' or add minimum-bias events",
            )
        weights = self._weights(rows)
        rows["events_per_group"] = _events_per_group(rows, n_minbias, n_reco)
        features = rows.pop("features")
        labels = rows.pop("label").astype(np.int64)
        spec = [
            FeatureSpec(
                name=n, unit=SV_SPECS[n].unit, description=SV_SPECS[n].description
            )
            for n in self.params.features
        ]
        n_sig = int(labels.sum())
        description = (
            f"{source.describe()}: {n_sig} signal candidates "
            f"(trained on {', '.join(self.train_modes)}), {len(labels) - n_sig} "
            f"minimum-bias candidates from {n_minbias} events; body counts "
            f"{self.params.body_counts}"
        )
        log.info(description)
        return TrainingSet(
            features=features,
            labels=labels,
            weights=weights,
            features_spec=spec,
            aux=rows,
            description=description,
        )

    def _batch_rows(
        self, events: ak.Array, eval_ids: np.ndarray
    ) -> tuple[dict[str, np.ndarray], int, dict[int, int]]:
        """Training rows of one batch, its minimum-bias count and reco counts."""
        cands = self.candidates(events)
        if "from_signal" not in cands.aux or "truth" not in cands.aux:
            raise DataError("the events have no 'svs.from_signal' or 'svs.truth'")
        ev = {k: ak.to_numpy(events[k]) for k in _TRUTH_EVENT}
        ei = cands.event_index
        is_sig_event = ev["is_signal"].astype(bool)
        mode = ev["mode"].astype(np.int16)
        signal = cands.aux["from_signal"].astype(bool) & is_sig_event[ei]
        signal &= np.isin(mode[ei], eval_ids)
        keep = signal | ~is_sig_event[ei]

        rows_ev = ei[keep]
        flat_id = mode_id(self.params.flatness_mode)
        part = {
            "features": cands.features[keep],
            "label": signal[keep],
            "group": ev["event_id"].astype(np.int64)[rows_ev],
            "mode": np.where(is_sig_event[rows_ev], mode[rows_ev], -1).astype(np.int16),
            "is_minbias": ~is_sig_event[rows_ev],
            "signal_reco": ev["signal_reco"].astype(bool)[rows_ev],
            "n_tracks": cands.aux["n_tracks"][keep],
            "truth": cands.aux["truth"].astype(np.int8)[keep],
            "b_pt": ev["b_pt"].astype(np.float32)[rows_ev],
            "b_decay_time": ev["b_decay_time"].astype(np.float32)[rows_ev],
            "dalitz_m12sq": ev["dalitz_m12sq"].astype(np.float32)[rows_ev],
            "dalitz_m23sq": ev["dalitz_m23sq"].astype(np.float32)[rows_ev],
        }
        part["flat_sample"] = (
            part["label"] & (part["mode"] == flat_id) & (part["n_tracks"] == 3)
        )
        reco = ev["signal_reco"].astype(bool) & is_sig_event
        ids, counts = np.unique(mode[reco], return_counts=True)
        return part, int((~is_sig_event).sum()), dict(zip(ids.tolist(), counts))

    def _weights(self, rows: dict[str, np.ndarray]) -> np.ndarray:
        """Equal total per trained mode; signal total = background total."""
        label = rows["label"]
        weights = np.zeros(len(label), dtype=np.float64)
        background = ~label & (rows["truth"] != 2)
        weights[background] = 1.0
        total_bkg = max(weights.sum(), 1.0)
        trained = [mode_id(m) for m in self.train_modes]
        present = [m for m in trained if (label & (rows["mode"] == m)).any()]
        if not present:
            raise DataError(
                f"no signal candidates of the trained modes {self.train_modes}",
                hint="check the source's 'modes' and the algorithm's 'train_modes'",
            )
        for m in present:
            sel = label & (rows["mode"] == m)
            weights[sel] = total_bkg / len(present) / sel.sum()
        rows["trained"] = label & np.isin(rows["mode"], present)
        rows["held_out"] = label & ~rows["trained"]
        return weights.astype(np.float32)

    # -- figures ------------------------------------------------------------------

    def _input_rate(self, card: ModelCard | None = None) -> float:
        if self.params.input_rate_hz is not None:
            return self.params.input_rate_hz
        if card is not None:
            value = card.provenance.config.get("input_rate_hz")
            if value:
                return float(value)
        return 1.0e6

    def describe_card(
        self, card: ModelCard, valid: TrainingSet, scores: np.ndarray
    ) -> ModelCard:
        """Add event-level working points at the target rates and per-mode figures."""
        table = event_level(valid, scores)
        if table["minbias"].size == 0:
            note = (
                "no minimum-bias events in the validation set: no rate working points"
            )
            return card.model_copy(update={"notes": [*card.notes, note]})
        rate_in = self._input_rate(card)
        points = list(card.working_points)
        summary: dict[str, Any] = {"input_rate_hz": rate_in, "rates": {}}
        for target in self.params.target_rates_hz:
            wp, effs = self._rate_point(table, target, rate_in)
            points.append(wp)
            summary["rates"][wp.name] = effs
        ref, ref_effs = self._rate_point(table, self.params.reference_rate_hz, rate_in)
        summary["reference"] = {"rate_hz": ref.rate_hz, **ref_effs}
        metrics = {**card.metrics, "lhcb.topo": summary}
        return card.model_copy(update={"working_points": points, "metrics": metrics})

    def _rate_point(
        self, table: dict[str, np.ndarray], target: float, rate_in: float
    ) -> tuple[WorkingPoint, dict[str, Any]]:
        minbias = table["minbias"]
        threshold = _threshold(table, target, rate_in)
        fired = float((minbias >= threshold).mean())
        effs = self._mode_efficiencies(table, threshold)
        name = f"rate_{target / 1e3:g}khz".replace(".", "p")
        wp = WorkingPoint(
            name=name,
            threshold=threshold,
            signal_efficiency=effs["trained_mean"],
            background_efficiency=fired,
            rate_hz=fired * rate_in,
            input_rate_hz=rate_in,
            level="event",
        )
        return wp, {"threshold": threshold, "rate_hz": fired * rate_in, **effs}

    def _mode_efficiencies(
        self, table: dict[str, np.ndarray], threshold: float
    ) -> dict[str, Any]:
        per_mode = {}
        for name in self.eval_modes:
            best = table.get(name)
            if best is not None and best.size:
                per_mode[name] = float((best >= threshold).mean())
        trained = [per_mode[m] for m in self.train_modes if m in per_mode]
        held = [v for m, v in per_mode.items() if m not in self.train_modes]
        out: dict[str, Any] = {"efficiency": per_mode}
        out["trained_mean"] = float(np.mean(trained)) if trained else None
        out["held_out_mean"] = float(np.mean(held)) if held else None
        if trained and held and out["trained_mean"] > 0:
            out["held_out_ratio"] = out["held_out_mean"] / out["trained_mean"]
        out["mean"] = float(np.mean(list(per_mode.values()))) if per_mode else None
        return out

    def evaluate(
        self, valid: TrainingSet, scores: np.ndarray, out_dir: Path
    ) -> dict[str, Any]:
        """Per-mode efficiencies at the target rates and the Dalitz-plane flatness.

        Writes ``lhcb_topo.json`` and plots (efficiency against decay time, the
        Dalitz-plane efficiency map) into ``out_dir``.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        table = event_level(valid, scores)
        result: dict[str, Any] = {}
        if table["minbias"].size:
            rate_in = self._input_rate()
            result["rates"] = {}
            for target in self.params.target_rates_hz:
                wp, effs = self._rate_point(table, target, rate_in)
                result["rates"][wp.name] = effs
        result["dalitz_flatness"] = self._flatness(valid, scores)
        result["decay_time_flatness"] = _decay_time_flatness(valid, scores)
        (out_dir / "lhcb_topo.json").write_text(json.dumps(result, indent=2) + "\n")
        self._plots(valid, scores, table, out_dir)
        return {"lhcb.topo.evaluation": result}

    def _flatness(self, valid: TrainingSet, scores: np.ndarray) -> dict[str, Any]:
        """SDE over the Dalitz plane of the flatness mode's three-track candidates."""
        from trigml.metrics import flatness_sde

        rows = valid.aux.get("flat_sample")
        if rows is None or rows.sum() < 200:
            return {"n_candidates": int(0 if rows is None else rows.sum())}
        s = np.asarray(scores, dtype=np.float64)[rows]
        plane = np.column_stack(
            [valid.aux["dalitz_m12sq"][rows], valid.aux["dalitz_m23sq"][rows]]
        )
        rng = np.random.default_rng(0)
        return {
            "mode": self.params.flatness_mode,
            "n_candidates": int(rows.sum()),
            "sde": flatness_sde(s, plane),
            # The same scores shuffled over the plane: what a perfectly flat
            # classifier shows with this many candidates.
            "sde_noise_floor": flatness_sde(rng.permutation(s), plane),
        }

    def _plots(
        self,
        valid: TrainingSet,
        scores: np.ndarray,
        table: dict[str, np.ndarray],
        out_dir: Path,
    ) -> None:
        from trigml.plots import plot_efficiency_map_2d, plot_efficiency_vs

        if not table["minbias"].size:
            return
        threshold = _threshold(table, self.params.reference_rate_hz, self._input_rate())
        label = f"{self.params.reference_rate_hz / 1e3:g} kHz"
        edges = np.linspace(0.0, 6.0, 13)
        centres = 0.5 * (edges[1:] + edges[:-1])
        effs = {}
        for name in self.eval_modes:
            times = table.get(f"{name}:time")
            best = table.get(name)
            if times is None or best is None or not best.size:
                continue
            has = np.isfinite(times)
            index = np.digitize(times[has], edges) - 1
            ok = (index >= 0) & (index < len(centres))
            total = np.bincount(index[ok], minlength=len(centres))
            passed = np.bincount(
                index[ok], weights=best[has][ok] >= threshold, minlength=len(centres)
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                effs[name] = np.where(total > 0, passed / total, np.nan)
        if effs:
            plot_efficiency_vs(
                centres,
                effs,
                None,
                out_dir / "efficiency_vs_decay_time.png",
                "b-hadron decay time [ps]",
                title=f"lhcb.topo at {label}",
            )
        rows = valid.aux.get("flat_sample")
        if rows is not None and rows.sum() >= 200:
            plot_efficiency_map_2d(
                valid.aux["dalitz_m12sq"][rows],
                valid.aux["dalitz_m23sq"][rows],
                np.asarray(scores)[rows] >= threshold,
                10,
                out_dir / "dalitz_efficiency.png",
                ("$m^2_{12}$ [GeV$^2$]", "$m^2_{23}$ [GeV$^2$]"),
                title=f"{self.params.flatness_mode} three-track candidates, {label}",
            )


def _decay_time_flatness(valid: TrainingSet, scores: np.ndarray) -> dict[str, Any]:
    """SDE against the b decay time of the candidates of the trained modes."""
    from trigml.metrics import flatness_sde

    rows = valid.aux.get("trained")
    if rows is None or rows.sum() < 200:
        return {"n_candidates": int(0 if rows is None else rows.sum())}
    s = np.asarray(scores, dtype=np.float64)[rows]
    time = valid.aux["b_decay_time"][rows]
    rng = np.random.default_rng(0)
    return {
        "n_candidates": int(rows.sum()),
        "sde": flatness_sde(s, time),
        "sde_noise_floor": flatness_sde(rng.permutation(s), time),
    }


def _threshold(table: dict[str, np.ndarray], target: float, rate_in: float) -> float:
    """Event-level threshold for an output rate; events without candidates fail it."""
    from trigml.metrics import threshold_for_rate

    floor = float(table["floor"][0])
    threshold = threshold_for_rate(table["minbias"], target, rate_in)
    return max(threshold, float(np.nextafter(floor, np.inf)))


def _events_per_group(
    rows: dict[str, np.ndarray], n_minbias: int, n_reco: dict[str, int]
) -> np.ndarray:
    """Events represented by each group with rows, per category (ratio estimator).

    Minimum-bias events and reconstructible signal events without any candidate
    have no rows; each row carries how many events of its category one group of
    rows stands for, so that efficiencies and rates computed on any subset of
    groups count the events without candidates too. Rows of signal events that are
    not fully reconstructible get 0: they are outside the efficiency denominator.
    """
    out = np.zeros(len(rows["group"]), dtype=np.float64)
    mb = rows["is_minbias"]
    if mb.any():
        out[mb] = n_minbias / len(np.unique(rows["group"][mb]))
    for name, count in n_reco.items():
        sel = rows["label"] & (rows["mode"] == mode_id(name)) & rows["signal_reco"]
        if sel.any():
            out[sel] = count / len(np.unique(rows["group"][sel]))
    return out


def event_level(valid: TrainingSet, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Best candidate score per event, per category, counting events without rows.

    Parameters
    ----------
    valid : TrainingSet
        Rows from :meth:`TopoAlgorithm.training_set` (any subset of whole groups).
    scores : ndarray, shape (n,)
        Candidate scores.

    Returns
    -------
    dict of str to ndarray
        ``minbias``: one score per minimum-bias event; ``<mode>``: one per fully
        reconstructible signal event of that mode (signal candidates only, the
        trigger-on-signal efficiency); ``<mode>:time``: the decay time of those
        events (NaN for events without candidates). Events without candidates get
        a score below every candidate's, kept in ``floor``, that no threshold
        returned by :func:`_threshold` passes.
    """
    aux = valid.aux
    s = np.asarray(scores, dtype=np.float64)
    floor = float(s.min()) - 1.0 if s.size else -1.0
    out: dict[str, np.ndarray] = {"floor": np.array([floor])}
    mb = aux["is_minbias"]
    out["minbias"] = _best_per_group(
        s[mb], aux["group"][mb], aux["events_per_group"][mb], floor
    )
    for name in MODES:
        sel = (valid.labels > 0) & (aux["mode"] == mode_id(name)) & aux["signal_reco"]
        if not sel.any():
            continue
        best, times = _best_per_group(
            s[sel],
            aux["group"][sel],
            aux["events_per_group"][sel],
            floor,
            extra=aux["b_decay_time"][sel],
        )
        out[name] = best
        out[f"{name}:time"] = times
    return out


def _best_per_group(
    s: np.ndarray,
    group: np.ndarray,
    per_group: np.ndarray,
    floor: float,
    extra: np.ndarray | None = None,
) -> Any:
    """Highest score of each group, padded with ``floor`` for events without rows."""
    if s.size == 0:
        empty = np.zeros(0)
        return (empty, empty) if extra is not None else empty
    groups, inverse = np.unique(group, return_inverse=True)
    best = np.full(len(groups), floor)
    np.maximum.at(best, inverse.ravel(), s)
    n_events = max(round(len(groups) * float(per_group[0])), len(groups))
    padded = np.concatenate([best, np.full(n_events - len(groups), floor)])
    if extra is None:
        return padded
    value = np.zeros(len(groups))
    value[inverse.ravel()] = extra
    return padded, np.concatenate([value, np.full(n_events - len(groups), np.nan)])
