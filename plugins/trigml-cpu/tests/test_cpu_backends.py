"""Every CPU backend against the conformance checks, and their error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trigml.artifact import load_artifact, save_artifact
from trigml.errors import ModelError
from trigml.testing import isolated_plugins
from trigml_cpu import hooks
from trigml_cpu.auto import AutoBackend
from trigml_cpu.compiled import CompiledBackend
from trigml_cpu.conformance import check_backend
from trigml_cpu.lut_backend import LutBackend
from trigml_cpu.onnx_backend import OnnxRuntimeBackend
from trigml_cpu.params import LutParams
from trigml_cpu.xgboost_backend import XGBoostBackend

CASES = [
    (OnnxRuntimeBackend, "bdt-binary", 1e-5),
    (OnnxRuntimeBackend, "bdt-multiclass", 1e-5),
    (OnnxRuntimeBackend, "bdt-regression", 1e-5),
    (OnnxRuntimeBackend, "mlp-multiclass", 1e-5),
    (OnnxRuntimeBackend, "mlp-binary", 1e-5),
    (OnnxRuntimeBackend, "mlp-anomaly", 1e-5),
    (XGBoostBackend, "bdt-binary", 1e-6),
    (XGBoostBackend, "bdt-multiclass", 1e-6),
    (XGBoostBackend, "bdt-regression", 1e-6),
    (CompiledBackend, "bdt-binary", 1e-6),
    (CompiledBackend, "bdt-multiclass", 1e-6),
    (CompiledBackend, "bdt-regression", 1e-6),
    (LutBackend, "lut-binary", 0.0),
    (LutBackend, "lut-multiclass", 0.0),
    (AutoBackend, "bdt-binary", 1e-5),
    (AutoBackend, "bdt-multiclass", 1e-5),
    (AutoBackend, "mlp-multiclass", 1e-5),
]


@pytest.mark.parametrize(
    ("backend_type", "which", "atol"),
    CASES,
    ids=[f"{b.name}-{w}" for b, w, _ in CASES],
)
def test_conformance(artifacts, native, backend_type, which, atol):
    if backend_type is CompiledBackend and not native:
        pytest.skip("no C compiler: cpu.compiled cannot run")
    artifact, x, ref = artifacts[which]
    label = "cpu.auto" if backend_type is AutoBackend else None
    params = None
    if backend_type is AutoBackend:
        from trigml_cpu.params import AutoParams

        params = AutoParams(batch_sizes=[1, 64, 500], seconds_per_point=0.003)
    backend = backend_type(params) if params else backend_type()
    check_backend(backend, artifact, x, ref, atol, backend_label=label)


def test_all_backends_are_registered():
    registry = isolated_plugins(("cpu", hooks)).registry
    names = set(registry.names("backend"))
    expected = {
        "cpu.auto",
        "cpu.compiled",
        "cpu.lut",
        "cpu.onnxruntime",
        "cpu.torch",
        "cpu.xgboost",
    }
    assert expected <= names
    backend = registry.build("backend", "cpu.onnxruntime", {"threads": 2})
    assert backend.params.threads == 2 and backend.formats() == ["onnx"]
    auto = registry.build("backend", "cpu.auto", {"batch_sizes": [1, 1000]})
    assert auto.params.batch_sizes == [1, 1000]
    from trigml.errors import ConfigError

    with pytest.raises(ConfigError, match="candidates"):
        registry.build("backend", "cpu.auto", {"candidates": ["cpu.gpu"]})


def test_missing_format_names_what_exists_and_who_reads_it(builders, tmp_path):
    artifact, _, _ = builders["bdt"](tmp_path / "m", onnx=False, rounds=3)
    with pytest.raises(ModelError) as info:
        OnnxRuntimeBackend().load(artifact)
    text = str(info.value)
    assert "bdt-binary" in text and "cpu.onnxruntime" in text
    assert "it has: xgboost-json" in text
    assert "cpu.compiled, cpu.xgboost" in text

    lut_art, _, _ = builders["lut"](tmp_path / "l")
    with pytest.raises(ModelError, match=r"backends that read it: cpu\.lut"):
        XGBoostBackend().load(lut_art)


def test_broken_onnx_file_names_file_and_backend(builders, tmp_path):
    artifact, _, _ = builders["bdt"](tmp_path / "m", rounds=3)
    (artifact.path / "model.onnx").write_bytes(b"this is not a protobuf")
    broken = load_artifact(save_artifact(artifact.path, artifact.card).path)
    with pytest.raises(ModelError) as info:
        OnnxRuntimeBackend().load(broken)
    assert "model.onnx" in str(info.value) and "cpu.onnxruntime" in str(info.value)


def test_card_and_model_disagree_on_feature_count(builders, tmp_path, native):
    artifact, _, _ = builders["bdt"](tmp_path / "m", rounds=3)
    card = artifact.card.model_copy(update={"features": artifact.card.features[:5]})
    short = load_artifact(save_artifact(artifact.path, card).path)
    backends = [OnnxRuntimeBackend(), XGBoostBackend()]
    backends += [CompiledBackend()] if native else []
    for backend in backends:
        with pytest.raises(ModelError, match="lists 5 in its card"):
            backend.load(short)


def test_malformed_lookup_tables(builders, tmp_path):
    artifact, _, _ = builders["lut"](tmp_path / "l")
    np.savez(artifact.path / "lut.npz", table=np.zeros((2, 2, 2), np.float32))
    broken = load_artifact(save_artifact(artifact.path, artifact.card).path)
    with pytest.raises(ModelError, match=r"lacks \['edges_0', 'edges_1', 'edges_2'\]"):
        LutBackend().load(broken)

    edges = {f"edges_{i}": np.array([1.0, 0.0]) for i in range(3)}
    np.savez(artifact.path / "lut.npz", table=np.zeros((1, 1, 1), np.float32), **edges)
    broken = load_artifact(save_artifact(artifact.path, artifact.card).path)
    with pytest.raises(ModelError, match="edges_0 must be increasing"):
        LutBackend().load(broken)


def test_lut_values_outside_the_edges_use_the_outer_bins(artifacts):
    artifact, _, _ = artifacts["lut-binary"]
    scorer = LutBackend().load(artifact)
    table = np.load(artifact.path / "lut.npz")["table"]
    far = np.array([[-1e9, -1e9, -1e9], [1e9, 1e9, 1e9]], np.float32)
    np.testing.assert_array_equal(
        scorer.predict(far), [table[0, 0, 0], table[-1, -1, -1]]
    )


def test_scaling_is_applied_from_the_card(artifacts):
    artifact, x, ref = artifacts["mlp-multiclass"]
    assert any(f.scale != 1.0 for f in artifact.card.features)
    scorer = OnnxRuntimeBackend().load(artifact)
    np.testing.assert_allclose(scorer.predict(x), ref, atol=1e-5)
    # Feeding already-scaled rows must give different scores: scaling is not skipped.
    assert not np.allclose(scorer.predict(artifact.scale(x)), ref, atol=1e-3)


def test_describe_records_versions():
    info = OnnxRuntimeBackend().describe()
    assert info["backend"] == "cpu.onnxruntime" and info["threads"] == 1
    assert "onnxruntime" in info
    assert json.dumps(XGBoostBackend().describe())


@pytest.mark.parametrize("which", ["lut-binary", "lut-multiclass"])
def test_lut_numpy_path_conforms(artifacts, which):
    artifact, x, ref = artifacts[which]
    check_backend(LutBackend(LutParams(native=False)), artifact, x, ref, 0.0)


def test_lut_kernel_equals_numpy_on_edges_and_float64_tables(
    builders, tmp_path, needs_native
):
    artifact, _, _ = builders["lut"](tmp_path / "l")
    rng = np.random.default_rng(5)
    # float64 edges with values float32 cannot hold, duplicated edges, one-bin axis.
    edges = [
        np.array([-1.0, -0.1 + 1e-12, 0.3, 0.3, 2.0]),
        np.array([0.0, 1.0]),
        np.sort(rng.normal(0, 1, 40)),
    ]
    table = rng.random((4, 1, 39)).astype(np.float32)
    np.savez(
        artifact.path / "lut.npz",
        table=table,
        **{f"edges_{i}": e for i, e in enumerate(edges)},
    )
    art = load_artifact(save_artifact(artifact.path, artifact.card).path)
    x = rng.normal(0, 1.5, (3000, 3)).astype(np.float32)
    for i, e in enumerate(edges):  # values sitting exactly on, and just below, edges
        on = e.astype(np.float32)
        x[: len(on), i] = on
        x[len(on) : 2 * len(on), i] = np.nextafter(on, np.float32(-np.inf))
    native = LutBackend().load(art)
    assert native.checks_nan, "the compiled kernel should be in use here"
    by_numpy = LutBackend(LutParams(native=False)).load(art).predict(x)
    np.testing.assert_array_equal(native.predict(x), by_numpy)
    index = tuple(
        np.clip(np.searchsorted(e, x[:, i], side="right") - 1, 0, table.shape[i] - 1)
        for i, e in enumerate(edges)
    )
    np.testing.assert_array_equal(by_numpy, table[index])


@pytest.mark.parametrize("which", ["bdt-binary", "mlp-multiclass"])
def test_core_conformance_checks(artifacts, native, which):
    from trigml.testing import check_backend as core_check_backend

    artifact, x, ref = artifacts[which]
    backends = [OnnxRuntimeBackend()] + ([CompiledBackend()] if native else [])
    for backend in backends:
        if set(backend.formats()) <= set(artifact.card.formats):
            core_check_backend(backend, artifact, x, ref, atol=1e-5)
