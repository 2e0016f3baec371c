"""Parameters of the torch model family and of its network builders.

These pydantic models validate what a training configuration says under ``family``
and what an artifact's ``arch.json`` holds. They import no torch, so that plugin
discovery and ``trigml validate`` stay fast.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from trigml.errors import ConfigError
from trigml.registry import Params, suggest

__all__ = [
    "ARCH_PARAMS",
    "Activation",
    "AnySpec",
    "ArchSpec",
    "AutoencoderParams",
    "Cnn1dParams",
    "Cnn2dParams",
    "Cnn3dParams",
    "DeepSetsParams",
    "MlpParams",
    "TorchParams",
    "Unet3dParams",
    "parse_arch",
]

#: Activations every builder accepts; all of them are layers hls4ml can parse.
Activation = Literal["relu", "leaky_relu", "elu", "tanh"]
Final = Literal["sigmoid", "softmax", "none"]


class _ArchParams(Params):
    """Fields every builder has; the family fills the ones left at None."""

    n_inputs: PositiveInt | None = Field(
        None, description="Width of the flat feature row; set from the training set."
    )
    n_outputs: PositiveInt | None = Field(
        None, description="Number of outputs; set from the task and the loss."
    )
    final: Final | None = Field(
        None,
        description="Output activation inside the graph: sigmoid (binary), "
        "softmax (multiclass), none (regression, anomaly); set from the task.",
    )

    def expected_inputs(self) -> int | None:
        """Input width implied by the other parameters, or None if free."""
        return None

    def expected_outputs(self) -> int | None:
        """Output width implied by the other parameters, or None if free."""
        return None

    @model_validator(mode="after")
    def _widths_agree(self) -> _ArchParams:
        want = self.expected_inputs()
        if want is not None and self.n_inputs is not None and self.n_inputs != want:
            raise ValueError(
                f"n_inputs={self.n_inputs} but the other parameters imply {want} "
                "inputs per row"
            )
        want = self.expected_outputs()
        if want is not None and self.n_outputs is not None and self.n_outputs != want:
            raise ValueError(
                f"n_outputs={self.n_outputs} but the other parameters imply {want}"
            )
        return self


class MlpParams(_ArchParams):
    """A fully connected network: Linear → (BatchNorm) → activation → (Dropout)."""

    hidden: list[PositiveInt] = Field(default_factory=lambda: [64, 32])
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batchnorm: bool = False


class _ConvParams(_ArchParams):
    """Convolutions with 'same' padding and max pooling, then dense layers.

    Features come flat, ``(n, C*L)`` for one dimension, ``(n, C*H*W)`` for two and
    ``(n, C*D*H*W)`` for three, channel-major, and are reshaped inside the module.
    """

    input_shape: list[PositiveInt]
    channels: list[PositiveInt] = Field(default_factory=lambda: [8, 16])
    kernel_size: PositiveInt = 3
    pool: int = Field(2, ge=1, description="Max-pool size after each convolution.")
    hidden: list[PositiveInt] = Field(default_factory=lambda: [32])
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    _dims: ClassVar[int] = 1

    @model_validator(mode="after")
    def _shape_fits(self) -> _ConvParams:
        if len(self.input_shape) != self._dims + 1:
            raise ValueError(
                f"input_shape needs {self._dims + 1} numbers (channels then "
                f"{self._dims} spatial sizes), got {self.input_shape}"
            )
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        spatial = self.spatial_after_pooling()
        if min(spatial) < 1:
            raise ValueError(
                f"input_shape {self.input_shape} is too small for {len(self.channels)} "
                f"poolings of size {self.pool}; use fewer channels or pool=1"
            )
        return self

    def spatial_after_pooling(self) -> list[int]:
        """Spatial sizes after the convolution stack."""
        sizes = list(self.input_shape[1:])
        for _ in self.channels:
            sizes = [s // self.pool for s in sizes]
        return sizes

    def expected_inputs(self) -> int | None:
        return math.prod(self.input_shape)


class Cnn1dParams(_ConvParams):
    """1D CNN; ``input_shape`` is ``[C, L]``."""

    _dims: ClassVar[int] = 1


class Cnn2dParams(_ConvParams):
    """2D CNN; ``input_shape`` is ``[C, H, W]``."""

    _dims: ClassVar[int] = 2


class Cnn3dParams(_ConvParams):
    """3D CNN; ``input_shape`` is ``[C, D, H, W]``."""

    _dims: ClassVar[int] = 3


class Unet3dParams(_ArchParams):
    """A small 3D U-Net mapping a voxel map to per-voxel outputs (calibration maps).

    Input rows are flat ``(n, C*D*H*W)``; outputs are flat ``(n, out_channels*D*H*W)``,
    channel-major.
    """

    input_shape: list[PositiveInt]
    out_channels: PositiveInt = 1
    base_channels: PositiveInt = 4
    depth: int = Field(2, ge=1, le=4, description="Number of down-samplings.")
    activation: Activation = "relu"

    @model_validator(mode="after")
    def _shape_fits(self) -> Unet3dParams:
        if len(self.input_shape) != 4:
            raise ValueError(
                f"input_shape needs 4 numbers [C, D, H, W], got {self.input_shape}"
            )
        step = 2**self.depth
        if any(s % step for s in self.input_shape[1:]):
            raise ValueError(
                f"spatial sizes {self.input_shape[1:]} must be divisible by "
                f"2**depth = {step}"
            )
        return self

    def expected_inputs(self) -> int | None:
        return math.prod(self.input_shape)

    def expected_outputs(self) -> int | None:
        return self.out_channels * math.prod(self.input_shape[1:])


class DeepSetsParams(_ArchParams):
    """Permutation-invariant network over a padded list of objects.

    A row is laid out as ``[count] item_0 … item_{max_items-1} [globals]``: the count
    column only with ``mask="count"``, each item ``item_features`` wide, and
    ``global_features`` event-level columns at the end. ``phi`` runs on every item,
    the outputs of filled slots are summed, the globals are appended and ``rho``
    gives the outputs.
    """

    max_items: PositiveInt
    item_features: PositiveInt
    global_features: int = Field(0, ge=0)
    mask: Literal["pad_value", "count"] = "pad_value"
    mask_feature: int = Field(
        0, ge=0, description="Item feature compared with pad_value (mask=pad_value)."
    )
    pad_value: float = Field(
        0.0, description="Raw value of mask_feature that marks an empty slot."
    )
    input_pad_value: float | None = Field(
        None,
        description="pad_value as the module sees it, after the card's scaling; "
        "set by the family (None: same as pad_value).",
    )
    phi: list[PositiveInt] = Field(default_factory=lambda: [32, 32])
    rho: list[PositiveInt] = Field(default_factory=lambda: [32])
    activation: Activation = "relu"

    @model_validator(mode="after")
    def _mask_fits(self) -> DeepSetsParams:
        if self.mask_feature >= self.item_features:
            raise ValueError(
                f"mask_feature={self.mask_feature} but items have only "
                f"{self.item_features} features"
            )
        return self

    @property
    def items_start(self) -> int:
        """Column of the first item feature."""
        return 1 if self.mask == "count" else 0

    @property
    def items_stop(self) -> int:
        """Column after the last item feature."""
        return self.items_start + self.max_items * self.item_features

    def expected_inputs(self) -> int | None:
        return self.items_stop + self.global_features


class AutoencoderParams(_ArchParams):
    """Encoder and decoder MLPs; the output is the reconstructed input row."""

    encoder: list[PositiveInt] = Field(default_factory=lambda: [32, 16])
    latent: PositiveInt = 4
    decoder: list[PositiveInt] | None = Field(
        None, description="Decoder widths; None mirrors the encoder."
    )
    activation: Activation = "relu"

    def expected_outputs(self) -> int | None:
        return self.n_inputs


class _Spec(Params):
    def to_json(self) -> dict[str, Any]:
        """The ``arch.json`` document: ``{"builder": ..., "params": {...}}``."""
        return self.model_dump(mode="json")


class MlpSpec(_Spec):
    builder: Literal["mlp"] = "mlp"
    params: MlpParams = Field(default_factory=MlpParams)


class Cnn1dSpec(_Spec):
    builder: Literal["cnn1d"]
    params: Cnn1dParams


class Cnn2dSpec(_Spec):
    builder: Literal["cnn2d"]
    params: Cnn2dParams


class Cnn3dSpec(_Spec):
    builder: Literal["cnn3d"]
    params: Cnn3dParams


class Unet3dSpec(_Spec):
    builder: Literal["unet3d"]
    params: Unet3dParams


class DeepSetsSpec(_Spec):
    builder: Literal["deepsets"]
    params: DeepSetsParams


class AutoencoderSpec(_Spec):
    builder: Literal["autoencoder"]
    params: AutoencoderParams = Field(default_factory=AutoencoderParams)


AnySpec = (
    MlpSpec
    | Cnn1dSpec
    | Cnn2dSpec
    | Cnn3dSpec
    | Unet3dSpec
    | DeepSetsSpec
    | AutoencoderSpec
)
#: A network: builder name plus that builder's parameters.
ArchSpec = Annotated[AnySpec, Field(discriminator="builder")]

#: Parameter model of each builder.
ARCH_PARAMS: dict[str, type[_ArchParams]] = {
    "mlp": MlpParams,
    "cnn1d": Cnn1dParams,
    "cnn2d": Cnn2dParams,
    "cnn3d": Cnn3dParams,
    "unet3d": Unet3dParams,
    "deepsets": DeepSetsParams,
    "autoencoder": AutoencoderParams,
}


def parse_arch(doc: Any, *, where: str = "arch") -> AnySpec:
    """Validate an architecture document ``{"builder": name, "params": {...}}``.

    Parameters
    ----------
    doc : mapping
        The document, as in ``arch.json`` or under ``family.arch`` of a config.
    where : str
        Dotted key or file named in error messages.

    Raises
    ------
    ConfigError
        The builder is unknown or a parameter is invalid; the message names the key.
    """
    from pydantic import TypeAdapter, ValidationError

    try:
        spec: AnySpec = TypeAdapter(ArchSpec).validate_python(doc)
        return spec
    except ValidationError as exc:
        err = exc.errors()[0]
        builders = ", ".join(ARCH_PARAMS)
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            name = doc.get("builder") if isinstance(doc, dict) else None
            close = suggest(str(name), list(ARCH_PARAMS)) if name else None
            msg = f"unknown network builder {name!r}" if name else "no builder given"
            if close:
                msg += f"; did you mean '{close}'?"
            raise ConfigError(
                msg, key=f"{where}.builder", hint=f"builders: {builders}"
            ) from None
        # The discriminator adds the builder name to the location; drop it.
        loc = [str(p) for p in err["loc"] if str(p) not in ARCH_PARAMS]
        key = ".".join([where, *loc])
        raise ConfigError(
            f"invalid network: {err['msg']}",
            key=key,
            hint=f"builders: {builders}",
        ) from None


class TorchParams(Params):
    """Parameters of the ``torch`` model family.

    Attributes
    ----------
    arch : ArchSpec
        The network (``{"builder": "mlp", "params": {"hidden": [64, 32]}}``).
        ``n_inputs``, ``n_outputs`` and ``final`` are filled from the training set.
    epochs : int
        Maximum number of passes over the training rows.
    batch_size : int
    lr : float
        Initial learning rate of AdamW.
    weight_decay : float
        Decoupled weight decay of AdamW.
    schedule : {"cosine", "plateau", "none"}
        Learning-rate schedule: cosine decay to zero over ``epochs``, or halving when
        the validation loss stalls for ``max(1, patience // 3)`` epochs.
    patience : int or None
        Stop after this many epochs without a better validation loss; the best
        weights are kept. None trains all epochs (still keeping the best weights).
    loss : {"auto", "bce", "ce", "mse", "huber", "pinball"}
        ``auto`` takes bce (binary), ce (multiclass), mse (regression, anomaly).
    quantiles : list of float
        Quantiles of the ``pinball`` loss, one output each.
    huber_delta : float
        Transition point of the ``huber`` loss, in standardised target units.
    scale : {"standard", "none"}
        Standardise features (and regression targets) with the training mean and
        standard deviation. Feature scaling goes into the model card; target
        scaling is folded into the last layer.
    balance_classes : bool
        Reweight classification rows so every class carries the same total weight.
    anomaly_rows : {"background", "all"}
        For ``task=anomaly``: train the autoencoder on rows labelled 0 only, or on
        every row.
    threads : int
        Torch threads during training and prediction (one is usually fastest here).
    check_rows : int
        Validation rows kept to check the ONNX export against torch.
    """

    arch: ArchSpec = Field(default_factory=MlpSpec)
    epochs: PositiveInt = 50
    batch_size: PositiveInt = 256
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    schedule: Literal["cosine", "plateau", "none"] = "cosine"
    patience: PositiveInt | None = 10
    loss: Literal["auto", "bce", "ce", "mse", "huber", "pinball"] = "auto"
    quantiles: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])
    huber_delta: float = Field(1.0, gt=0.0)
    scale: Literal["standard", "none"] = "standard"
    balance_classes: bool = False
    anomaly_rows: Literal["background", "all"] = "background"
    threads: PositiveInt = 1
    check_rows: PositiveInt = 512

    @field_validator("quantiles")
    @classmethod
    def _quantiles_ordered(cls, q: list[float]) -> list[float]:
        if not q or any(not 0.0 < v < 1.0 for v in q):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {q}")
        if any(b <= a for a, b in itertools.pairwise(q)):
            raise ValueError(f"quantiles must be strictly increasing, got {q}")
        return q
