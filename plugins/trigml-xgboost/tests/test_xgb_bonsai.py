"""Bonsai lookup tables: layout, agreement with the exact model, the grid guard."""

from __future__ import annotations

import numpy as np
import pytest

from trigml.artifact import read_npz
from trigml.errors import ConfigError
from trigml_xgboost.bonsai import build_lookup_table
from trigml_xgboost.family import XGBoostFamily
from trigml_xgboost.params import BonsaiParams, XGBoostParams

FAST = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.3}


def _lookup_by_the_spec(lut: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The lookup exactly as the shared ``lut`` format describes it."""
    table = lut["table"]
    index = []
    for i in range(x.shape[1]):
        b = np.searchsorted(lut[f"edges_{i}"], x[:, i], side="right") - 1
        index.append(np.clip(b, 0, table.shape[i] - 1))
    return table[tuple(index)]


def test_bonsai_table_file_and_accuracy(binary_sets, tmp_path):
    train, valid = binary_sets
    params = XGBoostParams(**FAST, bonsai={"bins": [16, 16, 8, 2, 2]})
    family = XGBoostFamily(params)
    model = family.fit(train, valid, seed=0)
    lut = model.model.lut

    assert lut.table.dtype == np.float32 and lut.table.shape == (16, 16, 8, 2, 2)
    record = model.metrics["bonsai"]
    assert record["cells"] == 16 * 16 * 8 * 2 * 2 and record["bins"] == [
        16,
        16,
        8,
        2,
        2,
    ]
    assert record["table_bytes"] >= 4 * record["cells"]
    assert 0 < record["mean_abs_diff"] < 0.05
    assert record["mean_abs_diff"] <= record["max_abs_diff"] < 0.6

    formats = family.save(model, tmp_path)
    assert formats["lut"] == "lut.npz"
    assert (
        model.metrics["bonsai"]["file_bytes"] == (tmp_path / "lut.npz").stat().st_size
    )
    saved = read_npz(tmp_path / "lut.npz")
    assert sorted(saved) == [
        "edges_0",
        "edges_1",
        "edges_2",
        "edges_3",
        "edges_4",
        "table",
    ]
    for i, n in enumerate(saved["table"].shape):
        edges = saved[f"edges_{i}"]
        assert len(edges) == n + 1 and np.all(np.diff(edges) > 0)
    by_spec = _lookup_by_the_spec(saved, valid.features)
    np.testing.assert_array_equal(by_spec, lut.lookup(valid.features))
    # the family's reference scores are the table's: a bonsai BDT is deployed as it
    np.testing.assert_array_equal(model.predict(valid.features), by_spec)
    exact = model.model.predict(valid.features)
    assert np.abs(by_spec - exact).mean() == pytest.approx(
        record["mean_abs_diff"], rel=1e-5
    )


def test_finer_bins_track_the_exact_model_better(binary_sets):
    train, valid = binary_sets
    family = XGBoostFamily(XGBoostParams(**FAST))
    exact = family.fit(_first_columns(train, 2), _first_columns(valid, 2), seed=0)
    x_valid = valid.features[:, :2]
    diffs = []
    for bins in (4, 32):
        lut = build_lookup_table(
            exact.predict, train.features[:, :2], ["x0", "x1"], BonsaiParams(bins=bins)
        )
        diffs.append(np.abs(lut.lookup(x_valid) - exact.predict(x_valid)).mean())
    assert diffs[1] < 0.5 * diffs[0]


def _first_columns(data, k):
    out = data.subset(np.arange(len(data)))
    out.features = np.ascontiguousarray(out.features[:, :k])
    out.features_spec = out.features_spec[:k]
    return out


def test_multiclass_table_has_a_class_axis(multiclass_sets):
    train, valid = multiclass_sets
    params = XGBoostParams(**FAST, bonsai={"bins": 10})
    model = XGBoostFamily(params).fit(train, valid, seed=0)
    lut = model.model.lut
    assert lut.table.shape == (10, 10, 10, 3)
    got = lut.lookup(valid.features)
    assert got.shape == (len(valid), 3)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_grid_guard_and_bins_per_feature(binary_sets):
    train, _ = binary_sets
    huge = BonsaiParams(bins=[256, 256, 256, 8, 1])
    with pytest.raises(ConfigError, match="exceeds the limit of 67,108,864") as info:
        build_lookup_table(lambda x: x[:, 0], train.features, train.names, huge)
    assert info.value.key == "family.params.bonsai.bins"
    assert "fewer bins" in str(info.value) and "prune" in str(info.value)
    with pytest.raises(ConfigError, match="lists 2 values for 5 model features"):
        build_lookup_table(
            lambda x: x[:, 0], train.features, train.names, BonsaiParams(bins=[4, 4])
        )


def test_constant_feature_gets_one_bin():
    x = np.column_stack([np.linspace(0, 1, 200), np.full(200, 3.0)]).astype(np.float32)
    lut = build_lookup_table(lambda r: r[:, 0] * 2, x, ["a", "b"], BonsaiParams(bins=4))
    assert lut.table.shape == (4, 1)
    got = lut.lookup(np.array([[0.1, 3.0], [0.9, -5.0]], dtype=np.float32))
    assert got[0] < got[1]
