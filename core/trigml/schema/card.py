"""The model card: everything needed to use, trust and reproduce a trained model.

A card lives as ``card.json`` in an artifact directory next to the model files. It
records the ordered input features with units and scaling, the outputs, where the
training data came from, hyperparameters, metrics, working points and the sha256 of
every file; loading an artifact checks those hashes (:mod:`trigml.artifact`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CARD_VERSION",
    "FeatureSpec",
    "ModelCard",
    "OutputSpec",
    "Provenance",
    "WorkingPoint",
]

CARD_VERSION = 1
Task = Literal["binary", "multiclass", "regression", "anomaly"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureSpec(_Strict):
    """One input feature of a model, in the order the model reads them.

    ``offset`` and ``scale`` describe the standardisation applied before the model:
    ``x' = (x - offset) / scale``. Families that do not scale leave them at 0 and 1.
    """

    name: str
    unit: str = ""
    description: str = ""
    offset: float = 0.0
    scale: float = 1.0


class OutputSpec(_Strict):
    """One model output (a class probability, a regressed quantity, a score)."""

    name: str
    description: str = ""


class Provenance(_Strict):
    """Where the training data came from and how training was seeded."""

    source: str = ""
    n_train: int = 0
    n_valid: int = 0
    seed: int = 0
    created: str = ""
    trigml_version: str = ""
    config: dict[str, Any] = Field(default_factory=dict)


class WorkingPoint(_Strict):
    """A threshold on the model score and what it gives on the validation sample.

    Attributes
    ----------
    name : str
        Name users put in a menu line (``loose``, ``tight``, ``rate_10khz``).
    threshold : float
        Candidate passes when score ≥ threshold (or, for ``task=regression``, the
        quantity passes the cut the algorithm defines).
    signal_efficiency : float, optional
    background_efficiency : float, optional
    rate_hz : float, optional
        Expected output rate for the input rate given in ``input_rate_hz``.
    """

    name: str
    threshold: float
    signal_efficiency: float | None = None
    background_efficiency: float | None = None
    rate_hz: float | None = None
    input_rate_hz: float | None = None
    level: Literal["candidate", "event"] = "candidate"


class ModelCard(_Strict):
    """The model card stored as ``card.json`` in every artifact directory."""

    card_version: int = CARD_VERSION
    name: str
    algorithm: str
    family: str
    task: Task = "binary"
    features: list[FeatureSpec]
    outputs: list[OutputSpec] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    formats: dict[str, str] = Field(
        default_factory=dict,
        description="Model file by format name (onnx, xgboost-json, torch-state, lut).",
    )
    files: dict[str, str] = Field(
        default_factory=dict, description="sha256 of every file of the artifact."
    )
    provenance: Provenance = Field(default_factory=Provenance)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    algorithm_params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    working_points: list[WorkingPoint] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def working_point(self, name: str) -> WorkingPoint:
        """The working point called ``name``; KeyError lists the valid ones."""
        for wp in self.working_points:
            if wp.name == name:
                return wp
        valid = ", ".join(w.name for w in self.working_points) or "none"
        raise KeyError(
            f"no working point '{name}' in model '{self.name}' (has: {valid})"
        )
