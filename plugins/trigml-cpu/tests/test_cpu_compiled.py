"""The compiled tree kernel on unusual ensembles, and what it refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trigml.errors import DataError, ModelError
from trigml_cpu import native
from trigml_cpu.compiled import CompiledBackend, forest_from_xgboost_json

ODD_ENSEMBLES = {
    # Uneven trees: deep branches next to early leaves, padded to depth 8.
    "uneven": ("binary", {"max_depth": 8, "min_child_weight": 20}, 25),
    # Trees that never split (single leaves), from a huge minimum child weight.
    "leaves-only": ("binary", {"min_child_weight": 1e9}, 5),
    "stumps": ("regression", {"max_depth": 1}, 40),
    "absolute-error": ("regression", {"objective": "reg:absoluteerror"}, 20),
    "subsampled": ("multiclass", {"subsample": 0.5, "colsample_bytree": 0.5}, 15),
    "forest": ("binary", {"num_parallel_tree": 3, "subsample": 0.7}, 4),
    # Margins out; the base score is a margin too.
    "logitraw": ("binary", {"objective": "binary:logitraw"}, 10),
    # Probabilities out, the base score a probability too.
    "reg-logistic": ("binary", {"objective": "reg:logistic"}, 10),
}


@pytest.mark.parametrize("case", sorted(ODD_ENSEMBLES))
def test_kernel_matches_xgboost(builders, tmp_path, case, needs_native):
    task, params, rounds = ODD_ENSEMBLES[case]
    artifact, x, ref = builders["bdt"](
        tmp_path / case, task, rounds=rounds, extra_params=params, onnx=False
    )
    scorer = CompiledBackend().load(artifact)
    got = scorer.predict(x)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=2e-6)
    # Every batch-size path of the kernel: single rows, partial blocks, big batches.
    for n in (1, 3, 17, 255, 256, 257, 1000):
        np.testing.assert_allclose(scorer.predict(x[:n]), ref[:n], rtol=2e-6, atol=2e-6)


def test_rows_wider_than_the_block_copy(builders, tmp_path, needs_native):
    # More than 512 features: the kernel walks such rows one event at a time.
    artifact, x, ref = builders["bdt"](tmp_path / "wide", n_features=600, rounds=5)
    got = CompiledBackend().load(artifact).predict(x[:40])
    np.testing.assert_allclose(got, ref[:40], rtol=2e-6, atol=2e-6)


def test_nan_found_by_the_kernel_small_and_large_batches(artifacts, needs_native):
    artifact, x, _ = artifacts["bdt-binary"]
    scorer = CompiledBackend().load(artifact)
    for n, row in ((4, 3), (1000, 999)):
        bad = x[:n].copy()
        bad[row, 2] = np.nan
        with pytest.raises(DataError, match=rf"first in row {row}, feature 'f2'"):
            scorer.predict(bad)


def _chain_tree(depth: int) -> dict:
    """A tree that splits only on its left branch, ``depth`` levels deep."""
    n = 2 * depth + 1
    left, right = [-1] * n, [-1] * n
    for level in range(depth):
        left[2 * level], right[2 * level] = 2 * level + 2, 2 * level + 1
    return {
        "left_children": left,
        "right_children": right,
        "split_indices": [0] * n,
        # Internal nodes cut at 0.5; a leaf's value is its node number.
        "split_conditions": [0.5 if c >= 0 else float(i) for i, c in enumerate(left)],
        "split_type": [0] * n,
    }


def _doc(trees: list[dict], objective: str = "binary:logistic", name: str = "gbtree"):
    return {
        "learner": {
            "gradient_booster": {"name": name, "model": {"trees": trees}},
            "objective": {"name": objective},
            "learner_model_param": {
                "base_score": "[5E-1]",
                "num_class": "0",
                "num_feature": "2",
                "num_target": "1",
            },
        }
    }


def test_refused_models_say_which_backend_to_use():
    with pytest.raises(ModelError, match="deeper than 12 levels") as info:
        forest_from_xgboost_json(_doc([_chain_tree(13)]), "m.json")
    assert "cpu.xgboost" in str(info.value)
    assert forest_from_xgboost_json(_doc([_chain_tree(12)]), "m.json").depth == 12

    categorical = _chain_tree(2)
    categorical["split_type"] = [1, 0, 0, 0, 0]
    with pytest.raises(ModelError, match="categorical splits"):
        forest_from_xgboost_json(_doc([categorical]), "m.json")
    with pytest.raises(ModelError, match="booster 'dart'"):
        forest_from_xgboost_json(_doc([], name="dart"), "m.json")
    with pytest.raises(ModelError, match="objective 'rank:ndcg'"):
        forest_from_xgboost_json(_doc([], objective="rank:ndcg"), "m.json")
    with pytest.raises(ModelError, match="not an xgboost JSON model"):
        forest_from_xgboost_json({"trees": []}, "m.json")


def test_chain_tree_layout_by_hand():
    forest = forest_from_xgboost_json(_doc([_chain_tree(2)]), "m.json")
    # The root's left child (node 2) splits again into leaves 4 and 3; its right
    # child (node 1) is a leaf, padded with an always-left node whose two leaves
    # repeat its value.
    assert forest.depth == 2
    assert forest.nodes["threshold"][0].tolist() == [0.5, 0.5, np.inf]
    assert forest.leaves[0].tolist() == [4.0, 3.0, 1.0, 1.0]
    assert forest.base[0] == pytest.approx(0.0)  # logit(0.5)


def test_missing_compiler_is_a_clear_error(artifacts, monkeypatch, tmp_path):
    artifact, _, _ = artifacts["bdt-binary"]
    monkeypatch.setattr(native, "_LIBRARY", None)
    monkeypatch.setenv("CC", "")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ModelError, match="need a C compiler") as info:
        CompiledBackend().load(artifact)
    assert "cpu.xgboost" in str(info.value)


def test_kernel_is_compiled_once_into_the_cache(
    artifacts, monkeypatch, tmp_path, needs_native
):
    artifact, x, ref = artifacts["bdt-binary"]
    monkeypatch.setenv("TRIGML_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_LIBRARY", None)
    CompiledBackend().load(artifact)
    built = sorted((tmp_path / "kernels").glob("cpu-kernels-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(native, "_LIBRARY", None)
    scorer = CompiledBackend().load(artifact)
    assert built[0].stat().st_mtime_ns == stamp
    assert not [p for p in (tmp_path / "kernels").iterdir() if p.name.startswith(".")]
    np.testing.assert_allclose(scorer.predict(x), ref, atol=1e-6)


def test_unreadable_json(builders, tmp_path):
    from trigml.artifact import load_artifact, save_artifact

    artifact, _, _ = builders["bdt"](tmp_path / "m", rounds=2, onnx=False)
    (artifact.path / "model.json").write_text("{not json")
    broken = load_artifact(save_artifact(artifact.path, artifact.card).path)
    with pytest.raises(ModelError, match="cannot read the xgboost JSON"):
        CompiledBackend().load(broken)
    assert json.loads('{"ok": 1}')
