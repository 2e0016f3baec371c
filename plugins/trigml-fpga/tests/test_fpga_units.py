"""Unit tests of trigml-fpga that compile nothing: types, parameters, scan, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trigml.errors import ConfigError, ModelError
from trigml.schema.card import FeatureSpec, ModelCard, WorkingPoint
from trigml.testing import isolated_plugins
from trigml_fpga import hooks
from trigml_fpga.cache import cache_key, cached_build
from trigml_fpga.consistency import (
    DecisionPoint,
    agreement_summary,
    consistency_report,
    decision_points,
)
from trigml_fpga.fixed import FixedType, parse_fixed
from trigml_fpga.scan import scan_precision

# -- fixed-point types ----------------------------------------------------------------


def test_parse_fixed_reads_widths_and_modes() -> None:
    plain = parse_fixed("ap_fixed<16,6>")
    assert (plain.width, plain.integer, plain.fractional, plain.signed) == (
        16,
        6,
        10,
        True,
    )
    assert plain.quantisation is None and plain.overflow is None
    full = parse_fixed(" ap_ufixed< 8 , 0 , AP_RND , AP_SAT > ")
    assert not full.signed and full.cpp() == "ap_ufixed<8,0,AP_RND,AP_SAT>"
    assert parse_fixed(full.cpp()) == full


@pytest.mark.parametrize(
    "text, words",
    [
        ("float", "not a fixed-point type"),
        ("ap_fixed<1,1>", "width 1"),
        ("ap_fixed<16,40>", "integer bits 40"),
        ("ap_fixed<16,6,AP_ROUND>", "unknown quantisation mode AP_ROUND"),
        ("ap_fixed<16,6,AP_RND,AP_SATURATE>", "unknown overflow mode"),
    ],
)
def test_parse_fixed_refuses_bad_types(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        parse_fixed(text, key="precision")
    assert "precision" in str(info.value)


def test_safe_modes_fill_only_missing_modes() -> None:
    assert parse_fixed("ap_fixed<16,6>").with_safe_modes().cpp() == (
        "ap_fixed<16,6,AP_RND,AP_SAT>"
    )
    kept = parse_fixed("ap_fixed<16,6,AP_TRN,AP_WRAP>").with_safe_modes()
    assert kept.cpp() == "ap_fixed<16,6,AP_TRN,AP_WRAP>"


def test_quantise_rounds_saturates_and_rounds_up_for_cuts() -> None:
    t = FixedType(8, 4)  # lsb 1/16, range [-8, 8 - 1/16]
    assert t.lsb == 1 / 16 and t.max_value == 8 - 1 / 16 and t.min_value == -8
    np.testing.assert_allclose(
        t.quantise([0.03, 0.04, 100.0, -100.0]), [0.0, 0.0625, t.max_value, -8.0]
    )
    # A cut x >= 0.01 on the grid is x >= 0.0625.
    assert t.quantise(0.01, ceil=True) == 0.0625
    assert FixedType(8, 0, signed=False).max_value == 1 - 1 / 256


# -- parameters through the registry -----------------------------------------------


def _registry():  # type: ignore[no-untyped-def]
    return isolated_plugins(("fpga", hooks)).registry


def test_backends_are_registered_and_built_from_params(tmp_path: Path) -> None:
    registry = _registry()
    assert {"fpga.hls4ml", "fpga.conifer"} <= set(registry.names("backend"))
    nn = registry.build(
        "backend",
        "fpga.hls4ml",
        {
            "precision": "ap_fixed<18,8>",
            "reuse_factor": 4,
            "cache_dir": str(tmp_path),
            "layers": {
                "head": "ap_fixed<24,10>",
                "body_0": {"accum": "ap_fixed<30,12>"},
            },
        },
    )
    assert nn.name == "fpga.hls4ml" and nn.formats() == ["torch-state"]
    assert nn.firmware.precision.cpp() == "ap_fixed<18,8,AP_RND,AP_SAT>"
    assert nn.firmware.layers["head"] == "ap_fixed<24,10>"
    assert nn.firmware.layers["body_0"].accum == "ap_fixed<30,12>"
    bdt = registry.build("backend", "fpga.conifer", {"precision": "ap_fixed<20,9>"})
    assert bdt.formats() == ["xgboost-json"]
    assert bdt.describe()["precision"] == "ap_fixed<20,9>"


@pytest.mark.parametrize(
    "name, params, words",
    [
        ("fpga.hls4ml", {"precision": "float32"}, "not a fixed-point type"),
        ("fpga.hls4ml", {"io_type": "io_serial"}, "io_type"),
        ("fpga.hls4ml", {"layers": {"fc1": "ap_fixed<4>"}}, "layers.fc1"),
        ("fpga.hls4ml", {"reuse_factor": 0}, "reuse_factor"),
        ("fpga.conifer", {"reuse_factor": 2}, "reuse_factor"),
        ("fpga.conifer", {"part": "xcvu9p; rm -rf /"}, "part"),
        ("fpga.conifer", {"target_agreement": 1.5}, "target_agreement"),
    ],
)
def test_bad_parameters_name_the_key(name: str, params: dict, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _registry().build("backend", name, params, key="backend")
    text = str(info.value)
    assert words in text and "backend" in text and name in text


# -- precision scan -----------------------------------------------------------------


def _agreement_model(need_integer: int, need_fractional: int):  # type: ignore[no-untyped-def]
    """Agreement that reaches 0.9995 with enough integer and fractional bits."""
    calls: list[str] = []

    def evaluate(t: FixedType) -> float:
        calls.append(t.short())
        short_i = max(0, need_integer - t.integer)
        short_f = max(0, need_fractional - t.fractional)
        return 0.9995 - 0.2 * short_i - 0.001 * short_f

    return evaluate, calls


def test_scan_finds_the_narrowest_passing_type() -> None:
    evaluate, calls = _agreement_model(need_integer=4, need_fractional=7)
    result = scan_precision(evaluate, parse_fixed("ap_fixed<16,6>"), 0.999)
    assert result.best is not None and result.best.short() == "<11,4>"
    assert len(calls) == len(set(calls)) <= 10
    doc = result.to_dict()
    assert doc["best"] == "ap_fixed<11,4>" and doc["best_agreement"] == 0.9995
    assert all(t["passed"] == (t["agreement"] >= 0.999) for t in doc["trials"])


def test_scan_grows_a_start_type_that_fails() -> None:
    evaluate, _ = _agreement_model(need_integer=7, need_fractional=13)
    result = scan_precision(
        evaluate, parse_fixed("ap_fixed<12,5>"), 0.999, max_trials=20
    )
    assert result.best is not None
    assert result.best.integer >= 7 and result.best.fractional >= 13


def test_scan_reports_exhaustion_and_failure() -> None:
    evaluate, calls = _agreement_model(need_integer=4, need_fractional=7)
    short = scan_precision(evaluate, parse_fixed("ap_fixed<16,6>"), 0.999, max_trials=2)
    assert short.exhausted and len(calls) == 2 and short.best is not None
    never = scan_precision(lambda t: 0.5, parse_fixed("ap_fixed<16,6>"), 0.999)
    assert never.best is None and never.to_dict()["best"] is None


# -- consistency report -------------------------------------------------------------


def _card(task: str, points: list[WorkingPoint]) -> ModelCard:
    return ModelCard(
        name="m",
        algorithm="toy",
        family="f",
        task=task,  # type: ignore[arg-type]
        features=[FeatureSpec(name="a"), FeatureSpec(name="b")],
        working_points=points,
    )


def test_consistency_counts_flips_efficiencies_and_rates() -> None:
    rng = np.random.default_rng(0)
    n = 10_000
    labels = (rng.random(n) < 0.3).astype(int)
    float_scores = rng.random(n).astype(np.float32)
    firmware = float_scores.copy()
    firmware[:5] = 0.79  # five events just below the cut 0.8
    float_scores[:5] = 0.81
    features = rng.normal(size=(n, 2)).astype(np.float32)
    points = [DecisionPoint("tight", 0.8, input_rate_hz=1e6)]
    report = consistency_report(
        float_scores=float_scores,
        firmware_scores=firmware,
        labels=labels,
        features=features,
        feature_names=["a", "b"],
        points=points,
        task="binary",
        target_agreement=0.999,
    )
    wp = report["working_points"][0]
    assert wp["agreement"] == 1 - 5 / n and wp["meets_target"]
    assert (wp["flips_to_fail"], wp["flips_to_pass"], wp["n_flips"]) == (5, 0, 5)
    assert {f["index"] for f in wp["flips"]} == set(range(5))
    assert set(wp["flips"][0]["features"]) == {"a", "b"}
    passed = float_scores >= 0.8
    assert wp["float"]["signal_efficiency"] == pytest.approx(passed[labels == 1].mean())
    bkg = (firmware >= 0.8)[labels == 0].mean()
    assert wp["firmware"]["rate_hz"] == pytest.approx(bkg * 1e6)
    assert report["score_difference"]["abs_quantiles"]["1"] == pytest.approx(
        0.02, abs=1e-6
    )
    assert report["min_agreement"] == wp["agreement"]
    json.dumps(report)


def test_multiclass_agreement_uses_every_class_and_the_top_class() -> None:
    float_scores = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    firmware = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    points = [DecisionPoint("p", 0.45)]
    report = consistency_report(
        float_scores=float_scores,
        firmware_scores=firmware,
        labels=np.array([0, 1, 2]),
        features=np.zeros((3, 2), dtype=np.float32),
        feature_names=["a", "b"],
        points=points,
        task="multiclass",
        target_agreement=0.999,
    )
    assert report["working_points"][0]["agreement"] == pytest.approx(2 / 3)
    assert report["top_class_agreement"] == pytest.approx(2 / 3)
    assert agreement_summary(float_scores, firmware, points) == pytest.approx(2 / 3)
    assert report["meets_target"] is False


def test_decision_points_come_from_the_card_or_are_derived() -> None:
    scores = np.linspace(0, 1, 1001)
    labels = np.zeros(1001)
    card = _card("binary", [WorkingPoint(name="loose", threshold=0.3)])
    assert [p.name for p in decision_points(card, scores, labels)] == ["loose"]
    anomaly = decision_points(_card("anomaly", []), scores, labels)
    assert [p.name for p in anomaly] == ["q99", "q99.9"]
    assert anomaly[0].threshold == pytest.approx(0.99) and anomaly[0].derived
    labels[500:] = 1
    binary = decision_points(_card("binary", []), scores, labels)
    assert [p.name for p in binary] == ["eff50", "eff70", "eff90"]
    assert decision_points(_card("regression", []), scores, labels) == []


# -- cache --------------------------------------------------------------------------


def test_cache_builds_once_and_forgets_failed_builds(tmp_path: Path) -> None:
    built = []

    def build(folder: Path) -> dict:
        built.append(folder)
        (folder / "lib.so").write_text("x")
        return {"n": 1}

    key = cache_key({"model": "abc", "precision": "ap_fixed<16,6>"})
    assert key == cache_key({"precision": "ap_fixed<16,6>", "model": "abc"})
    first = cached_build(tmp_path, "kind", key, build)
    second = cached_build(tmp_path, "kind", key, build)
    assert first[2] is False and second[2] is True and len(built) == 1
    assert second[1] == {"n": 1} and (second[0] / "lib.so").is_file()

    def broken(folder: Path) -> dict:
        raise ModelError("no")

    with pytest.raises(ModelError):
        cached_build(tmp_path, "kind", "other", broken)
    assert not (tmp_path / "kind" / "other").exists()
