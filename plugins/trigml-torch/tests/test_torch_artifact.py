"""Saving: artifact round trip, ONNX agreement, safe loading of weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from trigml.artifact import load_artifact, save_artifact
from trigml.components import TrainedModel, TrainingSet
from trigml.errors import ModelError
from trigml.schema.card import FeatureSpec, ModelCard
from trigml_torch import arch as arch_module
from trigml_torch.arch import build_module, load_module
from trigml_torch.family import FORMATS, TorchFamily, check_onnx, export_onnx
from trigml_torch.specs import TorchParams


def _set(
    x: np.ndarray, labels: np.ndarray, task: str, classes: list[str]
) -> TrainingSet:
    return TrainingSet(
        features=x.astype(np.float32),
        labels=labels,
        weights=np.ones(len(x), np.float32),
        features_spec=[FeatureSpec(name=f"f{i}") for i in range(x.shape[1])],
        task=task,
        classes=classes,
    )


def _deepsets_set(n: int, rng: np.random.Generator) -> TrainingSet:
    """Up to four (pt [GeV], eta) objects padded with -999, plus one global."""
    counts = rng.integers(0, 5, n)
    items = np.full((n, 4, 2), -999.0)
    for i, c in enumerate(counts):
        items[i, :c, 0] = rng.exponential(20.0, c) + 1.0
        items[i, :c, 1] = rng.normal(0.0, 1.5, c)
    x = np.concatenate([items.reshape(n, 8), rng.normal(size=(n, 1))], axis=1)
    return _set(x, (counts >= 2).astype(np.int64), "binary", ["b", "s"])


def _case(name: str) -> tuple[TrainingSet, dict]:
    rng = np.random.default_rng(11)
    n = 160
    if name == "mlp-binary":
        x = rng.normal(50.0, 10.0, (n, 5))
        return _set(x, (x[:, 0] > 50).astype(np.int64), "binary", ["b", "s"]), {}
    if name == "cnn1d-multiclass":
        x = rng.normal(size=(n, 16))
        spec = {"builder": "cnn1d", "params": {"input_shape": [2, 8]}}
        return _set(x, rng.integers(0, 3, n), "multiclass", ["a", "b", "c"]), {
            "arch": spec
        }
    if name == "cnn2d-binary":
        x = rng.normal(size=(n, 36))
        spec = {"builder": "cnn2d", "params": {"input_shape": [1, 6, 6], "pool": 1}}
        return _set(x, rng.integers(0, 2, n), "binary", ["b", "s"]), {"arch": spec}
    if name == "cnn3d-regression":
        x = rng.normal(size=(n, 32))
        spec = {"builder": "cnn3d", "params": {"input_shape": [2, 2, 2, 4]}}
        spec["params"]["channels"] = [4]
        return _set(x, 100.0 + x[:, :2] * 10.0, "regression", []), {"arch": spec}
    if name == "unet3d-regression":
        x = rng.normal(size=(32, 64))
        y = np.concatenate([x * 2.0 + 5.0, -x], axis=1)  # two output channels
        spec = {
            "builder": "unet3d",
            "params": {"input_shape": [1, 4, 4, 4], "out_channels": 2, "depth": 1},
        }
        return _set(x, y, "regression", []), {"arch": spec}
    if name == "deepsets-binary":
        spec = {
            "builder": "deepsets",
            "params": {
                "max_items": 4,
                "item_features": 2,
                "global_features": 1,
                "pad_value": -999.0,
            },
        }
        return _deepsets_set(n, rng), {"arch": spec}
    if name == "autoencoder-anomaly":
        x = rng.normal(size=(n, 6))
        return _set(x, rng.integers(0, 2, n), "anomaly", ["std", "odd"]), {}
    if name == "mlp-pinball":
        x = rng.normal(size=(n, 3))
        return _set(x, 80.0 + 20.0 * x[:, 0], "regression", []), {"loss": "pinball"}
    raise KeyError(name)


CASES = [
    "mlp-binary",
    "cnn1d-multiclass",
    "cnn2d-binary",
    "cnn3d-regression",
    "unet3d-regression",
    "deepsets-binary",
    "autoencoder-anomaly",
    "mlp-pinball",
]


def _card(ts: TrainingSet, model: TrainedModel, formats: dict[str, str]) -> ModelCard:
    offset, scale = model.extra["feature_scaling"]
    features = [
        FeatureSpec(name=f.name, unit=f.unit, offset=float(o), scale=float(s))
        for f, o, s in zip(ts.features_spec, offset, scale)
    ]
    return ModelCard(
        name="toy",
        algorithm="toy",
        family="torch",
        task=ts.task,
        features=features,
        classes=ts.classes,
        formats=formats,
        hyperparameters=model.hyperparameters,
        metrics=model.metrics,
    )


def _fit_and_save(name: str, out: Path) -> tuple[TrainingSet, TrainedModel, Path]:
    ts, params = _case(name)
    train, valid = ts.split(0.25, seed=0)
    family = TorchFamily(TorchParams.model_validate({"epochs": 2, **params}))
    model = family.fit(train, valid, seed=0)
    formats = family.save(model, out)
    save_artifact(out, _card(ts, model, formats))
    return valid, model, out


def _onnx_scores(art, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(art.file("onnx")), options)
    scaled = art.scale(x)
    return art.to_scores(session.run(None, {"features": scaled})[0], scaled)


@pytest.mark.parametrize("name", CASES)
def test_torch_artifact_round_trip(name: str, tmp_path: Path) -> None:
    valid, model, out = _fit_and_save(name, tmp_path / name)
    x = valid.features

    art = load_artifact(out)
    module = load_module(art)
    scaled = art.scale(x)
    with torch.no_grad():
        loaded = art.to_scores(module(torch.from_numpy(scaled)).numpy(), scaled)
    expected = model.predict(x)
    onnx_scores = _onnx_scores(art, x)
    one_row = _onnx_scores(art, x[:1])

    assert art.card.formats == FORMATS
    assert json.loads(art.file("torch-arch").read_text()) == model.extra["arch"]
    assert not module.training
    np.testing.assert_allclose(loaded, expected, rtol=1e-6, atol=1e-6)
    assert onnx_scores.shape == expected.shape
    tol = 1e-4 * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(onnx_scores, expected, rtol=0, atol=tol)
    np.testing.assert_allclose(one_row, expected[:1], rtol=0, atol=tol)
    assert 0.0 <= model.metrics["onnx_max_abs_diff"] <= tol
    assert art.card.metrics["onnx_max_abs_diff"] == model.metrics["onnx_max_abs_diff"]


def test_torch_load_uses_weights_only(tmp_path: Path, monkeypatch) -> None:
    _, _, out = _fit_and_save("mlp-binary", tmp_path / "m")
    art = load_artifact(out)
    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(arch_module.torch, "load", spy)
    load_module(art)

    assert calls
    assert calls[0]["weights_only"] is True


_EXECUTED: list[str] = []


def _payload() -> str:
    _EXECUTED.append("ran")
    return "pwned"


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_payload, ())


def test_torch_pickled_code_is_refused(tmp_path: Path) -> None:
    _, _, out = _fit_and_save("mlp-binary", tmp_path / "m")
    state = torch.load(out / "model.pt", weights_only=True)
    torch.save({**state, "extra": _Evil()}, out / "model.pt")
    art = save_artifact(out, load_artifact_card(out))

    with pytest.raises(ModelError, match="weights_only=True"):
        load_module(load_artifact(art.path))
    assert _EXECUTED == []


def load_artifact_card(out: Path) -> ModelCard:
    return ModelCard.model_validate_json((out / "card.json").read_text())


def test_torch_weights_must_fit_arch(tmp_path: Path) -> None:
    _, model, out = _fit_and_save("mlp-binary", tmp_path / "m")
    arch = model.extra["arch"]
    arch["params"]["hidden"] = [7]
    (out / "arch.json").write_text(json.dumps(arch))
    art = save_artifact(out, load_artifact_card(out))

    with pytest.raises(ModelError, match="weights do not fit"):
        load_module(load_artifact(art.path))


def test_torch_onnx_check_catches_mismatch(tmp_path: Path) -> None:
    spec = {"builder": "mlp", "params": {"n_inputs": 4, "n_outputs": 2}}
    torch.manual_seed(0)
    exported = build_module(spec).train(False)
    other = build_module(spec).train(False)
    rows = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)

    export_onnx(exported, tmp_path / "m.onnx", rows)

    assert check_onnx(exported, tmp_path / "m.onnx", rows) <= 1e-5
    with pytest.raises(ModelError, match="differs from torch"):
        check_onnx(other, tmp_path / "m.onnx", rows)


def test_torch_save_refuses_foreign_model(tmp_path: Path) -> None:
    foreign = TrainedModel(model=object(), predict=None)

    with pytest.raises(ModelError, match="only save models it fitted"):
        TorchFamily().save(foreign, tmp_path)
