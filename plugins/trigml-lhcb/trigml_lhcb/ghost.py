"""The LHCb ghost-track classifier: true long tracks against wrong hit combinations.

Candidates are the reconstructed tracks of an event, described by the track-fit and
hit-count features the Run 3 HLT1 has at hand. The positive class is a true track, so
that a working point reads as the fraction of true tracks kept; the baseline is a cut
on the track-fit χ²/ndof at the same true-track efficiency.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from pydantic import Field, field_validator

from trigml.components import Algorithm, Candidates, Source, TrainingSet
from trigml.errors import DataError
from trigml.registry import Params, suggest
from trigml.schema.card import FeatureSpec, ModelCard, WorkingPoint
from trigml.schema.events import CollectionSpec, EventSchema, FieldSpec
from trigml_lhcb.ghostsim import GHOST_FEATURES

__all__ = ["GHOST_SPECS", "GhostAlgorithm", "GhostParams", "ghost_rejection"]

log = logging.getLogger(__name__)

#: Every track field of the ghost classifier: dtype, unit, range, meaning.
GHOST_SPECS: dict[str, FieldSpec] = {
    "pt": FieldSpec(unit="GeV", min=0, description="best transverse momentum"),
    "chi2ndof": FieldSpec(min=0, description="track-fit χ² per degree of freedom"),
    "first_qop": FieldSpec(
        unit="1/GeV", description="q/p from the first (VELO-UT) estimate"
    ),
    "n_scifi_hits": FieldSpec(dtype="int16", min=0, description="SciFi hits"),
    "n_velo_hits": FieldSpec(dtype="int16", min=0, description="VELO hits"),
    "ndof": FieldSpec(dtype="int16", min=0, description="track-fit degrees of freedom"),
    "pr_quality": FieldSpec(
        min=0, description="pattern-recognition quality (lower is better)"
    ),
    "qop": FieldSpec(unit="1/GeV", description="fitted charge over momentum"),
    "match_chi2": FieldSpec(min=0, description="VELO-SciFi matching χ²"),
    "dx": FieldSpec(unit="mm", description="x residual at the matching plane"),
    "dy": FieldSpec(unit="mm", description="y residual at the matching plane"),
    "dtx": FieldSpec(description="x-slope difference at the matching plane"),
    "dty": FieldSpec(description="y-slope difference at the matching plane"),
    "seed_chi2": FieldSpec(min=0, description="SciFi seed χ² per degree of freedom"),
    "eta": FieldSpec(description="pseudorapidity"),
}


class GhostParams(Params):
    """Parameters of ``lhcb.ghost``.

    Attributes
    ----------
    features : list of str
        Track fields fed to the model (keys of :data:`GHOST_SPECS`).
    baseline : str
        Track field the classical baseline cuts on (keep tracks below the cut).
    true_efficiencies : list of float
        True-track efficiencies of the working points written to the card.
    max_tracks : int
        At most this many tracks are read for training (whole events); busy events
        make millions of tracks quickly.
    pv_mean : float, optional
        Mean number of primary vertices of the built-in simulation.
    """

    features: list[str] = Field(default_factory=lambda: list(GHOST_FEATURES))
    baseline: str = "chi2ndof"
    true_efficiencies: list[float] = Field(default_factory=lambda: [0.99, 0.995])
    max_tracks: int = Field(2_000_000, ge=1000)
    pv_mean: float | None = Field(None, gt=0)

    @field_validator("features")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in GHOST_SPECS:
                close = suggest(name, list(GHOST_SPECS))
                hint = f"; did you mean '{close}'?" if close else ""
                raise ValueError(f"unknown track feature '{name}'{hint}")
        if not value or len(set(value)) != len(value):
            raise ValueError("features must be a non-empty list without repeats")
        return value

    @field_validator("baseline")
    @classmethod
    def _known_baseline(cls, value: str) -> str:
        if value not in GHOST_SPECS:
            raise ValueError(
                f"unknown baseline field '{value}' (valid: {', '.join(GHOST_SPECS)})"
            )
        return value

    @field_validator("true_efficiencies")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0.0 < v < 1.0 for v in value):
            raise ValueError("true_efficiencies must lie strictly between 0 and 1")
        return value


class GhostAlgorithm(Algorithm):
    """The ghost-track classifier (``lhcb.ghost``); candidates are tracks."""

    name = "lhcb.ghost"

    def __init__(self, params: GhostParams | None = None) -> None:
        self.params = params or GhostParams()

    def event_schema(self) -> EventSchema:
        """The ``tracks`` fields the model reads."""
        names = dict.fromkeys([*self.params.features, self.params.baseline])
        return EventSchema(
            name=self.name,
            collections={
                "tracks": CollectionSpec(
                    fields={n: GHOST_SPECS[n] for n in names},
                    description="reconstructed long tracks",
                )
            },
        )

    def candidates(self, events: ak.Array) -> Candidates:
        """Flatten the tracks into a feature matrix (truth in ``aux`` when present)."""
        if "tracks" not in ak.fields(events):
            raise DataError(
                "lhcb.ghost needs a 'tracks' collection; the events have: "
                f"{', '.join(ak.fields(events)) or 'no fields'}"
            )
        tracks = events["tracks"]
        counts = ak.to_numpy(ak.num(tracks, axis=1)).astype(np.int64)
        index = np.repeat(np.arange(len(events), dtype=np.int64), counts)
        names = self.params.features
        features = np.empty((len(index), len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            features[:, j] = ak.to_numpy(ak.flatten(tracks[name]))
        aux = {}
        for name in ("is_ghost", "ghost_type", self.params.baseline):
            if name in ak.fields(tracks):
                aux[name] = ak.to_numpy(ak.flatten(tracks[name]))
        return Candidates(features, index, list(names), aux)

    def default_source(self, *, seed: int, n_events: int) -> Source:
        """The built-in ghost simulation."""
        from trigml_lhcb.simulation import LHCbSimSource

        return LHCbSimSource(
            n_events=n_events,
            seed=seed,
            kind="ghost",
            batch_size=5_000,
            pv_mean=self.params.pv_mean,
        )

    def training_set(self, source: Source, *, seed: int) -> TrainingSet:
        """Tracks labelled 1 (true) or 0 (ghost), the two classes weighted equally.

        ``aux`` holds the event number (``group``), the event occupancy, the ghost
        type and the baseline variable.
        """
        columns = [
            *self.event_schema().columns(),
            "tracks.is_ghost",
            "tracks.ghost_type",
            "event_id",
            "occupancy",
        ]
        parts: list[dict[str, np.ndarray]] = []
        n_rows = 0
        try:
            for batch in source.batches(columns):
                events = batch.events
                cands = self.candidates(events)
                if "is_ghost" not in cands.aux:
                    raise DataError("the events have no 'tracks.is_ghost'")
                ei = cands.event_index
                parts.append(
                    {
                        "features": cands.features,
                        "label": ~cands.aux["is_ghost"].astype(bool),
                        "group": ak.to_numpy(events["event_id"]).astype(np.int64)[ei],
                        "occupancy": ak.to_numpy(events["occupancy"]).astype(np.int32)[
                            ei
                        ],
                        "ghost_type": cands.aux["ghost_type"].astype(np.int8),
                        "baseline": cands.aux[self.params.baseline].astype(np.float32),
                    }
                )
                n_rows += len(ei)
                if n_rows >= self.params.max_tracks:
                    log.info(
                        "lhcb.ghost: stopped reading at %d tracks (max_tracks)", n_rows
                    )
                    break
        except DataError as exc:
            raise DataError(
                f"lhcb.ghost cannot build a training set from {source.describe()}: "
                f"{exc.message}",
                hint="training needs the truth of the ghost simulation "
                "(lhcb.sim with kind: ghost)",
            ) from None
        if not parts:
            raise DataError(f"{source.describe()} gave no events")

        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        label = rows.pop("label")
        if label.all() or not label.any():
            raise DataError("the ghost training set needs both true tracks and ghosts")
        weights = np.where(label, 0.5 / label.sum(), 0.5 / (~label).sum())
        weights *= len(label)
        spec = [
            FeatureSpec(
                name=n, unit=GHOST_SPECS[n].unit, description=GHOST_SPECS[n].description
            )
            for n in self.params.features
        ]
        features = rows.pop("features")
        return TrainingSet(
            features=features,
            labels=label.astype(np.int64),
            weights=weights.astype(np.float32),
            features_spec=spec,
            classes=["ghost", "true"],
            aux=rows,
            description=(
                f"{source.describe()}: {int(label.sum())} true tracks and "
                f"{int((~label).sum())} ghosts"
            ),
        )

    def describe_card(
        self, card: ModelCard, valid: TrainingSet, scores: np.ndarray
    ) -> ModelCard:
        """Working points at the chosen true-track efficiencies, with the baseline."""
        points = list(card.working_points)
        figures = {}
        for eff in self.params.true_efficiencies:
            fig = ghost_rejection(valid, scores, eff)
            name = f"true{eff * 100:g}".replace(".", "p")
            points.append(
                WorkingPoint(
                    name=name,
                    threshold=fig["threshold"],
                    signal_efficiency=fig["true_efficiency"],
                    background_efficiency=1.0 - fig["ghost_rejection"],
                )
            )
            figures[name] = fig
        metrics = {**card.metrics, "lhcb.ghost": figures}
        return card.model_copy(update={"working_points": points, "metrics": metrics})

    def evaluate(
        self, valid: TrainingSet, scores: np.ndarray, out_dir: Path
    ) -> dict[str, Any]:
        """Ghost rejection of the model and of the baseline, overall and by occupancy.

        Writes ``lhcb_ghost.json`` and a plot of the rejection against occupancy.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        eff = self.params.true_efficiencies[0]
        result: dict[str, Any] = {"overall": ghost_rejection(valid, scores, eff)}

        occ = valid.aux["occupancy"]
        edges = np.quantile(occ, np.linspace(0.0, 1.0, 6))
        by_occ: list[dict[str, Any]] = []
        centres = []
        for lo, hi in itertools.pairwise(edges):
            sel = (occ >= lo) & (occ <= hi)
            fig = ghost_rejection(valid.subset(sel), scores[sel], eff)
            fig["ghost_fraction"] = float((valid.labels[sel] == 0).mean())
            by_occ.append({"occupancy": [float(lo), float(hi)], **fig})
            centres.append(0.5 * float(lo + hi))
        result["by_occupancy"] = by_occ
        (out_dir / "lhcb_ghost.json").write_text(json.dumps(result, indent=2) + "\n")

        from trigml.plots import plot_efficiency_vs

        plot_efficiency_vs(
            np.array(centres),
            {
                "classifier": [b["ghost_rejection"] for b in by_occ],
                f"{self.params.baseline} cut": [
                    b["baseline_rejection"] for b in by_occ
                ],
                "ghost fraction": [b["ghost_fraction"] for b in by_occ],
            },
            None,
            out_dir / "ghost_rejection_vs_occupancy.png",
            "reconstructed tracks per event",
            ylabel=f"ghost rejection at {eff:.1%} true tracks kept",
            title="lhcb.ghost",
        )
        return {"lhcb.ghost.evaluation": result}


def ghost_rejection(
    valid: TrainingSet, scores: np.ndarray, true_efficiency: float
) -> dict[str, float]:
    """Ghost rejection of the model and of the baseline cut at one true efficiency.

    Parameters
    ----------
    valid : TrainingSet
        Rows from :meth:`GhostAlgorithm.training_set` (label 1 for true tracks,
        ``aux["baseline"]`` the baseline variable, smaller is better).
    scores : ndarray, shape (n,)
        Model scores, higher for true tracks.
    true_efficiency : float
        Fraction of true tracks to keep.

    Returns
    -------
    dict
        ``threshold``, ``true_efficiency`` and ``ghost_rejection`` of the model;
        ``baseline_cut`` and ``baseline_rejection`` of the baseline.
    """
    from trigml.metrics import threshold_for_efficiency

    true = np.asarray(valid.labels) > 0
    s = np.asarray(scores, dtype=np.float64)
    if not true.any() or true.all():
        raise DataError("ghost rejection needs both true tracks and ghosts")
    threshold = threshold_for_efficiency(s[true], true_efficiency)
    base = np.asarray(valid.aux["baseline"], dtype=np.float64)
    cut = float(np.quantile(base[true], true_efficiency))
    return {
        "threshold": float(threshold),
        "true_efficiency": float((s[true] >= threshold).mean()),
        "ghost_rejection": float((s[~true] < threshold).mean()),
        "baseline_cut": cut,
        "baseline_true_efficiency": float((base[true] <= cut).mean()),
        "baseline_rejection": float((base[~true] > cut).mean()),
    }
