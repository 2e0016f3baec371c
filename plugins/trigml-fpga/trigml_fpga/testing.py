"""Tiny model artifacts on toy features, for the tests and benchmarks of trigml-fpga.

The features imitate trigger inputs with very different ranges (a pT in GeV, a
pseudorapidity, a chi2 reaching thousands, a distance of a fraction of a millimetre, a
track count), which is what fixed-point types must cope with. xgboost and torch are
imported only by the functions that train with them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trigml.artifact import Artifact, load_artifact, save_artifact
from trigml.schema.card import FeatureSpec, ModelCard, WorkingPoint

__all__ = [
    "FEATURES",
    "INPUT_RATE_HZ",
    "bdt_artifact",
    "module_loader",
    "save_model",
    "torch_artifact",
    "toy_features",
    "working_points",
]

INPUT_RATE_HZ = 1.0e6


def working_points(scores: np.ndarray, labels: np.ndarray) -> list[WorkingPoint]:
    """Working points at 50, 70 and 90% signal efficiency with rates."""
    from trigml.train import default_working_points

    return [
        wp.model_copy(
            update={
                "input_rate_hz": INPUT_RATE_HZ,
                "rate_hz": (wp.background_efficiency or 0.0) * INPUT_RATE_HZ,
            }
        )
        for wp in default_working_points(scores, labels)
    ]


def save_model(
    folder: Path,
    *,
    name: str,
    task: str,
    names: list[str],
    formats: dict[str, str],
    holdout: dict[str, np.ndarray],
    family: str,
    scaling: tuple[np.ndarray, np.ndarray] | None = None,
    points: list[WorkingPoint] | None = None,
    classes: list[str] | None = None,
) -> Artifact:
    """Write holdout.npz and a card next to model files already in ``folder``."""
    offset, scale = scaling or (np.zeros(len(names)), np.ones(len(names)))
    features = [
        FeatureSpec(name=n, offset=float(o), scale=float(s))
        for n, o, s in zip(names, offset, scale)
    ]
    np.savez(folder / "holdout.npz", **holdout)
    card = ModelCard(
        name=name,
        algorithm="toy",
        family=family,
        task=task,
        features=features,
        classes=classes or [],
        formats=formats,
        working_points=points or [],
    )
    save_artifact(folder, card)
    return load_artifact(folder)


def toy_features(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Six features with trigger-like ranges and a binary label."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.int64)
    x = np.column_stack(
        [
            rng.exponential(np.where(y, 40.0, 15.0)),  # a pT in GeV
            rng.uniform(-2.5, 2.5, n),  # a pseudorapidity
            rng.exponential(np.where(y, 400.0, 60.0)),  # a chi2 reaching thousands
            rng.normal(y * 0.8, 1.0),
            rng.exponential(np.where(y, 0.02, 0.05)),  # a distance in cm
            rng.poisson(np.where(y, 3.0, 1.5)).astype(float),  # a count
        ]
    ).astype(np.float32)
    return x, y


FEATURES = ["pt", "eta", "chi2", "x3", "doca", "ntrk"]


def bdt_artifact(
    folder: Path,
    *,
    n_trees: int,
    depth: int,
    n: int = 20_000,
    seed: int = 1,
    multiclass: bool = False,
) -> Artifact:
    """Train an xgboost model on toy features and save it as an artifact."""
    import xgboost as xgb

    folder.mkdir(parents=True, exist_ok=True)
    x, y = toy_features(n, seed)
    if multiclass:
        y = y + (x[:, 3] > 1.0).astype(np.int64)
    half = n // 2
    params: dict[str, Any] = {"max_depth": depth, "eta": 0.3, "nthread": 1, "seed": 1}
    if multiclass:
        params.update(objective="multi:softprob", num_class=3)
    else:
        params.update(objective="binary:logistic")
    booster = xgb.train(params, xgb.DMatrix(x[:half], y[:half]), n_trees)
    booster.save_model(folder / "model.json")
    scores = booster.predict(xgb.DMatrix(x[half:])).astype(np.float32)
    return save_model(
        folder,
        name="toy-bdt",
        task="multiclass" if multiclass else "binary",
        names=FEATURES,
        formats={"xgboost-json": "model.json"},
        holdout={"features": x[half:], "labels": y[half:], "scores": scores},
        family="xgboost",
        points=None if multiclass else working_points(scores, y[half:]),
        classes=["a", "b", "c"] if multiclass else ["background", "signal"],
    )


def torch_artifact(
    folder: Path,
    module: Any,
    *,
    name: str,
    task: str,
    n: int = 4_000,
    seed: int = 3,
    arch: dict[str, Any] | None = None,
    train: Callable[[Any, np.ndarray, np.ndarray], None] | None = None,
) -> Artifact:
    """Save a torch module, trained on standardised toy features, as an artifact.

    Parameters
    ----------
    folder : Path
    module : torch.nn.Module
        Takes the six standardised features; returns probabilities for ``binary``
        and ``multiclass`` (labels 0-2), a reconstruction for ``anomaly``.
    name, task : str
    n, seed : int
        Rows and seed of the toy sample; the first half trains, the second half is
        the held-out sample.
    arch : dict, optional
        Written as ``arch.json``.
    train : callable, optional
        ``train(module, scaled_features, labels)`` fitting the module in place.

    Returns
    -------
    Artifact
        With the module's float scores on the held-out half in ``holdout.npz``.
    """
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    x, y = toy_features(n, seed)
    if task == "multiclass":
        y = y + (x[:, 3] > 1.0).astype(np.int64)
    offset, scale = x.mean(axis=0), x.std(axis=0)
    scaled = ((x - offset) / scale).astype(np.float32)
    half = n // 2
    if train is not None:
        train(module, scaled[:half], y[:half])
    with torch.no_grad():
        out = module.train(False)(torch.from_numpy(scaled[half:])).numpy()
    torch.save(module.state_dict(), folder / "model.pt")
    (folder / "arch.json").write_text(
        json.dumps(arch or {"builder": "test", "params": {}})
    )
    if task == "anomaly":
        scores = np.mean((out - scaled[half:]) ** 2, axis=1).astype(np.float32)
    elif task == "binary":
        scores = out.reshape(-1).astype(np.float32)
    elif task == "regression" and out.shape[1] == 1:
        scores = out[:, 0].astype(np.float32)
    else:
        scores = out.astype(np.float32)
    return save_model(
        folder,
        name=name,
        task=task,
        names=FEATURES,
        formats={"torch-state": "model.pt", "torch-arch": "arch.json"},
        holdout={"features": x[half:], "labels": y[half:], "scores": scores},
        family="torch",
        scaling=(offset, scale),
        points=working_points(scores, y[half:]) if task == "binary" else None,
        classes=["a", "b", "c"] if task == "multiclass" else None,
    )


def module_loader(module: Any) -> Callable[[Any], Any]:
    """A loader returning ``module`` with the artifact's weights (no trigml-torch)."""

    def load(artifact: Artifact) -> Any:
        import torch

        state = torch.load(artifact.file("torch-state"), weights_only=True)
        module.load_state_dict(state)
        return module.train(False)

    return load
