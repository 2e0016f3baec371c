"""Small seeded training sets for the trigml-xgboost tests."""

from __future__ import annotations

import numpy as np
import pytest

from trigml.components import TrainingSet
from trigml.schema.card import FeatureSpec


def _specs(names: list[str]) -> list[FeatureSpec]:
    return [FeatureSpec(name=n, unit="GeV") for n in names]


def dalitz_toy(n: int, seed: int) -> TrainingSet:
    """Binary toy whose best separating feature weakens with a Dalitz-like variable.

    ``x0`` separates signal well at low ``m`` and not at all at high ``m``; ``x2``
    is ``m`` smeared, so a plain BDT's efficiency falls with ``m``. ``x3`` and
    ``x4`` are noise.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    m = rng.random(n)
    x0 = np.where(y == 1, rng.normal(2.0 * (1.0 - m), 1.0), rng.normal(0.0, 1.0, n))
    x1 = np.where(y == 1, rng.normal(0.8, 1.0, n), rng.normal(0.0, 1.0, n))
    x2 = m + rng.normal(0.0, 0.1, n)
    noise = rng.normal(0.0, 1.0, (n, 2))
    x = np.column_stack([x0, x1, x2, noise]).astype(np.float32)
    return TrainingSet(
        features=x,
        labels=y,
        weights=np.ones(n, np.float32),
        features_spec=_specs(["x0", "x1", "x2", "x3", "x4"]),
        task="binary",
        aux={"m": m},
    )


def multiclass_toy(n: int, seed: int) -> TrainingSet:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    x = centres[y] + rng.normal(0.0, 1.0, (n, 2))
    x = np.column_stack([x, rng.normal(0.0, 1.0, n)]).astype(np.float32)
    return TrainingSet(
        features=x,
        labels=y,
        weights=np.ones(n, np.float32),
        features_spec=_specs(["a", "b", "c"]),
        task="multiclass",
        classes=["g", "q", "w"],
    )


def regression_toy(n: int, seed: int) -> TrainingSet:
    """Target of order 50 (a pT in GeV) depending on two of four features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, 4)).astype(np.float32)
    y = 50.0 + 10.0 * x[:, 0] + 5.0 * x[:, 1] ** 2 + rng.normal(0.0, 1.0, n)
    return TrainingSet(
        features=x,
        labels=y.astype(np.float32),
        weights=np.ones(n, np.float32),
        features_spec=_specs(["r0", "r1", "r2", "r3"]),
        task="regression",
        classes=[],
    )


@pytest.fixture(scope="session")
def binary_sets() -> tuple[TrainingSet, TrainingSet]:
    return dalitz_toy(4000, 1), dalitz_toy(4000, 2)


@pytest.fixture(scope="session")
def multiclass_sets() -> tuple[TrainingSet, TrainingSet]:
    return multiclass_toy(1500, 3), multiclass_toy(1500, 4)


@pytest.fixture(scope="session")
def regression_sets() -> tuple[TrainingSet, TrainingSet]:
    return regression_toy(2000, 5), regression_toy(2000, 6)


@pytest.fixture(scope="session")
def make_dalitz_toy():
    return dalitz_toy
