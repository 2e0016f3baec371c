"""Training, run (menu) and export configurations.

Configurations are YAML files validated by these models. A component is named either by
a bare string (``backend: cpu.onnxruntime``) or by a mapping whose ``type`` key names it
and whose other keys are its parameters (``backend: {type: fpga.hls4ml, precision:
"ap_fixed<16,6>"}``). Parameters are validated by the component itself when the config
is assembled (:mod:`trigml.assemble`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ComponentRef",
    "ExportConfig",
    "LineConfig",
    "RunConfig",
    "TrainConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(_Strict):
    """A registry name and the parameters to build it with."""

    type: str = Field(description="Registered name, as listed by 'trigml plugins'.")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"type": value}
        if isinstance(value, dict) and "params" not in value and "type" in value:
            rest = {k: v for k, v in value.items() if k != "type"}
            return {"type": value["type"], "params": rest}
        return value


class TrainConfig(_Strict):
    """What to train, on what, and where to write the model artifact."""

    kind: Literal["train"] = "train"
    name: str = Field("", description="Model name; defaults to the output folder name.")
    algorithm: ComponentRef
    family: ComponentRef
    source: ComponentRef | None = Field(
        None, description="Event source; the algorithm's built-in simulation if absent."
    )
    n_events: int = Field(
        50_000, gt=0, description="Events to simulate when no source is given."
    )
    output: str = Field(description="Artifact directory to create.")
    seed: int = 1
    valid_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    input_rate_hz: float = Field(
        1.0e6, gt=0, description="Input rate used to express working points as rates."
    )


class LineConfig(_Strict):
    """One trigger line of a menu."""

    name: str
    model: str = Field(description="Artifact directory, relative to the config file.")
    algorithm: ComponentRef | None = Field(
        None, description="Defaults to the algorithm recorded in the model card."
    )
    backend: ComponentRef = Field(
        default_factory=lambda: ComponentRef(type="cpu.onnxruntime"),
    )
    working_point: str | float = Field(
        description="Name of a working point of the model card, or a threshold."
    )


class RunConfig(_Strict):
    """A trigger menu: a source, lines, sinks and an executor."""

    kind: Literal["run"] = "run"
    source: ComponentRef
    lines: list[LineConfig] = Field(min_length=1)
    sinks: list[ComponentRef] = Field(
        default_factory=lambda: [ComponentRef(type="root")]
    )
    executor: ComponentRef = Field(default_factory=lambda: ComponentRef(type="local"))
    validation: Literal["reject", "fail"] = Field(
        "reject",
        description="What a NaN or out-of-range value does: reject the event or fail.",
    )
    input_rate_hz: float | None = Field(
        None, gt=0, description="Input rate; lines then report their output rate."
    )
    signal_field: str | None = Field(
        None, description="Flat boolean field marking signal events, for efficiencies."
    )
    plots: bool = True


class ExportConfig(_Strict):
    """Export of a model artifact to a backend, with a consistency check."""

    kind: Literal["export"] = "export"
    model: str
    backend: ComponentRef
    output: str
    n_check: int = Field(
        100_000, gt=0, description="Held-out rows used for the consistency report."
    )
    target_agreement: float = Field(0.999, gt=0.0, le=1.0)
