"""An algorithm on the leading object of each event, and a one-feature backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import awkward as ak
import numpy as np
from pydantic import Field

from trigml.components import (
    Algorithm,
    Backend,
    Candidates,
    Scorer,
    Source,
    TrainingSet,
)
from trigml.errors import DataError, ModelError
from trigml.registry import NoParams, Params
from trigml.schema.card import FeatureSpec
from trigml.schema.events import CollectionSpec, EventSchema, FieldSpec


class LeadingObjectParams(Params):
    """Parameters of ``example.leading``."""

    collection: str = Field("objects", description="Jagged collection with a 'pt'.")
    label: str = Field("is_signal", description="Flat field marking signal events.")


class LeadingObject(Algorithm):
    """One candidate per event: leading pT (GeV) and object count."""

    def __init__(self, params: LeadingObjectParams) -> None:
        self.params = params

    def event_schema(self) -> EventSchema:
        pt = FieldSpec(unit="GeV", min=0.0, description="transverse momentum")
        return EventSchema(
            name="example.leading",
            collections={self.params.collection: CollectionSpec(fields={"pt": pt})},
        )

    def candidates(self, events: ak.Array) -> Candidates:
        pt = events[self.params.collection]["pt"]
        leading = ak.to_numpy(ak.fill_none(ak.max(pt, axis=1), 0.0))
        count = ak.to_numpy(ak.num(pt, axis=1))
        features = np.stack([leading, count], axis=1).astype(np.float32)
        index = np.arange(len(events), dtype=np.int64)
        return Candidates(features, index, ["leading_pt", "n_objects"])

    def training_set(self, source: Source, *, seed: int) -> TrainingSet:
        columns = [*self.event_schema().columns(), self.params.label]
        feats, labels = [], []
        for batch in source.batches(columns):
            feats.append(self.candidates(batch.events).features)
            labels.append(ak.to_numpy(batch.events[self.params.label]).astype(int))
        if not feats:
            raise DataError(f"{source.describe()} gave no events")
        y = np.concatenate(labels)
        return TrainingSet(
            features=np.concatenate(feats),
            labels=y,
            weights=np.ones(len(y), dtype=np.float32),
            features_spec=[
                FeatureSpec(name="leading_pt", unit="GeV"),
                FeatureSpec(name="n_objects"),
            ],
            description=source.describe(),
        )


class _FirstFeature(Scorer):
    def __init__(self, name: str, n_features: int) -> None:
        self.name = name
        self.n_features = n_features

    def predict(self, features: np.ndarray) -> np.ndarray:
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ModelError(
                f"model '{self.name}' on example.threshold expects "
                f"{self.n_features} features, got shape {features.shape}"
            )
        if not np.isfinite(features).all():
            raise DataError(f"model '{self.name}' on example.threshold: NaN input")
        return features[:, 0].astype(np.float32)


class ThresholdBackend(Backend):
    """Scores each candidate by its first feature."""

    def __init__(self, params: NoParams) -> None:
        self.params = params

    def formats(self) -> Sequence[str]:
        return ["cuts-json"]

    def load(self, artifact: Any) -> Scorer:
        return _FirstFeature(artifact.card.name, len(artifact.card.features))
