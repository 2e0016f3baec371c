"""pydantic models of trigml's files: event schemas, model cards, configs, reports."""

from __future__ import annotations

from trigml.schema.card import (
    FeatureSpec,
    ModelCard,
    OutputSpec,
    Provenance,
    WorkingPoint,
)
from trigml.schema.config import (
    ComponentRef,
    ExportConfig,
    LineConfig,
    RunConfig,
    TrainConfig,
)
from trigml.schema.events import CollectionSpec, EventSchema, FieldSpec, validate_batch
from trigml.schema.report import LineReport, RunReport, TimingReport

__all__ = [
    "CollectionSpec",
    "ComponentRef",
    "EventSchema",
    "ExportConfig",
    "FeatureSpec",
    "FieldSpec",
    "LineConfig",
    "LineReport",
    "ModelCard",
    "OutputSpec",
    "Provenance",
    "RunConfig",
    "RunReport",
    "TimingReport",
    "TrainConfig",
    "WorkingPoint",
    "validate_batch",
]
