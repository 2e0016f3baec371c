"""Network builders of the torch family, and loading a network from an artifact.

Every network takes flat float32 feature rows ``(n, n_inputs)``, already scaled with
the model card's offsets and scales, and reshapes them inside ``forward``. ``forward``
has no data-dependent control flow, so torch.fx (used by hls4ml) and the ONNX
exporter can trace it. Importing this module imports torch.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from trigml.errors import ConfigError, ModelError
from trigml_torch.specs import (
    AutoencoderParams,
    DeepSetsParams,
    MlpParams,
    Unet3dParams,
    _ConvParams,
    parse_arch,
)

if TYPE_CHECKING:
    from trigml.artifact import Artifact

__all__ = [
    "AutoencoderNet",
    "ConvNet",
    "DeepSetsNet",
    "MlpNet",
    "ShapedInput",
    "TriggerNet",
    "Unet3dNet",
    "build_module",
    "load_module",
]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
}


def _final_layer(kind: str | None) -> nn.Module | None:
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "softmax":
        return nn.Softmax(dim=1)
    return None


def _dense_stack(
    n_in: int,
    widths: list[int],
    activation: str,
    *,
    dropout: float = 0.0,
    batchnorm: bool = False,
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers.append(nn.Linear(n_in, width))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(_ACTIVATIONS[activation]())
        if dropout > 0.0:
            layers.append(nn.Dropout(dropout))
        n_in = width
    return nn.Sequential(*layers)


def _width(params: Any, builder: str, name: str) -> int:
    value = getattr(params, name)
    if value is None:
        raise ConfigError(
            f"cannot build '{builder}': {name} is not set",
            key=f"arch.params.{name}",
            hint="the torch family sets it from the training set; set it by hand "
            "when building a network directly",
        )
    return int(value)


class TriggerNet(nn.Module):
    """Base of every network: ``forward(x) = final(logits(x))``.

    ``x`` is a batch of flat rows, shape (n, n_inputs). Networks whose layers read
    shaped inputs (CNNs, the U-Net) reshape the rows channel-major to
    ``(n, *input_shape)`` first; :meth:`shaped` gives the same network without that
    reshape, for tools that want shaped inputs (hls4ml inserts its channels-last
    transposes only when the model's input is the shaped tensor).

    Attributes
    ----------
    input_shape : tuple of int
        Shape of one row as the first layer reads it: ``(n_inputs,)`` for flat
        networks, ``(C, L)``, ``(C, H, W)`` or ``(C, D, H, W)`` for convolutions.
    head : nn.Linear or nn.Conv3d
        The last affine layer, whose output channels are the outputs (or the output
        channels of a voxel map). Regression target scaling is folded into it.
    """

    input_shape: tuple[int, ...]
    head: nn.Linear | nn.Conv3d

    def __init__(self, final: str | None, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.final = _final_layer(final)
        self.input_shape = tuple(int(s) for s in input_shape)

    def shaped_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs before the final activation from inputs ``(n, *input_shape)``."""
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs before the final activation from flat rows, (n, n_outputs)."""
        if len(self.input_shape) > 1:
            x = x.view(-1, *self.input_shape)
        return self.shaped_logits(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.logits(x)
        if self.final is None:
            return z
        return self.final(z)

    def shaped(self) -> ShapedInput:
        """This network reading inputs ``(n, *input_shape)``, with shared weights."""
        return ShapedInput(self)


class ShapedInput(nn.Module):
    """A :class:`TriggerNet` that reads shaped inputs instead of flat rows.

    Feed it ``features.reshape(-1, *net.input_shape)``: the same numbers as the flat
    network, with no reshape inside the graph.
    """

    def __init__(self, net: TriggerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net.shaped_logits(x)
        if self.net.final is None:
            return z
        return self.net.final(z)


class MlpNet(TriggerNet):
    """Fully connected network."""

    def __init__(self, p: MlpParams) -> None:
        n_in = _width(p, "mlp", "n_inputs")
        n_out = _width(p, "mlp", "n_outputs")
        super().__init__(p.final, (n_in,))
        self.body = _dense_stack(
            n_in, p.hidden, p.activation, dropout=p.dropout, batchnorm=p.batchnorm
        )
        self.head = nn.Linear(p.hidden[-1] if p.hidden else n_in, n_out)

    def shaped_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}


class ConvNet(TriggerNet):
    """1D, 2D or 3D CNN: convolutions keeping the size, max pooling, dense layers."""

    def __init__(self, p: _ConvParams, builder: str) -> None:
        n_out = _width(p, builder, "n_outputs")
        super().__init__(p.final, tuple(p.input_shape))
        dims = len(p.input_shape) - 1
        layers: list[nn.Module] = []
        n_in = p.input_shape[0]
        for width in p.channels:
            layers.append(
                _CONV[dims](n_in, width, p.kernel_size, padding=p.kernel_size // 2)
            )
            layers.append(_ACTIVATIONS[p.activation]())
            if p.pool > 1:
                layers.append(_POOL[dims](p.pool))
            n_in = width
        self.conv = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        n_flat = n_in * math.prod(p.spatial_after_pooling())
        self.dense = _dense_stack(n_flat, p.hidden, p.activation, dropout=p.dropout)
        self.head = nn.Linear(p.hidden[-1] if p.hidden else n_flat, n_out)

    def shaped_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dense(self.flatten(self.conv(x))))


def _double_conv3d(n_in: int, n_out: int, activation: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(n_in, n_out, 3, padding=1),
        _ACTIVATIONS[activation](),
        nn.Conv3d(n_out, n_out, 3, padding=1),
        _ACTIVATIONS[activation](),
    )


class Unet3dNet(TriggerNet):
    """A 3D U-Net: ``depth`` down-samplings with skip connections, flat output."""

    def __init__(self, p: Unet3dParams) -> None:
        super().__init__(p.final, tuple(p.input_shape))
        widths = [p.base_channels * 2**i for i in range(p.depth + 1)]
        self.down = nn.ModuleList()
        n_in = p.input_shape[0]
        for width in widths[:-1]:
            self.down.append(_double_conv3d(n_in, width, p.activation))
            n_in = width
        self.pool = nn.MaxPool3d(2)
        self.bottom = _double_conv3d(n_in, widths[-1], p.activation)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for wide, narrow in zip(widths[:0:-1], widths[-2::-1]):
            self.up.append(nn.ConvTranspose3d(wide, narrow, 2, stride=2))
            self.merge.append(_double_conv3d(2 * narrow, narrow, p.activation))
        self.head = nn.Conv3d(widths[0], p.out_channels, 1)
        self.flatten = nn.Flatten()

    def shaped_logits(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.flatten(self.head(x))


class DeepSetsNet(TriggerNet):
    """Deep sets: ``rho(sum over filled slots of phi(item), globals)``.

    Empty slots are found from the count column (``mask="count"``) or from the value
    of one item feature (``mask="pad_value"``, compared with a tolerance of 1e-3
    relative to the pad value so that float32 scaling does not hide a pad).
    """

    def __init__(self, p: DeepSetsParams) -> None:
        n_out = _width(p, "deepsets", "n_outputs")
        super().__init__(p.final, (p.items_stop + p.global_features,))
        self.max_items = p.max_items
        self.item_features = p.item_features
        self.start = p.items_start
        self.stop = p.items_stop
        self.n_globals = p.global_features
        self.use_count = p.mask == "count"
        self.mask_feature = p.mask_feature
        pad = p.pad_value if p.input_pad_value is None else p.input_pad_value
        self.pad = float(pad)
        self.pad_tolerance = 1e-3 * max(1.0, abs(self.pad))
        self.slots: torch.Tensor
        slots = torch.arange(p.max_items, dtype=torch.float32)
        self.register_buffer("slots", slots, persistent=False)
        self.phi = _dense_stack(p.item_features, p.phi, p.activation)
        n_pooled = (p.phi[-1] if p.phi else p.item_features) + p.global_features
        self.rho = _dense_stack(n_pooled, p.rho, p.activation)
        self.head = nn.Linear(p.rho[-1] if p.rho else n_pooled, n_out)

    def shaped_logits(self, x: torch.Tensor) -> torch.Tensor:
        items = x[:, self.start : self.stop].reshape(
            -1, self.max_items, self.item_features
        )
        if self.use_count:
            filled = x[:, 0:1] > self.slots
        else:
            key = items[:, :, self.mask_feature]
            filled = (key - self.pad).abs() > self.pad_tolerance
        pooled = (self.phi(items) * filled.unsqueeze(-1).float()).sum(dim=1)
        if self.n_globals:
            pooled = torch.cat([pooled, x[:, self.stop :]], dim=1)
        return self.head(self.rho(pooled))


class AutoencoderNet(TriggerNet):
    """Encoder and decoder MLPs; the output is the reconstruction of the input."""

    def __init__(self, p: AutoencoderParams) -> None:
        n_in = _width(p, "autoencoder", "n_inputs")
        super().__init__(p.final, (n_in,))
        self.encoder = _dense_stack(n_in, [*p.encoder, p.latent], p.activation)
        decoder = list(reversed(p.encoder)) if p.decoder is None else p.decoder
        self.decoder = _dense_stack(p.latent, decoder, p.activation)
        self.head = nn.Linear(decoder[-1] if decoder else p.latent, n_in)

    def shaped_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))


def build_module(arch: dict[str, Any]) -> TriggerNet:
    """Build a network (with fresh weights) from an architecture document.

    Parameters
    ----------
    arch : dict
        ``{"builder": "mlp", "params": {...}}`` as written to ``arch.json``;
        ``params`` must include ``n_inputs`` and ``n_outputs`` where the builder
        cannot infer them.

    Returns
    -------
    TriggerNet
        The network in training mode.

    Raises
    ------
    ConfigError
        Unknown builder or invalid parameters, with the offending key.
    """
    spec = parse_arch(arch)
    p = spec.params
    if isinstance(p, MlpParams):
        return MlpNet(p)
    if isinstance(p, _ConvParams):
        return ConvNet(p, spec.builder)
    if isinstance(p, Unet3dParams):
        return Unet3dNet(p)
    if isinstance(p, DeepSetsParams):
        return DeepSetsNet(p)
    return AutoencoderNet(p)


def load_module(artifact: Artifact) -> TriggerNet:
    """Rebuild the network of a verified artifact and load its weights.

    Reads ``torch-arch`` (``arch.json``) and ``torch-state`` (``model.pt``, read with
    ``torch.load(..., weights_only=True)``, so no pickled code ever runs).

    Parameters
    ----------
    artifact : trigml.artifact.Artifact
        An artifact returned by :func:`trigml.artifact.load_artifact`.

    Returns
    -------
    TriggerNet
        The network in eval mode, on the CPU.

    Raises
    ------
    ModelError
        A file is missing or unreadable, or the weights do not fit the network.
    """
    arch_path = artifact.file("torch-arch")
    state_path = artifact.file("torch-state")
    try:
        doc = json.loads(arch_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{arch_path}: cannot read the network: {exc}") from None
    try:
        module = build_module(doc)
    except ConfigError as exc:
        raise ModelError(f"{arch_path}: {exc.message}") from None
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, OSError
        raise ModelError(
            f"{state_path}: not a plain state_dict readable with weights_only=True "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ModelError(
            f"{state_path}: weights do not fit the network of {arch_path.name}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    return module.train(False)
