"""Parameters of the FPGA backends, as written in an export config or a menu line.

``backend: {type: fpga.hls4ml, precision: "ap_fixed<16,6>", reuse_factor: 4}``. Types
written without quantisation and overflow modes get ``AP_RND, AP_SAT`` (see the
plugin README for why); write the modes out to keep the library defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from trigml.errors import ConfigError
from trigml.registry import Params
from trigml_fpga.fixed import parse_fixed

__all__ = ["ConiferParams", "Hls4mlParams", "LayerPrecision"]

DEFAULT_PART = "xcvu13p-flga2577-2-e"


def _check_type(value: str | None, key: str) -> str | None:
    if value is not None:
        try:
            parse_fixed(value, key="")
        except ConfigError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            raise ValueError(f"{key}: {exc.message}{hint}") from None
    return value


class LayerPrecision(Params):
    """Overrides for one layer, by its hls4ml name (listed in ``report.json``).

    Attributes
    ----------
    result : str, optional
        Type of the layer's output.
    weight, bias : str, optional
        Types of the weights and biases.
    accum : str, optional
        Accumulator type of a dense or convolution layer; by default it is as wide as
        the exact sum needs.
    reuse_factor : int, optional
        Multiplications sharing one multiplier in this layer.
    """

    result: str | None = None
    weight: str | None = None
    bias: str | None = None
    accum: str | None = None
    reuse_factor: int | None = Field(None, ge=1)

    @field_validator("result", "weight", "bias", "accum")
    @classmethod
    def _valid_type(cls, value: str | None) -> str | None:
        return _check_type(value, "layers")


class _FpgaParams(Params):
    scan_precision: bool = Field(
        False,
        description="Also search the narrowest type reaching target_agreement.",
    )
    target_agreement: float = Field(
        0.999,
        gt=0.0,
        le=1.0,
        description="Decision agreement with the float model the export must reach.",
    )
    n_check: int = Field(
        100_000, gt=0, description="Held-out rows used for the consistency report."
    )
    clock_period_ns: float = Field(5.0, gt=0.0, description="Target clock period, ns.")
    part: str = Field(DEFAULT_PART, description="FPGA part of the HLS project.")
    cache_dir: str | None = Field(
        None,
        description="Cache of compiled emulations; default $TRIGML_FPGA_CACHE or "
        "~/.cache/trigml/fpga.",
    )
    scan_max_trials: int = Field(
        10, ge=1, le=40, description="Most types compiled by a precision scan."
    )

    @field_validator("part")
    @classmethod
    def _part_name(cls, value: str) -> str:
        if not value.strip() or any(c in value for c in " \"'\\;"):
            raise ValueError(
                f"'{value}' is not an FPGA part name (xcvu13p-flga2577-2-e)"
            )
        return value.strip()


class Hls4mlParams(_FpgaParams):
    """Parameters of ``fpga.hls4ml`` (neural networks through hls4ml).

    Attributes
    ----------
    precision : str
        Default fixed-point type of inputs, weights, biases and layer outputs.
    layers : dict of str to LayerPrecision or str
        Per-layer overrides by hls4ml layer name; a bare type sets the layer's
        result, weight and bias types.
    reuse_factor : int
        Multiplications sharing one multiplier (1 = fully parallel, lowest latency).
    strategy : str
        hls4ml strategy, ``latency`` or ``resource``.
    io_type : str
        ``io_parallel`` (arrays, lowest latency) or ``io_stream`` (streams, for
        larger CNNs).
    output : str
        ``logits``: the firmware ends at the last linear layer and a working-point
        threshold becomes a cut on the logit (the sigmoid or softmax is applied to the
        emulated logits in Python); ``probabilities``: the sigmoid or softmax table is
        part of the firmware, with a saturating ``ap_ufixed<W,0>`` output.
    """

    precision: str = "ap_fixed<16,6>"
    layers: dict[str, LayerPrecision | str] = Field(default_factory=dict)
    reuse_factor: int = Field(1, ge=1, le=4096)
    strategy: Literal["latency", "resource"] = "latency"
    io_type: Literal["io_parallel", "io_stream"] = "io_parallel"
    output: Literal["logits", "probabilities"] = "logits"

    @field_validator("precision")
    @classmethod
    def _valid_precision(cls, value: str) -> str:
        _check_type(value, "precision")
        return value

    @field_validator("layers")
    @classmethod
    def _valid_layers(
        cls, value: dict[str, LayerPrecision | str]
    ) -> dict[str, LayerPrecision | str]:
        for name, spec in value.items():
            if isinstance(spec, str):
                _check_type(spec, f"layers.{name}")
        return value


class ConiferParams(_FpgaParams):
    """Parameters of ``fpga.conifer`` (BDTs through conifer's C++).

    Attributes
    ----------
    precision : str
        Fixed-point type of inputs, thresholds and scores.
    score_precision : str, optional
        A different type for leaf values and their sum.
    input_scaling : str
        ``auto``: every feature is shifted by a power of two (free in firmware) so
        that its cut values fill the integer range of ``precision``; ``none``: the
        features enter as they are, and values beyond the range saturate.
    unroll : bool
        conifer's fully parallel (unrolled) HLS implementation.
    """

    precision: str = "ap_fixed<18,8>"
    score_precision: str | None = None
    input_scaling: Literal["auto", "none"] = "auto"
    unroll: bool = True

    @field_validator("precision", "score_precision")
    @classmethod
    def _valid_precision(cls, value: str | None) -> str | None:
        return _check_type(value, "precision")
