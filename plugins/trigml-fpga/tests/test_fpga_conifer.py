"""fpga.conifer: xgboost conversion, emulation, export, cache, menus, scan.

Every BDT here uses the types ``ap_fixed<18,8,AP_RND,AP_SAT>``; conifer's compiled
C++ depends only on the types, so the whole module compiles one library.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trigml.artifact import Artifact
from trigml.errors import ConfigError, DataError, ModelError
from trigml.testing import check_backend, isolated_plugins
from trigml_fpga import ConiferBackend, ConiferParams, hooks
from trigml_fpga.bdt import evaluate_margins, feature_shifts, read_xgboost_json
from trigml_fpga.fixed import parse_fixed
from trigml_fpga.testing import bdt_artifact, save_model, working_points

xgb = pytest.importorskip("xgboost")


@pytest.fixture(scope="session")
def bdt(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return bdt_artifact(tmp_path_factory.mktemp("bdt") / "model", n_trees=12, depth=3)


@pytest.fixture(scope="session")
def backend(fpga_cache: Path) -> ConiferBackend:
    return ConiferBackend(ConiferParams(cache_dir=str(fpga_cache), n_check=5000))


@pytest.fixture(scope="session")
def exported(
    bdt: Artifact, backend: ConiferBackend, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    return backend.export(bdt, tmp_path_factory.mktemp("export") / "bdt-fpga")


def _booster(artifact: Artifact) -> Any:
    booster = xgb.Booster()
    booster.load_model(artifact.file("xgboost-json"))
    return booster


@pytest.mark.parametrize("multiclass", [False, True])
def test_conversion_reproduces_xgboost_margins(
    tmp_path: Path, multiclass: bool
) -> None:
    artifact = bdt_artifact(
        tmp_path / "m", n_trees=6, depth=3, n=4000, multiclass=multiclass
    )
    forest = read_xgboost_json(artifact.file("xgboost-json"))
    x = artifact.holdout()["features"]
    # Put events exactly on cut values, where decimal cuts would send them astray.
    cuts = [
        (f, c)
        for t in forest.trees[0]
        for f, c in zip(t.feature, t.threshold)
        if f >= 0
    ]
    for row, (f, c) in enumerate(cuts):
        x[row, f] = np.float32(c)
    expected = _booster(artifact).predict(xgb.DMatrix(x), output_margin=True)
    ours = evaluate_margins(forest, x)
    np.testing.assert_allclose(ours.reshape(expected.shape), expected, atol=2e-5)
    assert forest.link == ("softmax" if multiclass else "sigmoid")
    assert np.all(np.isfinite(forest.base_margin))
    assert forest.n_outputs == (3 if multiclass else 1)


def test_conversion_refuses_what_conifer_cannot_emulate(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"learner": {}}))
    with pytest.raises(ModelError, match="not an xgboost Booster JSON"):
        read_xgboost_json(path)
    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    booster = xgb.train(
        {"objective": "rank:pairwise", "nthread": 1},
        xgb.DMatrix(x, np.arange(200) % 3),
        2,
    )
    booster.save_model(path)
    with pytest.raises(ModelError, match="rank:pairwise"):
        read_xgboost_json(path)


def test_input_shifts_fill_the_integer_range(bdt: Artifact) -> None:
    forest = read_xgboost_json(bdt.file("xgboost-json"))
    precision = parse_fixed("ap_fixed<18,8>")
    shifts = feature_shifts(forest, precision)
    shifted = forest.shifted(shifts)
    for per_output in shifted.trees:
        for tree in per_output:
            for f, c in zip(tree.feature, tree.threshold):
                if f >= 0:
                    assert abs(c) < 2 ** (precision.integer - 1)
    top = np.zeros(forest.n_features)
    for t in shifted.trees:
        for f, c in zip(t[0].feature, t[0].threshold):
            if f >= 0:
                top[f] = max(top[f], abs(c))
    used = top > 0
    assert np.all(top[used] >= 2 ** (precision.integer - 2))


def test_emulation_follows_the_float_model(
    bdt: Artifact, backend: ConiferBackend
) -> None:
    scorer = backend.load(bdt)
    hold = bdt.holdout()
    x = hold["features"][:3000]
    firmware = scorer.predict(x)
    assert firmware.shape == (3000,) and firmware.dtype == np.float32
    assert np.median(np.abs(firmware - hold["scores"][:3000])) < 2e-3
    # Batch sizes and threads do not change a single bit; bad input is refused.
    check_backend(backend, bdt, x, firmware, atol=0.0)


def test_export_writes_project_scores_report_and_plots(exported: Any) -> None:
    out = exported.directory
    for name in (
        "report.json",
        "README.md",
        "consistency.png",
        "emulated_scores.npz",
        "hls/build_hls.tcl",
        "hls/firmware/parameters.h",
        "hls/firmware/BDT.h",
        "hls/tb_data/tb_input_features.dat",
        "hls/tb_data/tb_output_predictions.dat",
    ):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.so"))
    report = json.loads((out / "report.json").read_text())
    assert report["backend"] == "fpga.conifer" and report["n"] == 5000
    for wp in report["working_points"]:
        assert wp["agreement"] >= 0.998, wp
        assert "signal_efficiency_deployed" in wp and "rate_hz_deployed" in wp
    assert report["conversion_check"]["max_abs_difference_float"] < 1e-5
    est = report["estimates"]
    assert est["latency_cycles_estimate"] > 0 and est["lut_estimate"] > 0
    assert "not from synthesis" in est["kind"]
    assert set(report["input_shifts"]) == set(report["features"])
    cut = report["firmware_cuts"][0]
    assert cut["quantity"] == "margin"
    assert cut["grid_value"] >= cut["logit"]
    with np.load(out / "emulated_scores.npz") as scores:
        assert scores["firmware_scores"].shape == (5000,)
    tb = np.loadtxt(out / "hls/tb_data/tb_output_predictions.dat")
    np.testing.assert_array_equal(tb, scores_head(out))
    readme = (out / "README.md").read_text()
    assert "vitis_hls -f build_hls.tcl" in readme and "shift" in readme


def scores_head(out: Path) -> np.ndarray:
    with np.load(out / "emulated_scores.npz") as scores:
        return scores["firmware_outputs"][:100].reshape(-1)


def test_second_export_reuses_everything(
    bdt: Artifact, backend: ConiferBackend, exported: Any, tmp_path: Path
) -> None:
    began = time.perf_counter()
    again = backend.export(bdt, tmp_path / "again")
    seconds = time.perf_counter() - began
    assert again.report["cache"]["hit"] is True
    assert again.report["timing"]["outputs_from_cache"] is True
    assert seconds < 2.0
    assert again.report["working_points"] == exported.report["working_points"]


def test_scan_runs_with_compiled_types(
    bdt: Artifact, fpga_cache: Path, exported: Any, tmp_path: Path
) -> None:
    # One trial, on the type already compiled: the scan plumbing without compiling.
    scanning = ConiferBackend(
        ConiferParams(
            cache_dir=str(fpga_cache),
            n_check=5000,
            scan_precision=True,
            scan_max_trials=1,
            target_agreement=0.99,
        )
    )
    calls = []
    original = scanning._compile

    def counting(artifact: Artifact, precision: Any) -> Any:
        calls.append(precision.cpp())
        if precision.cpp() != "ap_fixed<18,8,AP_RND,AP_SAT>":
            raise AssertionError("the test must not compile")
        return original(artifact, precision)

    scanning._compile = counting  # type: ignore[method-assign]
    result = scanning.export(bdt, tmp_path / "scan")
    scan = result.report["scan"]
    assert scan["trials"][0]["precision"] == "ap_fixed<18,8,AP_RND,AP_SAT>"
    assert scan["best"] == "ap_fixed<18,8,AP_RND,AP_SAT>" or scan["exhausted"]
    assert (tmp_path / "scan" / "precision_scan.png").is_file()


def test_conifer_refuses_a_single_integer_bit(bdt: Artifact, fpga_cache: Path) -> None:
    backend = ConiferBackend(
        ConiferParams(precision="ap_fixed<12,1>", cache_dir=str(fpga_cache))
    )
    with pytest.raises(ConfigError, match="at least 2"):
        backend.load(bdt)


def test_multiclass_bdt_shares_the_compiled_library(
    tmp_path: Path, backend: ConiferBackend, exported: Any
) -> None:
    artifact = bdt_artifact(
        tmp_path / "multi", n_trees=5, depth=3, n=4000, multiclass=True
    )
    result = backend.export(artifact, tmp_path / "multi-export")
    assert result.report["cache"]["compile_seconds"] is None  # library reused
    assert result.report["consistency"]["top_class_agreement"] >= 0.99
    scores = backend.load(artifact).predict(artifact.holdout()["features"][:10])
    assert scores.shape == (10, 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)


def test_scorer_refuses_bad_rows(bdt: Artifact, backend: ConiferBackend) -> None:
    scorer = backend.load(bdt)
    rows = bdt.holdout()["features"][:3].copy()
    rows[1, 2] = np.inf
    with pytest.raises(DataError, match="toy-bdt"):
        scorer.predict(rows)
    with pytest.raises(ModelError, match="expects 6 features"):
        scorer.predict(rows[:, :4])


def test_menu_line_runs_on_fpga_like_on_cpu(
    tmp_path: Path, fpga_cache: Path, exported: Any
) -> None:
    from trigml.assemble import assemble_run
    from trigml.runtime import run_menu
    from trigml.schema.config import ComponentRef, LineConfig, RunConfig
    from trigml.toy import toy_events

    # A BDT on the toy source's features, as an artifact of the 'cuts' algorithm.
    names = ["x0", "x1", "x2", "x3"]
    train = toy_events(6000, seed=11)
    x = np.column_stack([np.asarray(train[n], dtype=np.float32) for n in names])
    y = np.asarray(train["is_signal"], dtype=np.int64)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(x[:4000], y[:4000]),
        10,
    )
    folder = tmp_path / "toy-bdt"
    folder.mkdir()
    booster.save_model(folder / "model.json")
    scores = booster.predict(xgb.DMatrix(x[4000:])).astype(np.float32)
    artifact = save_model(
        folder,
        name="toy-menu-bdt",
        task="binary",
        names=names,
        formats={"xgboost-json": "model.json"},
        holdout={"features": x[4000:], "labels": y[4000:], "scores": scores},
        family="xgboost",
        points=working_points(scores, y[4000:]),
    )
    card = artifact.card.model_copy(
        update={"algorithm": "cuts", "algorithm_params": {"features": names}}
    )
    (folder / "card.json").write_text(card.model_dump_json())

    config = RunConfig(
        source=ComponentRef(type="toy", params={"n_events": 3000, "seed": 5}),
        lines=[
            LineConfig(
                name="bdt",
                model=str(folder),
                working_point="eff70",
                backend=ComponentRef(
                    type="fpga.conifer", params={"cache_dir": str(fpga_cache)}
                ),
            )
        ],
        sinks=[ComponentRef(type="memory")],
    )
    registry = isolated_plugins(("fpga", hooks)).registry
    menu, executor = assemble_run(config, registry)
    report, _ = run_menu(menu, executor, tmp_path / "run")
    table = menu.sinks[0].table
    import awkward as ak

    events = ak.concatenate([b.events for b in menu.source.batches()])
    ex = np.column_stack([np.asarray(events[n], dtype=np.float32) for n in names])
    float_pass = (
        booster.predict(xgb.DMatrix(ex)) >= card.working_point("eff70").threshold
    )
    assert report.n_input == 3000
    assert np.mean(table["bdt"] == float_pass) >= 0.995
    assert np.abs(table["bdt_score"] - booster.predict(xgb.DMatrix(ex))).max() < 0.05


def test_backend_and_scorer_survive_copying(
    bdt: Artifact, backend: ConiferBackend
) -> None:
    # Dask sends menus to workers through the same reduce protocol deepcopy uses
    import copy

    x = bdt.holdout()["features"][:50]
    scorer = backend.load(bdt)
    expected = scorer.predict(x)
    np.testing.assert_array_equal(copy.deepcopy(scorer).predict(x), expected)
    twin = copy.deepcopy(backend)
    np.testing.assert_array_equal(twin.load(bdt).predict(x), expected)


def test_cli_export_prints_the_agreement(
    bdt: Artifact,
    fpga_cache: Path,
    exported: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from trigml.cli import main

    monkeypatch.setenv("TRIGML_PLUGINS", "fpga")
    code = main(
        [
            "export",
            str(bdt.path),
            "--backend",
            "fpga.conifer",
            "--set",
            f"cache_dir={fpga_cache}",
            "--set",
            "n_check=5000",
            "--out",
            str(tmp_path / "cli"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "eff70" in printed and (tmp_path / "cli" / "report.json").is_file()
