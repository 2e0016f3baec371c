"""cpu.auto: calibration, the cache of choices, dispatch and the runtimes it trusts."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from trigml.artifact import load_artifact, save_artifact
from trigml.errors import ModelError
from trigml_cpu import native
from trigml_cpu.auto import CACHE_FILE, AutoBackend, calibration_rows
from trigml_cpu.params import AutoParams

QUICK = {"batch_sizes": [1, 64, 2000], "seconds_per_point": 0.003}


def test_calibrates_caches_and_reuses_the_choice(artifacts, trigml_cache, native):
    artifact, x, ref = artifacts["bdt-binary"]
    first = AutoBackend(AutoParams(**QUICK)).load(artifact)

    assert not first.from_cache
    expected = {"cpu.onnxruntime", "cpu.xgboost"} | (
        {"cpu.compiled"} if native else set()
    )
    assert set(first.scorers) == expected
    assert sorted(first.choice) == [1, 64, 2000]
    for size, name in first.choice.items():
        speeds = {n: first.events_per_s[n][size] for n in first.scorers}
        assert speeds[name] == max(speeds.values())
    doc = json.loads((trigml_cache / CACHE_FILE).read_text())
    (entry,) = doc.values()
    assert entry["model"] == "bdt-binary"
    assert entry["choice"] == {str(s): n for s, n in first.choice.items()}
    assert not [p for p in trigml_cache.iterdir() if p.name.startswith(".")]

    again = AutoBackend(AutoParams(**QUICK)).load(artifact)
    assert again.from_cache and again.choice == first.choice
    np.testing.assert_allclose(again.predict(x), ref, atol=1e-6)

    fresh = AutoBackend(AutoParams(**QUICK, recalibrate=True)).load(artifact)
    assert not fresh.from_cache


def test_dispatch_follows_the_nearest_calibrated_size(
    artifacts, trigml_cache, needs_native
):
    artifact, x, ref = artifacts["bdt-binary"]
    key_choice = {"1": "cpu.onnxruntime", "64": "cpu.compiled", "2000": "cpu.xgboost"}
    scorer = AutoBackend(AutoParams(**QUICK)).load(artifact)
    doc = json.loads((trigml_cache / CACHE_FILE).read_text())
    (key,) = doc
    doc[key]["choice"] = key_choice
    (trigml_cache / CACHE_FILE).write_text(json.dumps(doc))

    scorer = AutoBackend(AutoParams(**QUICK)).load(artifact)
    assert scorer.from_cache
    # Bounds between sizes sit at the geometric means: 8 and ~358.
    expected = {1: "onnxruntime", 7: "onnxruntime", 8: "compiled", 300: "compiled"}
    expected.update({400: "xgboost", 1500: "xgboost"})
    for n, runtime in expected.items():
        assert scorer.runtime_for(n) == f"cpu.{runtime}"
        np.testing.assert_allclose(scorer.predict(x[:n]), ref[:n], atol=1e-5)


def test_a_stale_or_broken_cache_is_ignored(artifacts, trigml_cache, caplog):
    artifact, _, _ = artifacts["bdt-multiclass"]
    (trigml_cache / CACHE_FILE).write_text("{half a file")
    with caplog.at_level(logging.WARNING):
        scorer = AutoBackend(AutoParams(**QUICK)).load(artifact)
    assert not scorer.from_cache
    assert "ignoring unreadable cache file" in caplog.text
    doc = json.loads((trigml_cache / CACHE_FILE).read_text())
    (key,) = doc
    doc[key]["choice"] = {"1": "cpu.gpu", "64": "cpu.xgboost", "2000": "cpu.xgboost"}
    (trigml_cache / CACHE_FILE).write_text(json.dumps(doc))
    assert not AutoBackend(AutoParams(**QUICK)).load(artifact).from_cache


def test_runtime_disagreeing_with_the_float_model_is_left_out(
    builders, tmp_path, trigml_cache, caplog
):
    artifact, x, ref = builders["bdt"](tmp_path / "a", rounds=20)
    other, _, _ = builders["bdt"](tmp_path / "b", rounds=20, seed=7)
    # Same card, but the ONNX file of another model: only the JSON is the model.
    (artifact.path / "model.onnx").write_bytes((other.path / "model.onnx").read_bytes())
    swapped = load_artifact(save_artifact(artifact.path, artifact.card).path)
    with caplog.at_level(logging.WARNING):
        scorer = AutoBackend(AutoParams(**QUICK)).load(swapped)
    assert "leaving cpu.onnxruntime out" in caplog.text
    assert "cpu.onnxruntime" not in scorer.choice.values()
    for n in (1, 64, 2000):
        np.testing.assert_allclose(scorer.predict(x[:n]), ref[:n], atol=1e-5)


def test_falls_back_when_the_kernel_cannot_be_built(
    artifacts, monkeypatch, tmp_path, trigml_cache
):
    artifact, x, ref = artifacts["bdt-regression"]
    monkeypatch.setattr(native, "_LIBRARY", None)
    monkeypatch.setenv("CC", "")
    monkeypatch.setenv("PATH", str(tmp_path))
    scorer = AutoBackend(AutoParams(**QUICK)).load(artifact)
    assert set(scorer.scorers) == {"cpu.onnxruntime", "cpu.xgboost"}
    np.testing.assert_allclose(scorer.predict(x), ref, rtol=1e-6, atol=1e-4)


def test_lut_only_artifact_and_unreadable_formats(artifacts, builders, tmp_path):
    artifact, x, ref = artifacts["lut-multiclass"]
    scorer = AutoBackend(AutoParams(**QUICK)).load(artifact)
    assert set(scorer.choice.values()) == {"cpu.lut"}
    np.testing.assert_array_equal(scorer.predict(x), ref)

    cuts, _, _ = builders["lut"](tmp_path / "c")
    (cuts.path / "cuts.json").write_text("{}")
    card = cuts.card.model_copy(update={"formats": {"cuts-json": "cuts.json"}})
    only_cuts = load_artifact(save_artifact(cuts.path, card).path)
    with pytest.raises(
        ModelError, match=r"no format that a cpu\.auto runtime reads"
    ) as info:
        AutoBackend().load(only_cuts)
    assert "cuts-json" in str(info.value)


def test_restricted_candidates(artifacts, trigml_cache):
    artifact, x, ref = artifacts["bdt-binary"]
    params = AutoParams(**QUICK, candidates=["cpu.xgboost"])
    scorer = AutoBackend(params).load(artifact)
    assert set(scorer.choice.values()) == {"cpu.xgboost"}
    np.testing.assert_allclose(scorer.predict(x), ref, atol=1e-6)


def test_calibration_rows(artifacts, builders, tmp_path):
    artifact, x, _ = artifacts["mlp-binary"]
    rows = calibration_rows(artifact, 1200)
    assert rows.shape == (1200, 8) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[:500], x)
    np.testing.assert_array_equal(rows[500:1000], x)

    (artifact_path := tmp_path / "copy").mkdir()
    for f in artifact.path.iterdir():
        if f.name != "holdout.npz":
            (artifact_path / f.name).write_bytes(f.read_bytes())
    card = artifact.card.model_copy(update={"files": {}})
    bare = load_artifact(save_artifact(artifact_path, card).path)
    random_rows = calibration_rows(bare, 5000)
    offset = np.array([f.offset for f in bare.card.features])
    scale = np.array([f.scale for f in bare.card.features])
    z = (random_rows - offset) / scale
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05
