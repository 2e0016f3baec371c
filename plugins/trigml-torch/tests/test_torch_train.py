"""Training: quality on toys, reproducibility, quantiles, anomalies, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from trigml.errors import ConfigError, DataError
from trigml_torch.family import TorchFamily
from trigml_torch.specs import TorchParams


def _family(**params) -> TorchFamily:  # type: ignore[no-untyped-def]
    return TorchFamily(TorchParams.model_validate(params))


def test_torch_mlp_binary_beats_auc(toys, roc_auc, caplog) -> None:
    train, valid = toys["binary"]().split(0.3, seed=0)
    family = _family(epochs=15, arch={"builder": "mlp", "params": {"hidden": [16, 16]}})
    seen: list[dict] = []

    with caplog.at_level(logging.INFO, logger="trigml_torch"):
        model = family.fit(train, valid, seed=3, callback=seen.append)
    scores = model.predict(valid.features)

    assert scores.shape == (len(valid),)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert roc_auc(scores, valid.labels) > 0.8
    assert [s["epoch"] for s in seen] == list(range(1, len(seen) + 1))
    assert len(model.metrics["history"]) == len(seen)
    assert any("epoch 1/15" in r.getMessage() for r in caplog.records)
    offset, scale = model.extra["feature_scaling"]
    np.testing.assert_allclose(offset, train.features.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(scale, train.features.std(axis=0), rtol=1e-3)
    assert model.extra["arch"]["params"]["final"] == "sigmoid"
    assert model.hyperparameters["loss"] == "bce"


def test_torch_same_seed_same_weights(toys) -> None:
    train, valid = toys["binary"](n=600).split(0.3, seed=0)
    params = {
        "epochs": 3,
        "arch": {"builder": "mlp", "params": {"hidden": [8], "dropout": 0.2}},
    }

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = _family(**params).fit(train, valid, seed=7)
    after = torch.rand(1)
    b = _family(**params).fit(train, valid, seed=7)
    c = _family(**params).fit(train, valid, seed=8)

    sa, sb, sc = (m.model.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    np.testing.assert_array_equal(a.predict(valid.features), b.predict(valid.features))
    # Training leaves the caller's global random state alone.
    assert torch.equal(before, after)


def test_torch_multiclass_softmax(toys) -> None:
    train, valid = toys["multiclass"]().split(0.3, seed=0)

    model = _family(epochs=10).fit(train, valid, seed=0)
    probs = model.predict(valid.features)

    assert probs.shape == (len(valid), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs.argmax(axis=1) == valid.labels).mean() > 0.65


def test_torch_pinball_quantile_coverage(toys) -> None:
    train, valid = toys["quantile"]().split(0.3, seed=0)
    family = _family(
        epochs=40,
        loss="pinball",
        quantiles=[0.25, 0.5, 0.75],
        arch={"builder": "mlp", "params": {"hidden": [32, 32]}},
    )

    model = family.fit(train, valid, seed=0)
    q = model.predict(valid.features)
    coverage = (valid.labels[:, None] < q).mean(axis=0)

    assert q.shape == (len(valid), 3)
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75], atol=0.06)
    # The median follows the 50 GeV × (1 + x0) trend in target units.
    trend = 50.0 * (1.0 + valid.features[:, 0])
    assert np.median(np.abs(q[:, 1] - trend)) < 5.0


def test_torch_autoencoder_scores_anomalies_higher(toys, roc_auc) -> None:
    train, valid = toys["anomaly"]().split(0.3, seed=0)
    family = _family(
        epochs=30,
        arch={"builder": "autoencoder", "params": {"encoder": [16], "latent": 2}},
    )

    model = family.fit(train, valid, seed=0)
    scores = model.predict(valid.features)

    assert scores.shape == (len(valid),)
    assert roc_auc(scores, valid.labels) > 0.85
    assert model.extra["arch"]["params"]["n_outputs"] == 8
    # Only background rows (label 0) were used for training.
    assert model.hyperparameters["anomaly_rows"] == "background"


def test_torch_anomaly_defaults_to_autoencoder(toys) -> None:
    train, valid = toys["anomaly"](n=400).split(0.3, seed=0)

    model = _family(epochs=1).fit(train, valid, seed=0)

    assert model.extra["arch"]["builder"] == "autoencoder"


def test_torch_early_stopping_keeps_best(toys) -> None:
    train, valid = toys["binary"](n=400).split(0.5, seed=0)
    family = _family(epochs=60, patience=2, lr=0.05, schedule="none")

    model = family.fit(train, valid, seed=0)
    history = model.metrics["history"]
    best = model.metrics["best_epoch"]

    assert model.metrics["stopped_early"]
    assert len(history) == best + 2
    assert model.metrics["valid_loss"] == min(h["valid_loss"] for h in history)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"loss": "mse"}, "family.loss"),
        (
            {"arch": {"builder": "cnn1d", "params": {"input_shape": [1, 8]}}},
            "family.arch.params",
        ),
        (
            {"arch": {"builder": "mlp", "params": {"final": "softmax"}}},
            "family.arch.params.final",
        ),
    ],
)
def test_torch_config_mismatch(toys, params: dict, key: str) -> None:
    train, valid = toys["binary"](n=200).split(0.3, seed=0)

    with pytest.raises(ConfigError) as info:
        _family(epochs=1, **params).fit(train, valid, seed=0)

    assert info.value.key == key


def test_torch_bad_data(toys) -> None:
    train, valid = toys["binary"](n=200).split(0.3, seed=0)
    train.features[3, 2] = np.nan
    bad_labels = toys["binary"](n=200)
    bad_labels.labels[0] = 2

    with pytest.raises(DataError, match=r"non-finite values in features \['x2'\]"):
        _family(epochs=1).fit(train, valid, seed=0)
    with pytest.raises(DataError, match="binary labels"):
        _family(epochs=1).fit(bad_labels, valid, seed=0)
    with pytest.raises(DataError, match="expects features of shape"):
        _family(epochs=1).fit(valid, valid, seed=0).predict(np.zeros((2, 5)))


def test_torch_deepsets_scaling_keeps_padding_masked() -> None:
    rng = np.random.default_rng(5)
    n, slots = 600, 5
    counts = rng.integers(0, slots + 1, n)
    items = np.full((n, slots, 2), -999.0, dtype=np.float32)
    for i, c in enumerate(counts):
        items[i, :c] = rng.normal([30.0, 0.0], [10.0, 1.5], (c, 2))
    labels = (items[:, :, 0].clip(0, None).sum(axis=1) > 60).astype(np.int64)
    from trigml.components import TrainingSet
    from trigml.schema.card import FeatureSpec

    ts = TrainingSet(
        features=items.reshape(n, -1),
        labels=labels,
        weights=np.ones(n, np.float32),
        features_spec=[FeatureSpec(name=f"o{i}") for i in range(2 * slots)],
    )
    train, valid = ts.split(0.3, seed=0)
    params = {"max_items": slots, "item_features": 2, "pad_value": -999.0}
    family = _family(epochs=5, arch={"builder": "deepsets", "params": params})

    model = family.fit(train, valid, seed=0)
    offset, scale = model.extra["feature_scaling"]
    x = valid.features.copy()
    padded = x.reshape(len(x), slots, 2)[:, :, 0] == -999.0
    x.reshape(len(x), slots, 2)[:, :, 1][padded] = 123.0

    # Item statistics come from filled slots only and are shared by all slots.
    filled_pt = items[:, :, 0][items[:, :, 0] != -999.0]
    assert abs(offset[0] - filled_pt.mean()) < 2.0
    np.testing.assert_array_equal(offset[0::2], offset[0])
    pad_in = model.extra["arch"]["params"]["input_pad_value"]
    assert pad_in == pytest.approx((-999.0 - offset[0]) / scale[0], rel=1e-6)
    np.testing.assert_array_equal(model.predict(x), model.predict(valid.features))


def test_torch_balance_classes_and_plateau(toys) -> None:
    from trigml_torch.family import _weights

    ts = toys["binary"](n=800)
    keep = (ts.labels == 0) | (np.arange(len(ts)) % 5 == 0)
    ts = ts.subset(np.flatnonzero(keep))
    train, valid = ts.split(0.3, seed=0)
    params = {"epochs": 15, "schedule": "plateau", "loss": "bce"}

    w = _weights(train, balance=True)
    balanced = _family(balance_classes=True, **params).fit(train, valid, seed=0)
    plain = _family(**params).fit(train, valid, seed=0)
    shift = (
        balanced.predict(valid.features).mean() - plain.predict(valid.features).mean()
    )

    assert w[train.labels == 1].sum() == pytest.approx(w[train.labels == 0].sum())
    assert w.sum() == pytest.approx(len(train), rel=1e-5)
    # With equal class weights the scores move up from the 18% signal prior.
    assert shift > 0.1


def test_torch_huber_multi_target_regression(toys) -> None:
    base = toys["quantile"](n=600)
    labels = np.stack([base.labels, -0.01 * base.labels], axis=1)
    ts = base.subset(np.arange(len(base)))
    ts.labels = labels
    train, valid = ts.split(0.3, seed=0)

    model = _family(epochs=20, loss="huber").fit(train, valid, seed=0)
    pred = model.predict(valid.features)

    assert pred.shape == (len(valid), 2)
    # Both targets are learnt in their own units (the second is 100× smaller).
    corr = [np.corrcoef(pred[:, i], valid.labels[:, i])[0, 1] for i in range(2)]
    assert min(corr) > 0.9
    ratio = np.median(pred[:, 1] / pred[:, 0])
    assert ratio == pytest.approx(-0.01, rel=0.2)
