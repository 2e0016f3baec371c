"""YAML reading with line numbers, and config validation messages."""

from __future__ import annotations

import pytest

from trigml.configfile import dotted, load_config, read_yaml
from trigml.errors import ConfigError
from trigml.schema.config import ComponentRef, RunConfig, TrainConfig

TEXT = """\
kind: train
algorithm: cuts
family:
  type: cuts
  target_efficiency: 0.8
output: model
lines:
  - a
  - {b: 1}
"""


def test_lines_of_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(TEXT)
    cfg = read_yaml(path)
    assert cfg.line_of(("family", "target_efficiency")) == 5
    assert cfg.line_of(("lines", 1, "b")) == 9
    assert cfg.line_of(("family", "nothing", "deeper")) == 3
    assert dotted(("lines", 1, "b")) == "lines[1].b"


def test_component_shorthand():
    assert ComponentRef.model_validate("cpu.cuts") == ComponentRef(type="cpu.cuts")
    ref = ComponentRef.model_validate({"type": "fpga.x", "precision": "ap_fixed<16,6>"})
    assert ref.params == {"precision": "ap_fixed<16,6>"}


def test_unknown_nested_key_names_valid_ones(tmp_path):
    path = tmp_path / "menu.yaml"
    path.write_text(
        "source: toy\nlines:\n  - name: a\n    model: m\n    working_piont: eff50\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, RunConfig)
    text = str(err.value)
    assert "menu.yaml:5: lines[0].working_piont" in text
    assert "did you mean 'working_point'" in text


def test_missing_required_key(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("algorithm: cuts\nfamily: cuts\n")
    with pytest.raises(ConfigError, match="output: required key is missing"):
        load_config(path, TrainConfig)


def test_yaml_tags_are_not_executed(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("source: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError):
        read_yaml(path)


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(path)
