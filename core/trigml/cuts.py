"""The classical baseline: rectangular cuts, as triggers selected events before ML.

Three components share this module: the ``cuts`` algorithm (candidates are the events,
or the items of one collection, described by named fields), the ``cuts`` model family (a
greedy optimiser that places one cut per feature to reach a target signal efficiency
with the least background), and the ``cpu.cuts`` backend that evaluates them.

A cut set scores a candidate by its smallest normalised margin over all cuts, so a
candidate passes every cut exactly when its score is ≥ 0, and moving the threshold
loosens or tightens all cuts together. Every ML line in trigml is compared against such
a baseline tuned to the same rate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import awkward as ak
import numpy as np
from pydantic import Field

from trigml.components import (
    Algorithm,
    Backend,
    Candidates,
    ModelFamily,
    Scorer,
    Source,
    TrainedModel,
    TrainingSet,
)
from trigml.errors import ConfigError, DataError, ModelError
from trigml.registry import Params
from trigml.schema.card import FeatureSpec
from trigml.schema.events import CollectionSpec, EventSchema, FieldSpec, column_values

__all__ = [
    "CutSet",
    "CutsAlgorithm",
    "CutsAlgorithmParams",
    "CutsBackend",
    "CutsFamily",
    "CutsFamilyParams",
    "optimise_cuts",
]

Direction = Literal["min", "max"]


class CutsAlgorithmParams(Params):
    """Parameters of the ``cuts`` algorithm."""

    features: list[str] = Field(
        min_length=1,
        description="Fields cut on: flat event fields, or 'collection.field' names all "
        "from one collection (then each item of the collection is a candidate).",
    )
    label: str = Field(
        "is_signal", description="Field marking signal (flat, or of the collection)."
    )
    units: dict[str, str] = Field(default_factory=dict)


class CutsAlgorithm(Algorithm):
    """Candidates described by named fields of the events or of one collection."""

    name = "cuts"

    def __init__(self, params: CutsAlgorithmParams) -> None:
        self.params = params
        prefixes = {f.split(".", 1)[0] for f in params.features if "." in f}
        flat = [f for f in params.features if "." not in f]
        if len(prefixes) > 1 or (prefixes and flat):
            raise ConfigError(
                "cuts features must be all flat event fields or all from one "
                f"collection, got {params.features}"
            )
        self.collection = prefixes.pop() if prefixes else None

    def event_schema(self) -> EventSchema:
        specs = {
            f: FieldSpec(unit=self.params.units.get(f, ""))
            for f in self.params.features
        }
        if self.collection is None:
            return EventSchema(name="cuts", fields=specs)
        inner = {f.split(".", 1)[1]: s for f, s in specs.items()}
        return EventSchema(
            name="cuts", collections={self.collection: CollectionSpec(fields=inner)}
        )

    def candidates(self, events: ak.Array) -> Candidates:
        names = self.params.features
        cols = [_values(events, f) for f in names]
        if self.collection is None:
            index = np.arange(len(events), dtype=np.int64)
        else:
            counts = ak.to_numpy(ak.num(events[self.collection], axis=1))
            index = np.repeat(np.arange(len(events), dtype=np.int64), counts)
        features = np.empty((len(index), len(cols)), dtype=np.float32)
        for j, col in enumerate(cols):
            features[:, j] = col
        return Candidates(
            features=features,
            event_index=index,
            names=list(names),
            per_event=self.collection is None,
        )

    def _labels(self, events: ak.Array, cands: Candidates) -> np.ndarray:
        label = self.params.label
        if self.collection is not None and label.startswith(self.collection + "."):
            values = ak.flatten(events[self.collection][label.split(".", 1)[1]])
            return ak.to_numpy(values).astype(np.int64)
        if label not in ak.fields(events):
            raise DataError(f"label field '{label}' not found in the events")
        return ak.to_numpy(events[label]).astype(np.int64)[cands.event_index]

    def training_set(self, source: Source, *, seed: int) -> TrainingSet:
        columns = [*self.event_schema().columns(), self.params.label]
        feats, labels = [], []
        for batch in source.batches(columns):
            cands = self.candidates(batch.events)
            feats.append(cands.features)
            labels.append(self._labels(batch.events, cands))
        if not feats or sum(len(f) for f in feats) == 0:
            raise DataError(
                f"source {source.describe()} gave no candidates to train on"
            )
        x = np.concatenate(feats)
        y = np.concatenate(labels)
        spec = [
            FeatureSpec(name=f, unit=self.params.units.get(f, ""))
            for f in self.params.features
        ]
        return TrainingSet(
            features=x,
            labels=y,
            weights=np.ones(len(y), dtype=np.float32),
            features_spec=spec,
            description=source.describe(),
        )


def _values(events: ak.Array, dotted: str) -> np.ndarray:
    """Flat numpy values of a field, without copying where the layout allows."""
    fast = column_values(events, dotted)
    if fast is not None:
        return fast[0]
    node = events
    for part in dotted.split("."):
        node = node[part]
    return ak.to_numpy(ak.flatten(node, axis=None))


class CutsFamilyParams(Params):
    """Parameters of the ``cuts`` model family."""

    target_efficiency: float = Field(
        0.9, gt=0.0, le=1.0, description="Signal efficiency the cuts are tuned to."
    )
    directions: dict[str, Direction] = Field(
        default_factory=dict,
        description="'min' keeps x ≥ cut, 'max' keeps x ≤ cut; inferred from the "
        "signal and background medians for features not listed.",
    )
    steps: int = Field(60, ge=5, le=1000, description="Greedy tightening steps.")


class CutSet:
    """One cut per feature: ``min`` keeps values ≥ the cut, ``max`` keeps ≤.

    Attributes
    ----------
    names : list of str
    directions : list of {"min", "max"}
    values : ndarray, float64
        Cut values (±inf for a feature left uncut).
    scales : ndarray, float64
        Spread of each feature, normalising the margins.
    """

    def __init__(
        self,
        names: Sequence[str],
        directions: Sequence[Direction],
        values: np.ndarray,
        scales: np.ndarray,
    ) -> None:
        self.names = list(names)
        self.directions = list(directions)
        self.values = np.asarray(values, dtype=np.float64)
        self.scales = np.asarray(scales, dtype=np.float64)
        self._sign = np.array([1.0 if d == "min" else -1.0 for d in self.directions])

    def score(self, features: np.ndarray) -> np.ndarray:
        """Smallest normalised margin over all cuts, float32, ≥ 0 means pass."""
        finite = np.isfinite(self.values)
        if not finite.any():
            return np.full(len(features), np.float32(np.inf))
        x = features[:, finite].astype(np.float64)
        margins = self._sign[finite] * (x - self.values[finite]) / self.scales[finite]
        return margins.min(axis=1).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "cuts": [
                {
                    "feature": n,
                    "direction": d,
                    "value": None if not np.isfinite(v) else float(v),
                    "scale": float(s),
                }
                for n, d, v, s in zip(
                    self.names, self.directions, self.values, self.scales
                )
            ]
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CutSet:
        cuts = doc["cuts"]
        directions = [c["direction"] for c in cuts]
        values = [
            (-np.inf if c["direction"] == "min" else np.inf)
            if c["value"] is None
            else c["value"]
            for c in cuts
        ]
        return cls(
            [c["feature"] for c in cuts],
            directions,
            np.array(values),
            np.array([c["scale"] for c in cuts]),
        )


def optimise_cuts(
    features: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    *,
    target_efficiency: float,
    weights: np.ndarray | None = None,
    directions: dict[str, Direction] | None = None,
    steps: int = 60,
) -> CutSet:
    """Greedy rectangular-cut optimisation for a target signal efficiency.

    Starting from no cuts, each step tightens the one cut that removes the most
    background per unit of signal efficiency given up, until the efficiency reaches
    ``target_efficiency``. This follows the ROC of the cut set down its steepest path.

    Parameters
    ----------
    features : ndarray, shape (n, n_features)
    labels : ndarray of int, shape (n,)
        1 for signal, 0 for background.
    names : sequence of str
    target_efficiency : float
    weights : ndarray, optional
    directions : dict, optional
        Fixed cut directions by feature name.
    steps : int
        Number of tightening steps between efficiency 1 and the target.
    """
    y = np.asarray(labels) > 0
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    if not y.any() or y.all():
        raise DataError("cut optimisation needs both signal and background candidates")
    x = np.asarray(features, dtype=np.float64)
    sig, bkg = x[y], x[~y]
    ws, wb = w[y], w[~y]
    fixed = directions or {}
    dirs: list[Direction] = []
    for j, name in enumerate(names):
        if name in fixed:
            dirs.append(fixed[name])
        else:
            dirs.append(
                "min" if np.median(sig[:, j]) >= np.median(bkg[:, j]) else "max"
            )
    sign = np.array([1.0 if d == "min" else -1.0 for d in dirs])
    # Work with "keep if s >= cut" on sign-flipped values so both directions look alike.
    s_sig, s_bkg = sig * sign, bkg * sign
    q75, q25 = np.percentile(x, [75, 25], axis=0)
    scales = np.where(q75 - q25 > 0, q75 - q25, 1.0)
    cuts = np.full(x.shape[1], -np.inf)
    total = ws.sum()
    step = (1.0 - target_efficiency) * total / steps
    pass_sig = np.ones(len(s_sig), dtype=bool)
    pass_bkg = np.ones(len(s_bkg), dtype=bool)
    for _ in range(steps * 4):
        eff = ws[pass_sig].sum() / total
        if eff <= target_efficiency + 1e-12:
            break
        budget = min(step, (eff - target_efficiency) * total)
        best: tuple[float, int, float] | None = None
        slack = (eff - target_efficiency) * total
        for j in range(x.shape[1]):
            vals = s_sig[pass_sig, j]
            order = np.argsort(vals, kind="stable")
            ordered = vals[order]
            cum = np.cumsum(ws[pass_sig][order])
            k = int(np.searchsorted(cum, budget, side="left"))
            if k >= len(vals) - 1:
                continue
            new_cut = np.nextafter(ordered[k], np.inf)
            # a cut removes every tied value below it: count them all, and skip a
            # step that would overshoot the target (integer features tie a lot)
            lost = cum[int(np.searchsorted(ordered, new_cut, side="left")) - 1]
            if lost > slack * (1.0 + 1e-9):
                continue
            removed = wb[pass_bkg & (s_bkg[:, j] < new_cut)].sum()
            gain = removed / lost
            if best is None or gain > best[0]:
                best = (gain, j, new_cut)
        if best is None:
            break
        _, j, new_cut = best
        cuts[j] = new_cut
        pass_sig &= s_sig[:, j] >= new_cut
        pass_bkg &= s_bkg[:, j] >= new_cut
    values = np.where(
        np.isfinite(cuts), cuts * sign, np.where(sign > 0, -np.inf, np.inf)
    )
    return CutSet(names, dirs, values, scales)


class CutsFamily(ModelFamily):
    """Fits a :class:`CutSet` to a target signal efficiency."""

    name = "cuts"

    def __init__(self, params: CutsFamilyParams) -> None:
        self.params = params

    def fit(self, train: TrainingSet, valid: TrainingSet, *, seed: int) -> TrainedModel:
        if train.task != "binary":
            raise ConfigError(
                f"the cuts family needs a binary task, got '{train.task}'"
            )
        cut_set = optimise_cuts(
            train.features,
            train.labels,
            train.names,
            target_efficiency=self.params.target_efficiency,
            weights=train.weights,
            directions=self.params.directions,
            steps=self.params.steps,
        )
        return TrainedModel(
            model=cut_set,
            predict=cut_set.score,
            hyperparameters=self.params.model_dump(),
            metrics={"cuts": cut_set.to_json()["cuts"]},
        )

    def save(self, model: TrainedModel, directory: Path) -> dict[str, str]:
        doc = model.model.to_json()
        (directory / "cuts.json").write_text(json.dumps(doc, indent=2) + "\n")
        return {"cuts-json": "cuts.json"}


class _CutsScorer(Scorer):
    def __init__(self, cut_set: CutSet, n_features: int, model: str) -> None:
        self.cut_set = cut_set
        self.n_features = n_features
        self.model = model

    def predict(self, features: np.ndarray) -> np.ndarray:
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ModelError(
                f"model '{self.model}' on backend 'cpu.cuts' expects "
                f"{self.n_features} features, got shape {features.shape}"
            )
        if not np.isfinite(features).all():
            raise DataError(
                f"model '{self.model}' on backend 'cpu.cuts': non-finite input features"
            )
        return self.cut_set.score(features)


class CutsBackend(Backend):
    """Evaluates cut sets with numpy."""

    name = "cpu.cuts"

    def __init__(self, params: Params | None = None) -> None:
        self.params = params

    def formats(self) -> Sequence[str]:
        return ["cuts-json"]

    def load(self, artifact: Any) -> Scorer:
        path = artifact.file("cuts-json")
        cut_set = CutSet.from_json(json.loads(path.read_text()))
        if cut_set.names != artifact.card.feature_names:
            raise ModelError(
                f"model '{artifact.card.name}': cuts.json names {cut_set.names} but "
                f"the card lists {artifact.card.feature_names}"
            )
        return _CutsScorer(cut_set, len(cut_set.names), artifact.card.name)
