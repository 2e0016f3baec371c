"""Longer checks that compile several firmware variants (run with TRIGML_SLOW=1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trigml_fpga import ConiferBackend, ConiferParams, Hls4mlBackend, Hls4mlParams
from trigml_fpga.testing import bdt_artifact, module_loader, torch_artifact

pytestmark = pytest.mark.slow


def test_bdt_precision_scan_reaches_the_target(
    tmp_path: Path, fpga_cache: Path
) -> None:
    pytest.importorskip("xgboost")
    artifact = bdt_artifact(tmp_path / "bdt", n_trees=20, depth=4)
    backend = ConiferBackend(
        ConiferParams(
            precision="ap_fixed<14,6>",
            cache_dir=str(fpga_cache),
            scan_precision=True,
            scan_max_trials=8,
        )
    )
    report = backend.export(artifact, tmp_path / "out").report
    scan = report["scan"]
    assert scan["best"] is not None and scan["best_agreement"] >= 0.999
    best = next(t for t in scan["trials"] if t["precision"] == scan["best"])
    assert all(t["width"] >= best["width"] for t in scan["trials"] if t["passed"])


def test_probabilities_mode_keeps_the_sigmoid_in_firmware(
    tmp_path: Path, fpga_cache: Path
) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(4)
    module = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    artifact = torch_artifact(tmp_path / "m", module, name="prob", task="binary")
    backend = Hls4mlBackend(
        Hls4mlParams(output="probabilities", cache_dir=str(fpga_cache))
    )
    backend.module_loader = module_loader(module)
    result = backend.export(artifact, tmp_path / "out")
    report = result.report
    assert report["network"]["activation_in_software"] is None
    assert report["network"]["layers"][-1]["result"].startswith("ufixed<16,0")
    scores = np.load(tmp_path / "out" / "emulated_scores.npz")["firmware_scores"]
    assert scores.min() >= 0.0 and scores.max() < 1.0
    assert np.abs(scores - artifact.holdout()["scores"]).max() < 0.02


def test_io_stream_cnn_with_reuse(tmp_path: Path, fpga_cache: Path) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Cnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(2, 4, 2)
            self.act = nn.ReLU()
            self.flat = nn.Flatten()
            self.head = nn.Linear(8, 1)

        def forward(self, x: Any) -> Any:
            return self.head(self.flat(self.act(self.conv(x.view(-1, 2, 3)))))

    torch.manual_seed(5)
    module = Cnn()
    artifact = torch_artifact(tmp_path / "m", module, name="stream", task="regression")
    backend = Hls4mlBackend(
        Hls4mlParams(io_type="io_stream", reuse_factor=2, cache_dir=str(fpga_cache))
    )
    backend.module_loader = module_loader(module)
    report = backend.export(artifact, tmp_path / "out").report
    assert report["firmware"]["io_type"] == "io_stream"
    est = report["estimates"]
    assert est["initiation_interval_cycles"] >= 2
    diff = report["consistency"]["score_difference"]["abs_quantiles"]
    assert diff["0.99"] < 0.05


def test_trigml_torch_networks_load_through_the_plugin(
    tmp_path: Path, fpga_cache: Path
) -> None:
    arch_module = pytest.importorskip("trigml_torch.arch")
    arch = {
        "builder": "cnn2d",
        "params": {
            "input_shape": [1, 2, 3],
            "channels": [3],
            "kernel_size": 3,
            "pool": 1,
            "hidden": [4],
            "n_outputs": 1,
            "final": "sigmoid",
        },
    }
    module = arch_module.build_module(arch)
    artifact = torch_artifact(
        tmp_path / "m", module, name="tt", task="binary", arch=arch
    )
    backend = Hls4mlBackend(Hls4mlParams(cache_dir=str(fpga_cache)))
    report = backend.export(artifact, tmp_path / "out").report
    assert report["network"]["input_shape"] == [1, 2, 3]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["n"] == 2000
    assert report["min_agreement"] >= 0.99
