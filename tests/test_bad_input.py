"""Bad input: each case gives one clear message, the right exit code, and loses nothing.

Every case goes through the command line, as a user would meet it.
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from trigml.cli import main
from trigml.testing import tiny_root_file
from trigml.toy import toy_events


@pytest.fixture(autouse=True)
def _builtins_only(monkeypatch):
    monkeypatch.setenv("TRIGML_PLUGINS", "none")


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


# -- configuration problems: exit code 2 ---------------------------------------------


def test_malformed_yaml(menu_dir, capsys):
    edit(menu_dir / "menu.yaml", "lines:", "lines: [\n")
    code, out = run(capsys, "validate", str(menu_dir / "menu.yaml"))
    assert code == 2 and "malformed YAML" in out and "menu.yaml:" in out


def test_unknown_key_with_suggestion(menu_dir, capsys):
    edit(menu_dir / "menu.yaml", "signal_field:", "signal_feild:")
    code, out = run(capsys, "validate", str(menu_dir / "menu.yaml"))
    assert code == 2
    assert "menu.yaml:11" in out and "signal_feild" in out
    assert "did you mean 'signal_field'" in out


def test_wrong_type(menu_dir, capsys):
    edit(menu_dir / "menu.yaml", "input_rate_hz: 1.0e6", "input_rate_hz: fast")
    code, out = run(capsys, "validate", str(menu_dir / "menu.yaml"))
    assert code == 2 and "input_rate_hz" in out and "'fast'" in out


def test_unknown_backend_with_suggestion(menu_dir, capsys):
    edit(menu_dir / "menu.yaml", "backend: cpu.cuts", "backend: cpu.cut")
    code, out = run(capsys, "validate", str(menu_dir / "menu.yaml"))
    assert code == 2
    assert "menu.yaml:8: lines[0].backend: unknown backend 'cpu.cut'" in out
    assert "did you mean 'cpu.cuts'" in out and "Installed:" in out


def test_unknown_component_parameter(menu_dir, capsys):
    edit(menu_dir / "menu.yaml", "step_size: 700", "step_size: 700\n  stepsize: 5")
    code, out = run(capsys, "validate", str(menu_dir / "menu.yaml"))
    assert code == 2 and "source.params.stepsize" in out and "menu.yaml:5" in out


def test_unknown_working_point(menu_dir, capsys):
    edit(menu_dir / "menu.yaml", "working_point: eff70", "working_point: eff99")
    code, out = run(capsys, "validate", str(menu_dir / "menu.yaml"))
    assert code == 2 and "eff99" in out and "eff50, eff70, eff90" in out


def test_duplicate_line_names(menu_dir, capsys):
    text = (menu_dir / "menu.yaml").read_text()
    block = text[text.index("  - name") : text.index("input_rate_hz")]
    edit(menu_dir / "menu.yaml", "input_rate_hz", block + "input_rate_hz")
    code, out = run(capsys, "validate", str(menu_dir / "menu.yaml"))
    assert code == 2 and "duplicate line name 'toy_cuts'" in out


def test_missing_and_empty_config(tmp_path, capsys):
    code, out = run(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "not found" in out
    (tmp_path / "empty.yaml").write_text("")
    code, out = run(capsys, "run", str(tmp_path / "empty.yaml"))
    assert code == 2 and "empty" in out


def test_output_directory_exists(menu_dir, capsys):
    (menu_dir / "out").mkdir()
    (menu_dir / "out" / "keep.txt").write_text("x")
    code, out = run(
        capsys, "run", str(menu_dir / "menu.yaml"), "--out", str(menu_dir / "out")
    )
    assert code == 2 and "--overwrite" in out
    assert (menu_dir / "out" / "keep.txt").exists()


def test_duplicate_plugin_names(tmp_path, monkeypatch, capsys):
    from trigml.plugins import _CACHE
    from trigml.testing import fake_distribution

    code = (
        "from trigml.hookspec import hookimpl\n"
        "from trigml.cuts import CutsBackend\n"
        "@hookimpl\n"
        "def trigml_register_backends(register):\n"
        "    register('cpu.cuts', CutsBackend)\n"
    )
    monkeypatch.setenv("TRIGML_PLUGINS", "clash")
    _CACHE.clear()
    with fake_distribution(
        tmp_path,
        "trigml-clash",
        "9.9",
        entry_points={"clash": "clash_mod"},
        modules={"clash_mod": code},
    ):
        status, out = run(capsys, "plugins")
    _CACHE.clear()
    assert status == 2 and "cpu.cuts" in out and "trigml-clash 9.9" in out


def test_broken_plugin_is_a_warning(tmp_path, monkeypatch, capsys):
    from trigml.plugins import _CACHE
    from trigml.testing import fake_distribution

    monkeypatch.setenv("TRIGML_PLUGINS", "broken")
    _CACHE.clear()
    with fake_distribution(
        tmp_path,
        "trigml-broken",
        "0.3",
        entry_points={"broken": "broken_mod"},
        modules={"broken_mod": "raise ImportError('needs libfoo')\n"},
    ):
        status, out = run(capsys, "plugins", "--json")
    _CACHE.clear()
    doc = json.loads(out)
    assert status == 0
    assert doc["failed"][0]["dist"] == "trigml-broken"
    assert "needs libfoo" in doc["failed"][0]["reason"]


# -- input files and data: exit code 1 -----------------------------------------------


def run_menu(menu_dir: Path, capsys, *extra: str) -> tuple[int, str]:
    return run(
        capsys,
        "run",
        str(menu_dir / "menu.yaml"),
        "--out",
        str(menu_dir / "out"),
        "--overwrite",
        *extra,
    )


def test_missing_input_file(menu_dir, capsys):
    (menu_dir / "events.root").unlink()
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "events.root" in out


def test_empty_input_file(menu_dir, capsys):
    (menu_dir / "events.root").write_bytes(b"")
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "events.root" in out and "empty" in out


def test_truncated_input_file(menu_dir, capsys):
    data = (menu_dir / "events.root").read_bytes()
    (menu_dir / "events.root").write_bytes(data[: len(data) // 2])
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "events.root" in out


def test_not_a_root_file(menu_dir, capsys):
    (menu_dir / "events.root").write_text("run,event\n1,2\n")
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "events.root" in out


def test_missing_branch(menu_dir, capsys):
    events = toy_events(100, seed=1)
    tiny_root_file(menu_dir / "events.root", events[["x0", "x1", "is_signal", "nPV"]])
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "x2" in out


def test_branch_of_wrong_type(menu_dir, capsys):
    events = toy_events(100, seed=1)
    events = ak.with_field(events, ak.Array([[1.0]] * 100), "x2")
    tiny_root_file(menu_dir / "events.root", events)
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "x2" in out


def _with_bad_values(menu_dir: Path) -> int:
    events = toy_events(1_000, seed=5)
    x0 = ak.to_numpy(events["x0"]).copy()
    x0[[3, 10]] = np.nan
    x0[20] = np.inf
    events = ak.with_field(events, x0, "x0")
    tiny_root_file(menu_dir / "events.root", events)
    return len(events)


def test_nan_inf_events_are_rejected_and_counted(menu_dir, capsys):
    n = _with_bad_values(menu_dir)
    code, out = run_menu(menu_dir, capsys)
    assert code == 0, out
    report = json.loads((menu_dir / "out" / "report.json").read_text())
    assert report["rejected"] == {"non-finite x0": 3}
    assert report["n_decided"] + 3 == report["n_input"] == n
    import uproot

    with uproot.open(menu_dir / "out" / "decisions.root") as f:
        status = f["decisions"]["status"].array(library="np")
    assert len(status) == n and (status != 0).sum() == 3


def test_nan_with_fail_policy(menu_dir, capsys):
    _with_bad_values(menu_dir)
    edit(menu_dir / "menu.yaml", "sinks: [root]", "sinks: [root]\nvalidation: fail")
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "non-finite x0" in out and "event 3" in out


def test_out_of_range_is_rejected(menu_dir, capsys, monkeypatch):
    from trigml.cuts import CutsAlgorithm
    from trigml.schema.events import FieldSpec

    original = CutsAlgorithm.event_schema

    def with_range(self):
        schema = original(self)
        schema.fields["x1"] = FieldSpec(min=0.0, max=5.0)
        return schema

    monkeypatch.setattr(CutsAlgorithm, "event_schema", with_range)
    code, out = run_menu(menu_dir, capsys)
    assert code == 0, out
    report = json.loads((menu_dir / "out" / "report.json").read_text())
    ((reason, count),) = report["rejected"].items()
    assert reason.startswith("out of range x1") and count > 0
    assert report["n_decided"] + count == report["n_input"]


def test_zero_events(menu_dir, capsys):
    tiny_root_file(menu_dir / "events.root", toy_events(0, seed=1))
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "zero events" in out


def test_tampered_model(menu_dir, capsys):
    path = menu_dir / "model" / "cuts.json"
    path.write_text(path.read_text().replace("min", "max", 1))
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "hash mismatch" in out and "cuts.json" in out


def test_model_features_do_not_match_data(menu_dir, capsys):
    edit(
        menu_dir / "menu.yaml",
        "    backend: cpu.cuts",
        "    backend: cpu.cuts\n    algorithm: {type: cuts, features: [x0, x1, x3]}",
    )
    code, out = run_menu(menu_dir, capsys)
    assert code == 1 and "expects features" in out and "x3" in out


def test_missing_model_directory(menu_dir, capsys):
    edit(menu_dir / "menu.yaml", "model: model", "model: no-such-model")
    code, out = run(capsys, "validate", str(menu_dir / "menu.yaml"))
    assert code == 1 and "no-such-model" in out and "lines[0].model" in out
