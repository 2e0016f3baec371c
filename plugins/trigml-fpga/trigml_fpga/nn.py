"""Neural networks as hls4ml firmware: configuration, project, compiled emulation.

A torch network is traced with torch.fx and trimmed for firmware: a leading reshape of
the flat feature row becomes the firmware input shape, and (in ``logits`` mode) the
final sigmoid or softmax is left to Python. hls4ml's PyTorch front end turns it into
a Vitis HLS project with explicit per-layer fixed-point types; the project's C++ is
compiled with g++ together with a batched entry point, and the estimates a physicist
can have before synthesis (multiplications, DSPs, parameter bits, latency in clock
cycles) are read from the converted graph.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trigml.errors import ConfigError, ModelError
from trigml_fpga.emulation import network_batch_source
from trigml_fpga.fixed import FixedType, parse_fixed
from trigml_fpga.params import LayerPrecision
from trigml_fpga.toolchain import CompileJob, ap_include, compile_library

__all__ = [
    "DSP_CAPACITY",
    "NetworkFirmware",
    "PreparedNetwork",
    "build_network",
    "hls_config",
    "network_estimates",
    "prepare_network",
]

log = logging.getLogger(__name__)

#: DSP slices of common trigger FPGAs, to express the DSP estimate as a fraction.
DSP_CAPACITY = {
    "xcvu9p": 6840,
    "xcvu13p": 12288,
    "xcvu7p": 4560,
    "xcku115": 5520,
    "xcvu19p": 3840,
    "xcvp1802": 14352,
}

#: Weights narrower than this are multiplied in LUTs rather than DSP slices.
DSP_MIN_WEIGHT_BITS = 9

_FINALS = {"sigmoid", "softmax"}


@dataclass(frozen=True)
class NetworkFirmware:
    """Resolved firmware settings of a network.

    Attributes
    ----------
    precision : FixedType
        Default type (with the modes that will be written).
    layers : mapping of str to LayerPrecision or str
        Per-layer overrides; a bare type sets whichever of result, weight and bias
        the layer has.
    reuse_factor : int
    strategy : str
    io_type : str
    clock_period_ns : float
    part : str
    output : str
        ``logits`` or ``probabilities``.
    """

    precision: FixedType
    layers: Mapping[str, LayerPrecision | str] = field(default_factory=dict)
    reuse_factor: int = 1
    strategy: str = "latency"
    io_type: str = "io_parallel"
    clock_period_ns: float = 5.0
    part: str = "xcvu13p-flga2577-2-e"
    output: str = "logits"

    @classmethod
    def from_params(cls, params: Any) -> NetworkFirmware:
        """Settings from :class:`trigml_fpga.params.Hls4mlParams`."""
        return cls(
            precision=parse_fixed(params.precision).with_safe_modes(),
            layers=dict(params.layers),
            reuse_factor=params.reuse_factor,
            strategy=params.strategy,
            io_type=params.io_type,
            clock_period_ns=params.clock_period_ns,
            part=params.part,
            output=params.output,
        )

    def with_precision(self, precision: FixedType) -> NetworkFirmware:
        """The same settings with another default type."""
        return NetworkFirmware(
            precision=precision,
            layers=self.layers,
            reuse_factor=self.reuse_factor,
            strategy=self.strategy,
            io_type=self.io_type,
            clock_period_ns=self.clock_period_ns,
            part=self.part,
            output=self.output,
        )

    def key(self) -> dict[str, Any]:
        """JSON-friendly description, part of the cache key and of the report."""
        return {
            "precision": self.precision.cpp(),
            "layers": {
                k: v if isinstance(v, str) else v.model_dump(exclude_none=True)
                for k, v in sorted(self.layers.items())
            },
            "reuse_factor": self.reuse_factor,
            "strategy": self.strategy,
            "io_type": self.io_type,
            "clock_period_ns": self.clock_period_ns,
            "part": self.part,
            "output": self.output,
        }


@dataclass
class PreparedNetwork:
    """A traced network ready for hls4ml.

    Attributes
    ----------
    module : torch.fx.GraphModule
    input_shape : tuple of int
        Firmware input shape without the batch axis, channels first.
    n_inputs, n_outputs : int
        Flat sizes of input and output.
    final : str or None
        Activation (``sigmoid``/``softmax``) taken out of the firmware, to apply in
        Python to the emulated outputs.
    firmware_final : str or None
        Final sigmoid or softmax left inside the firmware.
    """

    module: Any
    input_shape: tuple[int, ...]
    n_inputs: int
    n_outputs: int
    final: str | None
    firmware_final: str | None = None


def _final_kind(node: Any, modules: Mapping[str, Any]) -> str | None:
    import torch

    if node.op == "call_module":
        mod = modules.get(node.target)
        if isinstance(mod, torch.nn.Sigmoid):
            return "sigmoid"
        if isinstance(mod, torch.nn.Softmax) and mod.dim in (1, -1, None):
            return "softmax"
    if node.op == "call_function":
        if node.target in (torch.sigmoid, torch.nn.functional.sigmoid):
            return "sigmoid"
        if node.target in (torch.softmax, torch.nn.functional.softmax):
            return "softmax"
    if node.op == "call_method" and node.target in _FINALS:
        return str(node.target)
    return None


def _leading_shape(node: Any) -> tuple[int, ...] | None:
    """Target shape of a ``view``/``reshape`` of the input, without the batch axis."""
    import torch

    is_view = node.op == "call_method" and node.target in ("view", "reshape")
    is_fn = node.op == "call_function" and node.target is torch.reshape
    if not (is_view or is_fn):
        return None
    dims = node.args[1:]
    if len(dims) == 1 and isinstance(dims[0], tuple | list):
        dims = tuple(dims[0])
    if not dims or not all(isinstance(d, int) for d in dims) or dims[0] not in (-1,):
        return None
    return tuple(int(d) for d in dims[1:])


def prepare_network(
    module: Any, n_inputs: int, *, strip_final: bool
) -> PreparedNetwork:
    """Trace a network and trim it for firmware.

    Parameters
    ----------
    module : torch.nn.Module
        Takes flat scaled feature rows (n, n_inputs); may reshape them first.
    n_inputs : int
        Number of features.
    strip_final : bool
        Take a final sigmoid or softmax out of the firmware.

    Raises
    ------
    ModelError
        The network cannot be traced, or its reshape does not fit ``n_inputs``.
    """
    import torch
    import torch.fx

    module = module.train(False)
    try:
        graph_module = torch.fx.symbolic_trace(module)
    except Exception as exc:  # torch.fx raises many kinds on untraceable code
        raise ModelError(
            f"torch.fx cannot trace the network ({type(exc).__name__}: {exc}); "
            "hls4ml needs a forward() without data-dependent control flow"
        ) from None
    graph = graph_module.graph
    modules = dict(graph_module.named_modules())

    input_shape: tuple[int, ...] = (n_inputs,)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ModelError(
            f"the network takes {len(placeholders)} inputs; hls4ml needs 1"
        )
    users = list(placeholders[0].users)
    if len(users) == 1 and (shape := _leading_shape(users[0])) is not None:
        if math.prod(shape) != n_inputs:
            raise ModelError(
                f"the network reshapes its input to {shape}, which does not hold "
                f"{n_inputs} features"
            )
        users[0].replace_all_uses_with(placeholders[0])
        graph.erase_node(users[0])
        input_shape = shape

    output = next(n for n in graph.nodes if n.op == "output")
    last = output.args[0]
    final = _final_kind(last, modules) if hasattr(last, "op") else None
    if strip_final and final is not None:
        output.args = (last.args[0],)
        graph.erase_node(last)
    graph.lint()
    graph_module.recompile()
    graph_module.delete_all_unused_submodules()

    with torch.no_grad():
        probe = graph_module(torch.zeros((1, *input_shape)))
    if not isinstance(probe, torch.Tensor):
        raise ModelError("the network returns several outputs; hls4ml needs one")
    return PreparedNetwork(
        module=graph_module.train(False),
        input_shape=input_shape,
        n_inputs=n_inputs,
        n_outputs=int(probe.numel()),
        final=final if strip_final else None,
        firmware_final=None if strip_final else final,
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Capture what hls4ml prints, and log it at debug level."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        text = buffer.getvalue().strip()
        if text:
            log.debug("hls4ml: %s", text)


def _probability_type(fw: NetworkFirmware) -> str:
    return f"ap_ufixed<{fw.precision.width},0,AP_RND,AP_SAT>"


def hls_config(prepared: PreparedNetwork, fw: NetworkFirmware) -> dict[str, Any]:
    """The hls4ml configuration with explicit types for every layer.

    Inputs, weights, biases and layer outputs get ``fw.precision``; accumulators of
    dense and convolution layers stay ``auto``, which hls4ml sizes for the exact sum;
    in ``probabilities`` mode the final sigmoid or softmax outputs a saturating
    ``ap_ufixed<W,0>``. Per-layer overrides come last.

    Raises
    ------
    ConfigError
        An override names a layer the network does not have.
    """
    import hls4ml

    default = fw.precision.cpp()
    with _quiet():
        config = hls4ml.utils.config_from_pytorch_model(
            prepared.module,
            input_shape=prepared.input_shape,
            granularity="name",
            backend="Vitis",
            default_precision=default,
            default_reuse_factor=fw.reuse_factor,
            channels_last_conversion="full",
            transpose_outputs=False,
        )
    config["Model"]["Strategy"] = fw.strategy.capitalize()
    layers: dict[str, Any] = config["LayerName"]
    last = list(layers)[-1]
    for name, layer in layers.items():
        precision = layer.setdefault("Precision", {})
        for kind, value in list(precision.items()):
            if value == "auto" and kind != "accum":
                precision[kind] = default
        if name == last and prepared.firmware_final is not None:
            precision["result"] = _probability_type(fw)

    unknown = sorted(set(fw.layers) - set(layers))
    if unknown:
        raise ConfigError(
            f"no layer named {', '.join(map(repr, unknown))} in the network",
            key="layers",
            hint="layers: " + ", ".join(layers),
        )
    for name, spec in fw.layers.items():
        _override(name, layers[name], spec)
    return config


def _override(name: str, layer: dict[str, Any], spec: LayerPrecision | str) -> None:
    """Apply one layer's overrides to its hls4ml configuration.

    A bare type sets the result and, where the layer has them, weight and bias; a
    mapping naming a type the layer does not have is refused.
    """
    precision = layer.setdefault("Precision", {})
    if isinstance(spec, str):
        wanted = {k: spec for k in ("result", "weight", "bias") if k in precision}
        wanted["result"] = spec
        reuse = None
    else:
        wanted = {
            k: v
            for k in ("result", "weight", "bias", "accum")
            if (v := getattr(spec, k)) is not None
        }
        reuse = spec.reuse_factor
    for kind, value in wanted.items():
        if kind != "result" and kind not in precision:
            raise ConfigError(
                f"layer '{name}' has no {kind} type",
                key=f"layers.{name}.{kind}",
                hint="it has: " + ", ".join(sorted(precision)),
            )
        precision[kind] = parse_fixed(value, key=f"layers.{name}.{kind}").cpp()
    if reuse is not None:
        layer["ReuseFactor"] = reuse


def build_network(
    prepared: PreparedNetwork, fw: NetworkFirmware, folder: Path, project: str
) -> dict[str, Any]:
    """Write the HLS project into ``folder/project`` and compile its emulation.

    Parameters
    ----------
    prepared : PreparedNetwork
    fw : NetworkFirmware
    folder : Path
        Empty cache entry folder.
    project : str
        C identifier naming the top function and the project.

    Returns
    -------
    dict
        What the cache remembers: sizes, output activation, layer names and types,
        estimates, compile time.

    Raises
    ------
    ModelError
        hls4ml cannot convert the network.
    """
    import hls4ml

    config = hls_config(prepared, fw)
    project_dir = folder / "project"
    try:
        with _quiet():
            model = hls4ml.converters.convert_from_pytorch_model(
                prepared.module,
                output_dir=str(project_dir),
                project_name=project,
                backend="Vitis",
                hls_config=config,
                io_type=fw.io_type,
                part=fw.part,
                clock_period=fw.clock_period_ns,
            )
            # hls4ml writes its config as YAML; keep the network out of it as text.
            model.config.config["PytorchModel"] = str(prepared.module)
            model.write()
    except (ConfigError, ModelError):
        raise
    except Exception as exc:  # hls4ml raises bare Exceptions for unsupported layers
        raise ModelError(
            f"hls4ml cannot convert the network: {type(exc).__name__}: {exc}",
            hint="hls4ml's PyTorch front end supports dense, convolution, pooling, "
            "batch-norm and activation layers in a chain; see the trigml-fpga README",
        ) from None
    outputs = model.get_output_variables()
    if len(outputs) != 1:
        raise ModelError(f"the firmware has {len(outputs)} outputs; trigml needs 1")

    build_dir = folder / "emulation"
    build_dir.mkdir()
    batch = build_dir / "trigml_batch.cpp"
    batch.write_text(
        network_batch_source(project, prepared.n_inputs, prepared.n_outputs)
    )
    firmware = project_dir / "firmware"
    seconds = compile_library(
        [
            CompileJob(firmware / f"{project}.cpp"),
            CompileJob(project_dir / f"{project}_bridge.cpp"),
            CompileJob(batch),
        ],
        build_dir / "emulation.so",
        includes=[firmware / "ap_types", firmware, project_dir, ap_include()],
        defines={"WEIGHTS_DIR": f'"{(firmware / "weights").resolve()}"'},
        cwd=build_dir,
    )
    return {
        "project": project,
        "input_shape": list(prepared.input_shape),
        "n_inputs": prepared.n_inputs,
        "n_outputs": prepared.n_outputs,
        "final": prepared.final,
        "firmware": fw.key(),
        "layers": _layer_types(model),
        "estimates": network_estimates(model, fw),
        "compile_seconds": round(seconds, 2),
    }


def _precision_of(variable: Any) -> Any:
    return variable.type.precision


def _layer_types(model: Any) -> list[dict[str, Any]]:
    rows = []
    for layer in model.get_layers():
        row = {
            "name": layer.name,
            "class": layer.class_name,
            "result": str(_precision_of(layer.get_output_variable())),
        }
        for w in layer.get_weights():
            row[_weight_kind(w.name)] = str(_precision_of(w))
        rows.append(row)
    return rows


def _weight_kind(name: str) -> str:
    return "bias" if name.startswith("b") else "weight"


def _bits(precision: Any) -> int:
    return int(getattr(precision, "width", 0) or 0)


def network_estimates(model: Any, fw: NetworkFirmware) -> dict[str, Any]:
    """Resource and latency estimates read from the converted hls4ml graph.

    Multiplications count non-zero weights per inference; a multiplication with a
    weight of at least :data:`DSP_MIN_WEIGHT_BITS` bits is assumed to take a DSP
    slice, shared by ``reuse_factor`` multiplications. Latency is summed layer by
    layer from the reuse factors and the io type; none of it replaces synthesis.
    """
    per_layer = []
    totals = {"multiplications": 0, "dsp": 0, "parameter_bits": 0, "parameters": 0}
    latency = 0
    interval = 1
    for layer in model.get_layers():
        row = _layer_estimate(layer, fw.io_type)
        latency += row["latency_cycles"]
        interval = max(interval, row.get("interval_cycles", 1))
        for key in totals:
            totals[key] += row.get(key, 0)
        per_layer.append(row)
    family = fw.part.split("-")[0].lower()
    capacity = DSP_CAPACITY.get(family)
    return {
        "kind": "estimate from the configuration, not from synthesis",
        "multiplications": totals["multiplications"],
        "parameters": totals["parameters"],
        "parameter_bits": totals["parameter_bits"],
        "dsp_estimate": totals["dsp"],
        "dsp_fraction_of_part": round(totals["dsp"] / capacity, 5)
        if capacity
        else None,
        "latency_cycles_estimate": latency,
        "latency_ns_estimate": round(latency * fw.clock_period_ns, 2),
        "initiation_interval_cycles": interval,
        "clock_period_ns": fw.clock_period_ns,
        "method": (
            "dense/conv: reuse_factor + 2 cycles per pass (io_stream conv: one pass "
            "per output pixel); relu, pooling, batch-norm: 1; table activations: 2; "
            f"softmax: 5. DSP: non-zero weight multiplications with weights >= "
            f"{DSP_MIN_WEIGHT_BITS} bits, divided by the reuse factor."
        ),
        "layers": per_layer,
    }


_MAC_LAYERS = ("Dense", "Conv1D", "Conv2D", "PointwiseConv1D", "PointwiseConv2D")
_ONE_CYCLE = ("BatchNormalization", "Pooling1D", "Pooling2D", "LeakyReLU")


def _layer_estimate(layer: Any, io_type: str) -> dict[str, Any]:
    """Parameters, multiplications, DSPs and cycles of one hls4ml layer."""
    kind = layer.class_name
    rf = int(layer.get_attr("reuse_factor", 1) or 1)
    params = list(layer.get_weights())
    row: dict[str, Any] = {
        "name": layer.name,
        "class": kind,
        "reuse_factor": rf,
        "parameters": int(sum(w.data.size for w in params)),
        "parameter_bits": int(
            sum(w.data.size * _bits(_precision_of(w)) for w in params)
        ),
    }
    weights = [w for w in params if w.name.startswith("w")]
    if weights and kind in _MAC_LAYERS:
        row.update(_mac_estimate(layer, weights, io_type, rf))
    elif kind in ("Activation", "ParametrizedActivation"):
        act = str(layer.get_attr("activation", "")).lower()
        row["latency_cycles"] = 1 if act in ("relu", "linear") else 2
    elif kind == "Softmax":
        row["latency_cycles"] = 5
    elif kind in _ONE_CYCLE:
        row["latency_cycles"] = 1
    elif kind == "ELU":
        row["latency_cycles"] = 2
    else:
        row["latency_cycles"] = 0
    return row


def _mac_estimate(
    layer: Any, weights: list[Any], io_type: str, rf: int
) -> dict[str, int]:
    """A dense or convolution layer: one pass per partition (or pixel, streamed).

    In ``io_parallel`` hls4ml computes a convolution in ``n_partitions`` passes of
    ``pixels / n_partitions`` output pixels each; in ``io_stream`` one pixel per pass.
    """
    nonzero = int(sum(int((w.data != 0).sum()) for w in weights))
    wide = min(_bits(_precision_of(w)) for w in weights) >= DSP_MIN_WEIGHT_BITS
    pixels, passes, parallel = 1, 1, 1
    if layer.class_name != "Dense":
        pixels = int(layer.get_attr("out_width", 1) or 1) * int(
            layer.get_attr("out_height", 1) or 1
        )
        if io_type == "io_stream":
            passes = pixels
        else:
            passes = int(layer.get_attr("n_partitions", pixels) or pixels)
            parallel = max(1, pixels // max(passes, 1))
    return {
        "multiplications": nonzero * pixels,
        "dsp": math.ceil(nonzero * parallel / rf) if wide else 0,
        "latency_cycles": passes * rf + 2,
        "interval_cycles": passes * rf,
    }
