"""The demo end to end on a tenth of its events, through the command line."""

from __future__ import annotations

import json

import pytest

from trigml.cli import main


@pytest.mark.usefixtures("trigml_cache")
def test_quick_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "lhcb-quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "HLT2-like menu" in printed and "CPU vs emulated FPGA" in printed
    summary = json.loads((out / "summary.json").read_text())
    lines = summary["lines"]
    assert set(lines) == {
        "topo_cuts",
        "topo_bdt",
        "topo_bdt_fpga",
        "topo_bonsai",
        "topo_flat",
    }
    assert summary["n_events"] == 3000 and summary["rejected"] == {}
    # the trained BDT beats the cut baseline, and CPU and FPGA decide alike
    assert lines["topo_bdt"]["trained_mean"] > lines["topo_cuts"]["trained_mean"]
    assert summary["cpu_fpga_agreement"] > 0.99
    for name in ("train_topo_bdt.yaml", "export_topo_bdt_conifer.yaml", "menu.yaml"):
        assert (out / "configs" / name).is_file()
    for png in ("topo_roc.png", "efficiency_vs_b_pt.png", "menu_rate_vs_threshold.png"):
        assert (out / "plots" / png).stat().st_size > 1000
    assert main(["validate", str(out / "configs" / "menu.yaml")]) == 0
