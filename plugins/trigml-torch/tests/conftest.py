"""Toy training sets for the trigml-torch tests (small, seeded, fast)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from trigml.components import TrainingSet
from trigml.schema.card import FeatureSpec


def _specs(n: int) -> list[FeatureSpec]:
    return [FeatureSpec(name=f"x{i}", unit="GeV") for i in range(n)]


def toy_binary(n: int = 2000, seed: int = 1) -> TrainingSet:
    """Signal shifted in two of six features, with large offsets to need scaling."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 6))
    x[:, 0] += 1.5 * labels
    x[:, 1] -= 1.0 * labels
    x = x * np.array([10.0, 0.1, 1.0, 5.0, 1.0, 1.0]) + 100.0
    return TrainingSet(
        features=x.astype(np.float32),
        labels=labels,
        weights=np.ones(n, np.float32),
        features_spec=_specs(6),
        task="binary",
    )


def toy_multiclass(n: int = 1500, seed: int = 2) -> TrainingSet:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    x = centres[labels] + rng.standard_normal((n, 2))
    return TrainingSet(
        features=x.astype(np.float32),
        labels=labels,
        weights=np.ones(n, np.float32),
        features_spec=_specs(2),
        task="multiclass",
        classes=["a", "b", "c"],
    )


def toy_quantile(n: int = 3000, seed: int = 3) -> TrainingSet:
    """Target 50 GeV × (1 + x0) with noise growing with |x1| (heteroscedastic)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n, 2))
    y = 50.0 * (1.0 + x[:, 0]) + 5.0 * (1.0 + np.abs(x[:, 1])) * rng.standard_normal(n)
    return TrainingSet(
        features=x.astype(np.float32),
        labels=y.astype(np.float32),
        weights=np.ones(n, np.float32),
        features_spec=_specs(2),
        task="regression",
        classes=[],
    )


def toy_anomaly(n: int = 2000, seed: int = 4) -> TrainingSet:
    """Background on a 2D plane in 8D; anomalies (label 1) off the plane."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((2, 8))
    latent = rng.standard_normal((n, 2))
    x = latent @ basis + 0.05 * rng.standard_normal((n, 8))
    labels = (rng.uniform(size=n) < 0.1).astype(np.int64)
    x[labels == 1] += rng.standard_normal((int(labels.sum()), 8)) * 1.5
    return TrainingSet(
        features=x.astype(np.float32),
        labels=labels,
        weights=np.ones(n, np.float32),
        features_spec=_specs(8),
        task="anomaly",
        classes=["standard", "anomalous"],
    )


@pytest.fixture
def toys() -> dict[str, Callable[..., TrainingSet]]:
    """Generators of the toy training sets, by task."""
    return {
        "binary": toy_binary,
        "multiclass": toy_multiclass,
        "quantile": toy_quantile,
        "anomaly": toy_anomaly,
    }


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve from ranks (ties are rare with float scores)."""
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@pytest.fixture
def roc_auc() -> Callable[[np.ndarray, np.ndarray], float]:
    return auc
