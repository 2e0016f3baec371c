"""Tiny artifacts built by hand for the trigml-cpu tests.

Each builder writes model files, a held-out sample and a card filled by hand, then
``save_artifact``; nothing here needs the training orchestration or another plugin.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from trigml.artifact import Artifact, load_artifact, save_artifact
from trigml.schema.card import FeatureSpec, ModelCard, OutputSpec


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep compiled kernels and cpu.auto choices out of the user's cache."""
    old = os.environ.get("TRIGML_CACHE_DIR")
    os.environ["TRIGML_CACHE_DIR"] = str(tmp_path_factory.mktemp("trigml-cache"))
    yield
    if old is None:
        os.environ.pop("TRIGML_CACHE_DIR", None)
    else:
        os.environ["TRIGML_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def native(_session_cache: None) -> bool:
    """Whether the native kernels build here (a C compiler is installed)."""
    from trigml.errors import ModelError
    from trigml_cpu.native import kernel_library

    try:
        kernel_library()
    except ModelError:
        return False
    return True


@pytest.fixture
def needs_native(native: bool) -> None:
    if not native:
        pytest.skip("no C compiler: the native kernels cannot be built")


def make_card(
    name: str,
    n_features: int,
    formats: dict[str, str],
    *,
    task: str = "binary",
    classes: list[str] | None = None,
    offset: np.ndarray | None = None,
    scale: np.ndarray | None = None,
) -> ModelCard:
    off = np.zeros(n_features) if offset is None else offset
    sc = np.ones(n_features) if scale is None else scale
    features = [
        FeatureSpec(name=f"f{i}", unit="GeV", offset=float(o), scale=float(s))
        for i, (o, s) in enumerate(zip(off, sc))
    ]
    if task == "multiclass":
        outputs = [OutputSpec(name=c) for c in classes or []]
    else:
        outputs = [OutputSpec(name="score")]
    return ModelCard(
        name=name,
        algorithm="test",
        family="test",
        task=task,  # type: ignore[arg-type]
        features=features,
        outputs=outputs,
        classes=classes or ([] if task in ("regression", "anomaly") else ["b", "s"]),
        formats=formats,
    )


def write_holdout(directory: Path, x: np.ndarray, labels: np.ndarray, scores) -> None:
    np.savez_compressed(
        directory / "holdout.npz",
        features=x.astype(np.float32),
        labels=labels,
        scores=np.asarray(scores, np.float32),
    )


def toy_rows(
    task: str, n: int, n_features: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, n_features)).astype(np.float32)
    if task == "binary":
        y = (x[:, 0] + x[:, 1] ** 2 + rng.normal(0, 1, n) > 1).astype(int)
    elif task == "multiclass":
        y = np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.5, 0.5])
    else:
        y = 40.0 + 10.0 * x[:, 0] + 3.0 * x[:, 1] ** 2
    return x, y


def build_bdt(
    directory: Path,
    task: str = "binary",
    *,
    n_features: int = 6,
    rounds: int = 30,
    depth: int = 4,
    extra_params: dict | None = None,
    onnx: bool = True,
    seed: int = 0,
) -> tuple[Artifact, np.ndarray, np.ndarray]:
    """Train a small booster and save it as an artifact; returns (artifact, X, ref)."""
    import xgboost as xgb

    directory.mkdir(parents=True, exist_ok=True)
    x, y = toy_rows(task, 1500, n_features, seed)
    objective = {
        "binary": "binary:logistic",
        "multiclass": "multi:softprob",
        "regression": "reg:squarederror",
    }[task]
    params = {"objective": objective, "max_depth": depth, "eta": 0.3, "nthread": 1}
    if task == "multiclass":
        params["num_class"] = 3
    params.update(extra_params or {})
    booster = xgb.train(params, xgb.DMatrix(x, label=y), rounds)
    booster.save_model(str(directory / "model.json"))
    formats = {"xgboost-json": "model.json"}
    if onnx:
        (directory / "model.onnx").write_bytes(_bdt_onnx(booster, n_features))
        formats["onnx"] = "model.onnx"
    ref = booster.inplace_predict(x)
    write_holdout(directory, x, y, ref)
    classes = ["a", "b", "c"] if task == "multiclass" else None
    card = make_card(f"bdt-{task}", n_features, formats, task=task, classes=classes)
    save_artifact(directory, card)
    return load_artifact(directory), x, ref


def _bdt_onnx(booster, n_features: int) -> bytes:
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = convert_xgboost(
        booster,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        target_opset=15,
    )
    return model.SerializeToString()


def mlp_onnx(weights: list[tuple[np.ndarray, np.ndarray]], final: str | None) -> bytes:
    """An ONNX MLP (Gemm + Relu layers, optional Softmax/Sigmoid) built by hand."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    current = "features"
    for i, (w, b) in enumerate(weights):
        inits += [
            numpy_helper.from_array(w, f"w{i}"),
            numpy_helper.from_array(b, f"b{i}"),
        ]
        out = f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out]))
        current = out
        if i < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"r{i}"]))
            current = f"r{i}"
    if final == "softmax":
        nodes.append(helper.make_node("Softmax", [current], ["output"], axis=1))
    elif final == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", [current], ["output"]))
    else:
        nodes.append(helper.make_node("Identity", [current], ["output"]))
    n_in, n_out = weights[0][0].shape[0], weights[-1][0].shape[1]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", n_in])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", n_out])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def mlp_forward(weights, final: str | None, x: np.ndarray) -> np.ndarray:
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(weights):
        h = h @ w + b
        if i < len(weights) - 1:
            h = np.maximum(h, 0.0)
    if final == "softmax":
        e = np.exp(h - h.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if final == "sigmoid":
        return 1.0 / (1.0 + np.exp(-h))
    return h


def random_mlp(sizes: list[int], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (
            (rng.normal(0, 1, (a, b)) / np.sqrt(a)).astype(np.float32),
            rng.normal(0, 0.1, b).astype(np.float32),
        )
        for a, b in itertools.pairwise(sizes)
    ]


def build_mlp(
    directory: Path, task: str = "multiclass", seed: int = 0
) -> tuple[Artifact, np.ndarray, np.ndarray]:
    """An ONNX MLP artifact with non-trivial feature scaling in its card."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_in = 8
    offset = rng.normal(50.0, 10.0, n_in)
    scale = rng.uniform(0.5, 20.0, n_in)
    x = (offset + scale * rng.normal(0, 1, (500, n_in))).astype(np.float32)
    scaled = ((x - offset.astype(np.float32)) / scale.astype(np.float32)).astype(
        np.float32
    )
    if task == "multiclass":
        sizes, final, classes = [n_in, 16, 16, 5], "softmax", list("abcde")
    elif task == "binary":
        sizes, final, classes = [n_in, 16, 1], "sigmoid", None
    else:  # anomaly: a linear "autoencoder" through a 3-wide bottleneck
        sizes, final, classes = [n_in, 3, n_in], None, None
    weights = random_mlp(sizes, seed)
    if task == "anomaly":
        weights = [(w, b) for w, b in weights]
    (directory / "model.onnx").write_bytes(mlp_onnx(weights, final))
    raw = mlp_forward(weights, final, scaled)
    if task == "anomaly":
        ref = np.mean((raw - scaled) ** 2, axis=1)
    elif task == "binary":
        ref = raw[:, 0]
    else:
        ref = raw
    labels = np.zeros(len(x), int)
    write_holdout(directory, x, labels, ref)
    card = make_card(
        f"mlp-{task}",
        n_in,
        {"onnx": "model.onnx"},
        task=task,
        classes=classes,
        offset=offset,
        scale=scale,
    )
    save_artifact(directory, card)
    return load_artifact(directory), x, ref


def build_lut(
    directory: Path, task: str = "binary", seed: int = 0
) -> tuple[Artifact, np.ndarray, np.ndarray]:
    """A bonsai table over 3 features, reference computed from the format's rule."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    edges = [np.sort(rng.normal(0, 1, k + 1)).astype(np.float32) for k in (4, 3, 5)]
    shape = (4, 3, 5) + ((3,) if task == "multiclass" else ())
    table = rng.random(shape).astype(np.float32)
    np.savez(
        directory / "lut.npz",
        table=table,
        **{f"edges_{i}": e for i, e in enumerate(edges)},
    )
    x = rng.normal(0, 1.5, (400, 3)).astype(np.float32)
    index = tuple(
        np.clip(np.searchsorted(e, x[:, i], side="right") - 1, 0, shape[i] - 1)
        for i, e in enumerate(edges)
    )
    ref = table[index]
    write_holdout(directory, x, np.zeros(len(x), int), ref)
    classes = ["a", "b", "c"] if task == "multiclass" else None
    card = make_card(f"lut-{task}", 3, {"lut": "lut.npz"}, task=task, classes=classes)
    save_artifact(directory, card)
    return load_artifact(directory), x, ref


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Artifacts shared by the tests (built once per session)."""
    root = tmp_path_factory.mktemp("artifacts")
    return {
        "bdt-binary": build_bdt(root / "bdt-binary", "binary"),
        "bdt-multiclass": build_bdt(root / "bdt-multiclass", "multiclass"),
        "bdt-regression": build_bdt(root / "bdt-regression", "regression"),
        "mlp-multiclass": build_mlp(root / "mlp-multiclass", "multiclass"),
        "mlp-binary": build_mlp(root / "mlp-binary", "binary"),
        "mlp-anomaly": build_mlp(root / "mlp-anomaly", "anomaly"),
        "lut-binary": build_lut(root / "lut-binary", "binary"),
        "lut-multiclass": build_lut(root / "lut-multiclass", "multiclass"),
    }


@pytest.fixture(scope="session")
def builders() -> dict[str, Callable[..., object]]:
    """Artifact builders and the card/holdout helpers, for tests that need their own."""
    return {
        "bdt": build_bdt,
        "mlp": build_mlp,
        "lut": build_lut,
        "card": make_card,
        "holdout": write_holdout,
    }
