"""The command line end to end on toy events with built-in components only."""

from __future__ import annotations

import json
import shutil

import pytest
import uproot

from trigml.cli import main

TRAIN = """\
kind: train
name: toy-cuts
algorithm: {type: cuts, features: [x0, x1, x2]}
family: {type: cuts, target_efficiency: 0.8}
source: {type: toy, n_events: 5000, seed: 3}
output: trained
"""


@pytest.fixture(autouse=True)
def _builtins_only(monkeypatch):
    monkeypatch.setenv("TRIGML_PLUGINS", "none")


def test_plugins_json_lists_builtins(capsys):
    assert main(["plugins", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {(c["kind"], c["name"]) for c in doc["components"]}
    assert {("backend", "cpu.cuts"), ("source", "root"), ("sink", "root")} <= names
    assert {("algorithm", "cuts"), ("family", "cuts"), ("executor", "local")} <= names


def test_help_and_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "trigml run" in capsys.readouterr().out
    assert main([]) == 2


def test_train_run_export(tmp_path, menu_dir, capsys):
    (tmp_path / "train.yaml").write_text(TRAIN)
    assert main(["train", str(tmp_path / "train.yaml")]) == 0
    assert "eff70" in capsys.readouterr().out

    shutil.rmtree(menu_dir / "model")
    shutil.copytree(tmp_path / "trained", menu_dir / "model")
    out = menu_dir / "out"
    assert main(["validate", str(menu_dir / "menu.yaml")]) == 0
    assert main(["run", str(menu_dir / "menu.yaml"), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n_input"] == report["n_decided"] == 2000
    (line,) = report["lines"]
    assert 0.6 < line["metrics"]["signal_efficiency"] < 0.95
    assert line["rate_hz"] == pytest.approx(line["efficiency"] * 1e6)
    assert (out / "rate_vs_threshold.png").stat().st_size > 1000
    with uproot.open(out / "decisions.root") as f:
        tree = f["decisions"]
        assert tree.num_entries == 2000
        events = tree["event"].array(library="np")
        fired = tree["toy_cuts"].array(library="np")
    assert (events == range(2000)).all()
    assert fired.sum() == line["n_accepted"]
    capsys.readouterr()

    export = tmp_path / "export"
    code = main(
        [
            "export",
            str(tmp_path / "trained"),
            "--backend",
            "cpu.cuts",
            "--out",
            str(export),
        ]
    )
    assert code == 0
    consistency = json.loads((export / "consistency.json").read_text())
    assert consistency["min_agreement"] == 1.0
    assert "100.000%" in capsys.readouterr().out


def test_chunking_does_not_change_decisions(menu_dir, capsys):
    outs = []
    for step in ("700", "2000"):
        text = (menu_dir / "menu.yaml").read_text()
        text = text.replace("step_size: 700", f"step_size: {step}")
        (menu_dir / "menu.yaml").write_text(text)
        out = menu_dir / f"out{step}"
        assert main(["run", str(menu_dir / "menu.yaml"), "--out", str(out)]) == 0
        with uproot.open(out / "decisions.root") as f:
            outs.append(f["decisions"].arrays(library="np"))
    for key in outs[0]:
        assert (outs[0][key] == outs[1][key]).all()


def test_schema_check(tmp_path, capsys):
    assert main(["schema", "--dir", str(tmp_path)]) == 0
    assert main(["schema", "--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "run-config.schema.json").write_text("{}")
    assert main(["schema", "--check", "--dir", str(tmp_path)]) == 2
    assert "trigml schema" in capsys.readouterr().out


def test_demo_without_plugin(capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path / "d")]) == 2
    assert "trigml-lhcb" in capsys.readouterr().out


def test_generate_writes_root(tmp_path, capsys):
    out = tmp_path / "toy.root"
    assert main(["generate", "toy", "--set", "n_events=1234", "--out", str(out)]) == 0
    with uproot.open(out) as f:
        assert f["Events"].num_entries == 1234
    assert main(["generate", "toy", "--out", str(out)]) == 2
