"""The ``torch`` model family: fit a network on a training set and save it.

:class:`TorchFamily` standardises the features (the offsets and scales go into the
model card, the network sees scaled rows), completes the network's widths from the
training set, trains it with early stopping, and saves ``model.onnx``, ``model.pt``
(a state_dict) and ``arch.json``, checking that ONNX reproduces torch.

Task conventions (the scores a :class:`~trigml.components.TrainedModel` predicts,
which are what :meth:`trigml.artifact.Artifact.to_scores` gives for the saved graph):

- binary: one sigmoid output, P(signal), shape (n,);
- multiclass: softmax over the classes, shape (n, k);
- regression: the targets, shape (n,) or (n, n_targets); with the pinball loss one
  output per quantile, shape (n, q). Target standardisation is folded into the last
  layer, so the graph outputs targets in their own units;
- anomaly: the graph outputs the reconstruction of the scaled input and the score is
  its mean squared error. The autoencoder is trained on rows labelled 0 (the
  background, "standard" events) unless ``anomaly_rows: all``.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trigml.components import ModelFamily, TrainedModel, TrainingSet
from trigml.errors import ConfigError, DataError, ModelError
from trigml_torch.specs import (
    AutoencoderSpec,
    DeepSetsParams,
    TorchParams,
    Unet3dParams,
    parse_arch,
)

if TYPE_CHECKING:
    import torch

    from trigml_torch.arch import TriggerNet
    from trigml_torch.training import EpochCallback

__all__ = [
    "FORMATS",
    "ONNX_OPSET",
    "ONNX_TOLERANCE",
    "TorchFamily",
    "TorchPredictor",
    "check_onnx",
    "export_onnx",
    "feature_scaling",
    "output_to_scores",
]

logger = logging.getLogger(__name__)

#: Files a saved torch model consists of, by artifact format name.
FORMATS = {"onnx": "model.onnx", "torch-state": "model.pt", "torch-arch": "arch.json"}
ONNX_OPSET = 17
#: Largest ONNX-versus-torch difference accepted, relative to max(1, |output|).
ONNX_TOLERANCE = 1e-4

_TASKS = ("binary", "multiclass", "regression", "anomaly")
_LOSSES = {
    "binary": ("bce",),
    "multiclass": ("ce",),
    "regression": ("mse", "huber", "pinball"),
    "anomaly": ("mse", "huber"),
}
_FINAL = {
    "binary": "sigmoid",
    "multiclass": "softmax",
    "regression": "none",
    "anomaly": "none",
}


class TorchFamily(ModelFamily):
    """Trains PyTorch networks for every trigml task.

    Parameters
    ----------
    params : TorchParams
        Validated family parameters.
    callback : callable, optional
        Called after every epoch with a dict (``epoch``, ``epochs``, ``train_loss``,
        ``valid_loss``, ``lr``, ``best_epoch``), e.g. to drive a progress bar.
    """

    name = "torch"

    def __init__(
        self, params: TorchParams | None = None, callback: EpochCallback | None = None
    ) -> None:
        self.params = params or TorchParams()
        self.callback = callback

    def fit(
        self,
        train: TrainingSet,
        valid: TrainingSet,
        *,
        seed: int,
        callback: EpochCallback | None = None,
    ) -> TrainedModel:
        """Fit a network on ``train`` with early stopping on ``valid``.

        The same seed, data and parameters give identical weights (one thread).

        Parameters
        ----------
        train, valid : TrainingSet
            Raw (unscaled) features; both with the same task and columns.
        seed : int
            Seeds weight initialisation, dropout and the mini-batch order.
        callback : callable, optional
            Per-epoch progress callback; overrides the one given at construction.

        Returns
        -------
        TrainedModel
            ``model`` is the torch module (eval mode), ``predict`` takes raw features
            and returns scores (see the module docstring); ``extra`` holds
            ``feature_scaling`` (offset, scale), ``arch`` and ``check_features``.

        Raises
        ------
        DataError
            The training or validation set is malformed.
        ConfigError
            The loss or network does not fit the task or the features.
        RunFailure
            Training diverged.
        """
        import torch

        from trigml_torch.arch import build_module
        from trigml_torch.training import Rows, torch_threads, train_loop

        p = self.params
        _check_set(train, "training")
        _check_set(valid, "validation")
        if (
            valid.task != train.task
            or valid.features.shape[1] != train.features.shape[1]
        ):
            raise DataError(
                f"validation set (task {valid.task}, {valid.features.shape[1]} "
                f"features) does not match the training set (task {train.task}, "
                f"{train.features.shape[1]} features)"
            )
        task = train.task
        loss_kind = _resolve_loss(p, task)
        if task == "anomaly":
            train = _anomaly_rows(train, p, "training")
            valid = _anomaly_rows(valid, p, "validation")

        spec = self._spec(task)
        offset, scale = feature_scaling(train.features, p.scale, spec.params)
        n_outputs = _n_outputs(task, loss_kind, train, spec.params, p)
        n_features = train.features.shape[1]
        arch = _complete_arch(spec, task, n_features, n_outputs, offset, scale)

        targets = _Targets.fit(task, loss_kind, train.labels, arch, p)
        x_train = _scaled(train.features, offset, scale)
        x_valid = _scaled(valid.features, offset, scale)
        rows_train = Rows(
            torch.from_numpy(x_train),
            targets.prepare(train.labels, x_train),
            torch.from_numpy(_weights(train, p.balance_classes)),
        )
        rows_valid = Rows(
            torch.from_numpy(x_valid),
            targets.prepare(valid.labels, x_valid),
            torch.from_numpy(_weights(valid, p.balance_classes)),
        )

        logger.info(
            "training a torch '%s' network for a %s task on %d rows (%d validation)",
            arch["builder"],
            task,
            len(train),
            len(valid),
        )
        listener = callback or self.callback

        def on_epoch(record: dict[str, Any]) -> None:
            self.report_progress(int(record["epoch"]) + 1, int(record["epochs"]))
            if listener is not None:
                listener(record)

        started = time.perf_counter()
        with torch_threads(p.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = build_module(arch)
            result = train_loop(
                module,
                rows_train,
                rows_valid,
                p,
                loss_kind=loss_kind,
                seed=seed,
                callback=on_epoch,
            )
        seconds = time.perf_counter() - started
        targets.fold_into(module)

        metrics: dict[str, Any] = {
            "best_epoch": result.best_epoch,
            "valid_loss": result.best_loss,
            "epochs_run": len(result.history),
            "stopped_early": result.stopped_early,
            "train_seconds": round(seconds, 3),
            "n_parameters": sum(t.numel() for t in module.parameters()),
            "history": result.history,
        }
        hyperparameters = {**p.model_dump(mode="json"), "arch": arch, "loss": loss_kind}
        extra = {
            "feature_scaling": (offset, scale),
            "arch": arch,
            "check_features": np.ascontiguousarray(
                valid.features[: p.check_rows], dtype=np.float32
            ),
        }
        return TrainedModel(
            model=module,
            predict=TorchPredictor(module, offset, scale, task, threads=p.threads),
            hyperparameters=hyperparameters,
            metrics=metrics,
            extra=extra,
        )

    def save(self, model: TrainedModel, directory: Path) -> dict[str, str]:
        """Write ``model.onnx``, ``model.pt`` and ``arch.json`` into ``directory``.

        Then run the ONNX file with onnxruntime (one thread) on the validation rows
        kept in ``model.extra["check_features"]`` (or on 64 random scaled rows when
        there are none) and record the largest difference from torch in
        ``model.metrics["onnx_max_abs_diff"]``.

        Raises
        ------
        ModelError
            ``model`` was not fitted by this family, the export failed, or ONNX
            differs from torch by more than :data:`ONNX_TOLERANCE` (relative to
            max(1, |output|)).
        """
        import torch

        module = model.model
        arch = model.extra.get("arch")
        if arch is None or not isinstance(module, torch.nn.Module):
            raise ModelError(
                "the torch family can only save models it fitted (no 'arch' in "
                "TrainedModel.extra or the model is not a torch module)"
            )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        module.train(False)
        (directory / FORMATS["torch-arch"]).write_text(
            json.dumps(arch, indent=2) + "\n"
        )
        torch.save(module.state_dict(), directory / FORMATS["torch-state"])

        rows = _check_rows(model, arch)
        onnx_path = directory / FORMATS["onnx"]
        export_onnx(module, onnx_path, rows)
        diff = check_onnx(module, onnx_path, rows)
        model.metrics["onnx_max_abs_diff"] = diff
        logger.info("ONNX export agrees with torch to %.3g on %d rows", diff, len(rows))
        return dict(FORMATS)

    def _spec(self, task: str) -> Any:
        # An anomaly task without an explicit network gets an autoencoder.
        if task == "anomaly" and "arch" not in self.params.model_fields_set:
            return AutoencoderSpec(builder="autoencoder")
        return self.params.arch


class TorchPredictor:
    """Scores from raw features with a trained network, in float32.

    Parameters
    ----------
    module : TriggerNet
    offset, scale : ndarray, float32, shape (n_features,)
        The standardisation applied before the network.
    task : str
    threads : int
    """

    def __init__(
        self,
        module: TriggerNet,
        offset: np.ndarray,
        scale: np.ndarray,
        task: str,
        *,
        threads: int = 1,
    ) -> None:
        self.module = module
        self.offset = offset
        self.scale = scale
        self.task = task
        self.threads = threads

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Scores for raw features, shape (n, n_features); see the module docstring."""
        from trigml_torch.training import run_module, torch_threads

        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != len(self.offset):
            raise DataError(
                f"torch model expects features of shape (n, {len(self.offset)}), "
                f"got {x.shape}"
            )
        scaled = _scaled(x, self.offset, self.scale)
        with torch_threads(self.threads):
            raw = run_module(self.module, scaled)
        return output_to_scores(self.task, raw, scaled)


def output_to_scores(task: str, raw: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """Turn the graph's output into scores, as ``Artifact.to_scores`` does.

    Parameters
    ----------
    task : str
    raw : ndarray, float32, shape (n, n_outputs)
    scaled : ndarray, float32, shape (n, n_features)
        The network's input (needed for the anomaly score).
    """
    if task == "anomaly":
        return np.asarray(np.mean((raw - scaled) ** 2, axis=1, dtype=np.float32))
    if raw.ndim == 2 and raw.shape[1] == 1:
        return raw[:, 0]
    return raw


def feature_scaling(
    features: np.ndarray, mode: str, arch_params: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and scales that standardise each feature column.

    Parameters
    ----------
    features : ndarray, shape (n, n_features)
        Raw training features.
    mode : {"standard", "none"}
    arch_params : builder parameters, optional
        For a deep-sets network, the statistics of each item feature are taken over
        filled slots only and shared by all slots; a count column is left unscaled.

    Returns
    -------
    offset, scale : ndarray, float32, shape (n_features,)
        ``(x - offset) / scale`` has mean 0 and standard deviation 1 (a constant
        column keeps scale 1).
    """
    n_features = features.shape[1]
    offset = np.zeros(n_features, dtype=np.float64)
    scale = np.ones(n_features, dtype=np.float64)
    if mode == "none" or len(features) == 0:
        return offset.astype(np.float32), scale.astype(np.float32)
    x = features.astype(np.float64)
    offset[:] = x.mean(axis=0)
    scale[:] = x.std(axis=0)
    if isinstance(arch_params, DeepSetsParams):
        _item_scaling(x, arch_params, offset, scale)
    bad = ~np.isfinite(scale) | (scale <= 1e-12)
    scale[bad] = 1.0
    return offset.astype(np.float32), scale.astype(np.float32)


def _item_scaling(
    x: np.ndarray, p: DeepSetsParams, offset: np.ndarray, scale: np.ndarray
) -> None:
    n_slots, width = p.max_items, p.item_features
    items = x[:, p.items_start : p.items_stop].reshape(len(x), n_slots, width)
    if p.mask == "count":
        filled = np.arange(n_slots)[None, :] < x[:, :1]
        offset[0], scale[0] = 0.0, 1.0
    else:
        filled = items[:, :, p.mask_feature] != np.float32(p.pad_value)
    for f in range(width):
        values = items[:, :, f][filled]
        mean = values.mean() if values.size else 0.0
        std = values.std() if values.size else 1.0
        offset[p.items_start + f : p.items_stop : width] = mean
        scale[p.items_start + f : p.items_stop : width] = std


def _scaled(features: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    # The same float32 arithmetic as Artifact.scale, so that scores agree exactly.
    x = np.ascontiguousarray(features, dtype=np.float32)
    if not offset.any() and (scale == 1.0).all():
        return x
    return np.ascontiguousarray(((x - offset) / scale).astype(np.float32, copy=False))


def _check_set(ts: TrainingSet, role: str) -> None:
    where = f"{role} set"
    if ts.task not in _TASKS:
        raise DataError(f"{where}: unknown task '{ts.task}' (tasks: {_TASKS})")
    x = ts.features
    if x.ndim != 2 or len(x) == 0:
        raise DataError(
            f"{where}: features must be a non-empty 2D array, got {x.shape}"
        )
    if len(ts.labels) != len(x) or len(ts.weights) != len(x):
        raise DataError(
            f"{where}: {len(x)} feature rows but {len(ts.labels)} labels and "
            f"{len(ts.weights)} weights"
        )
    if ts.features_spec and len(ts.features_spec) != x.shape[1]:
        raise DataError(
            f"{where}: {x.shape[1]} feature columns but {len(ts.features_spec)} "
            "feature names"
        )
    bad = ~np.isfinite(x).all(axis=0)
    if bad.any():
        names = ts.names or [str(i) for i in range(x.shape[1])]
        cols = [names[i] for i in np.flatnonzero(bad)]
        raise DataError(
            f"{where}: non-finite values in features {cols}",
            hint="fill missing values with a finite default before training",
        )
    w = ts.weights
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise DataError(f"{where}: weights must be finite, >= 0 and not all zero")
    labels = ts.labels
    if ts.task == "binary" and not np.isin(labels, (0, 1)).all():
        raise DataError(f"{where}: binary labels must be 0 or 1")
    if ts.task == "multiclass":
        k = len(ts.classes)
        if labels.ndim != 1 or not np.isin(labels, np.arange(k)).all():
            raise DataError(
                f"{where}: multiclass labels must be class indices 0..{k - 1} "
                f"for classes {ts.classes}"
            )
    if ts.task == "regression" and not np.isfinite(labels).all():
        raise DataError(f"{where}: non-finite regression targets")


def _resolve_loss(p: TorchParams, task: str) -> str:
    allowed = _LOSSES[task]
    if p.loss == "auto":
        return allowed[0]
    if p.loss not in allowed:
        raise ConfigError(
            f"loss '{p.loss}' does not fit a {task} task",
            key="family.loss",
            hint=f"use one of: {', '.join(allowed)} (or auto)",
        )
    return p.loss


def _anomaly_rows(ts: TrainingSet, p: TorchParams, role: str) -> TrainingSet:
    if p.anomaly_rows == "all":
        return ts
    background = np.asarray(ts.labels).reshape(len(ts), -1)[:, 0] == 0
    if not background.any():
        raise DataError(
            f"{role} set: no rows labelled 0 (background) to train the autoencoder on",
            hint="label background rows 0, or set family.anomaly_rows: all",
        )
    return ts.subset(np.flatnonzero(background))


def _n_outputs(
    task: str, loss: str, ts: TrainingSet, arch_params: Any, p: TorchParams
) -> int:
    if task == "binary":
        return 1
    if task == "multiclass":
        return len(ts.classes)
    if task == "anomaly":
        return ts.features.shape[1]
    n_targets = 1 if ts.labels.ndim == 1 else int(np.prod(ts.labels.shape[1:]))
    if loss == "pinball":
        if n_targets != 1:
            raise ConfigError(
                f"the pinball loss needs one regression target, got {n_targets}",
                key="family.loss",
            )
        return len(p.quantiles)
    if isinstance(arch_params, Unet3dParams):
        want = arch_params.expected_outputs()
        if want != n_targets:
            raise ConfigError(
                f"the unet3d network outputs {want} values per row "
                f"(out_channels × voxels) but the targets have {n_targets}",
                key="family.arch.params.out_channels",
            )
    return n_targets


def _complete_arch(
    spec: Any,
    task: str,
    n_features: int,
    n_outputs: int,
    offset: np.ndarray,
    scale: np.ndarray,
) -> dict[str, Any]:
    doc = spec.to_json()
    params = doc["params"]
    builder = doc["builder"]
    want_in = spec.params.expected_inputs()
    if want_in is not None and want_in != n_features:
        raise ConfigError(
            f"the '{builder}' network reads {want_in} features per row (from its "
            f"parameters) but the training set has {n_features}",
            key="family.arch.params",
        )
    required = {"n_inputs": n_features, "n_outputs": n_outputs, "final": _FINAL[task]}
    for name, value in required.items():
        given = params.get(name)
        if given is not None and given != value:
            raise ConfigError(
                f"{name}={given!r} does not fit this {task} task with {n_features} "
                f"features; it needs {value!r}",
                key=f"family.arch.params.{name}",
                hint=f"remove {name}: the family sets it",
            )
        params[name] = value
    if builder == "deepsets":
        column = spec.params.items_start + spec.params.mask_feature
        pad = np.float32(spec.params.pad_value)
        params["input_pad_value"] = float((pad - offset[column]) / scale[column])
    return parse_arch(doc, where="family.arch").to_json()


def _weights(ts: TrainingSet, balance: bool) -> np.ndarray:
    w = np.asarray(ts.weights, dtype=np.float64)
    if balance and ts.task in ("binary", "multiclass"):
        labels = ts.labels.astype(np.int64)
        classes = np.unique(labels)
        totals = {c: w[labels == c].sum() for c in classes}
        per_class = w.sum() / len(classes)
        w = w * np.array([per_class / max(totals[c], 1e-300) for c in labels])
    return w.astype(np.float32)


class _Targets:
    """How labels become training targets, and regression target standardisation.

    ``head_offset`` and ``head_scale`` hold one value per output channel of the
    network's head; after training they are folded into its weights so the graph
    outputs targets in their own units.
    """

    def __init__(
        self,
        task: str,
        label_offset: np.ndarray,
        label_scale: np.ndarray,
        head_offset: np.ndarray,
        head_scale: np.ndarray,
    ) -> None:
        self.task = task
        self.label_offset = label_offset
        self.label_scale = label_scale
        self.head_offset = head_offset
        self.head_scale = head_scale

    @classmethod
    def fit(
        cls,
        task: str,
        loss: str,
        labels: np.ndarray,
        arch: dict[str, Any],
        p: TorchParams,
    ) -> _Targets:
        none = np.zeros(0, dtype=np.float32)
        if task != "regression":
            return cls(task, none, none, none, none)
        y = labels.reshape(len(labels), -1).astype(np.float64)
        n_targets = y.shape[1]
        params = arch["params"]
        if arch["builder"] == "unet3d":
            groups = params["out_channels"]
        else:
            groups = n_targets
        grouped = y.reshape(len(y), groups, -1)
        if p.scale == "standard":
            mean = grouped.mean(axis=(0, 2))
            std = grouped.std(axis=(0, 2))
            std[~np.isfinite(std) | (std <= 1e-12)] = 1.0
        else:
            mean, std = np.zeros(groups), np.ones(groups)
        per_label = n_targets // groups
        label_offset = np.repeat(mean, per_label).astype(np.float32)
        label_scale = np.repeat(std, per_label).astype(np.float32)
        repeat = len(p.quantiles) if loss == "pinball" else 1
        return cls(
            task,
            label_offset,
            label_scale,
            np.repeat(mean, repeat).astype(np.float32),
            np.repeat(std, repeat).astype(np.float32),
        )

    def prepare(self, labels: np.ndarray, scaled: np.ndarray) -> torch.Tensor:
        """Targets for the loss, from labels (and scaled inputs for anomaly)."""
        import torch

        if self.task == "binary":
            return torch.from_numpy(labels.reshape(-1, 1).astype(np.float32))
        if self.task == "multiclass":
            return torch.from_numpy(labels.astype(np.int64))
        if self.task == "anomaly":
            return torch.from_numpy(scaled)
        y = labels.reshape(len(labels), -1).astype(np.float32)
        return torch.from_numpy((y - self.label_offset) / self.label_scale)

    def fold_into(self, module: TriggerNet) -> None:
        """Fold target standardisation into the head: ``y = scale * z + offset``."""
        import torch

        if self.task != "regression":
            return
        head = module.head
        if head.bias is None:
            raise ModelError("the network's last layer has no bias to fold into")
        scale = torch.from_numpy(self.head_scale)
        offset = torch.from_numpy(self.head_offset)
        with torch.no_grad():
            shape = (-1,) + (1,) * (head.weight.dim() - 1)
            head.weight.mul_(scale.view(shape))
            head.bias.mul_(scale).add_(offset)


def _check_rows(model: TrainedModel, arch: dict[str, Any]) -> np.ndarray:
    n_inputs = arch["params"]["n_inputs"]
    raw = model.extra.get("check_features")
    offset, scale = model.extra.get(
        "feature_scaling",
        (np.zeros(n_inputs, np.float32), np.ones(n_inputs, np.float32)),
    )
    if raw is None or len(raw) == 0:
        rng = np.random.default_rng(0)
        return rng.standard_normal((64, n_inputs)).astype(np.float32)
    return _scaled(np.asarray(raw), np.asarray(offset), np.asarray(scale))


def export_onnx(module: torch.nn.Module, path: Path, rows: np.ndarray) -> None:
    """Export ``module`` to ONNX with the TorchScript exporter.

    Input ``features`` (float32, shape (batch, n_inputs)), output ``output``, a
    dynamic batch axis, opset :data:`ONNX_OPSET`.

    Raises
    ------
    ModelError
        The exporter failed.
    """
    import torch

    example = torch.from_numpy(np.ascontiguousarray(rows[:2], dtype=np.float32))
    module.train(False)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter announces its own deprecation on every call.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamo=False,
                input_names=["features"],
                output_names=["output"],
                dynamic_axes={"features": {0: "batch"}, "output": {0: "batch"}},
                opset_version=ONNX_OPSET,
            )
    except Exception as exc:  # the exporter raises many unrelated types
        raise ModelError(
            f"ONNX export of the torch network to {path} failed: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc


def check_onnx(module: torch.nn.Module, path: Path, rows: np.ndarray) -> float:
    """Largest absolute difference between onnxruntime and torch on scaled ``rows``.

    Raises
    ------
    ModelError
        The difference exceeds :data:`ONNX_TOLERANCE` × max(1, max |torch output|).
    """
    import onnxruntime as ort

    from trigml_torch.training import run_module

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]
    )
    got = session.run(None, {"features": rows})[0]
    want = run_module(module, rows)
    if got.shape != want.shape:
        raise ModelError(
            f"{path}: ONNX output shape {got.shape} differs from torch {want.shape}"
        )
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    limit = ONNX_TOLERANCE * max(1.0, float(np.max(np.abs(want))) if want.size else 1)
    if not diff <= limit:
        raise ModelError(
            f"{path}: ONNX output differs from torch by {diff:.3g} (limit {limit:.3g})",
            hint="report the network parameters; the export is not faithful",
        )
    return diff
