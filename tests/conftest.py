"""Shared fixtures of the core tests: a trained cuts model and toy ROOT files."""

from __future__ import annotations

from pathlib import Path

import pytest

from trigml.schema.config import ComponentRef, TrainConfig
from trigml.testing import isolated_plugins, tiny_root_file
from trigml.toy import toy_events
from trigml.train import train_model

MENU = """\
source:
  type: root
  files: [events.root]
  step_size: 700
lines:
  - name: toy_cuts
    model: model
    backend: cpu.cuts
    working_point: eff70
input_rate_hz: 1.0e6
signal_field: is_signal
sinks: [root]
"""


@pytest.fixture(scope="session")
def cuts_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cuts model trained on toy events, shared by the tests of a session."""
    out = tmp_path_factory.mktemp("models") / "model"
    config = TrainConfig(
        name="toy-cuts",
        algorithm=ComponentRef(type="cuts", params={"features": ["x0", "x1", "x2"]}),
        family=ComponentRef(type="cuts", params={"target_efficiency": 0.7}),
        source=ComponentRef(type="toy", params={"n_events": 10_000, "seed": 2}),
        output=str(out),
    )
    train_model(config, isolated_plugins().registry)
    return out


@pytest.fixture
def menu_dir(tmp_path: Path, cuts_model: Path) -> Path:
    """A folder with a menu, a copy of the cuts model and 2,000 toy events in ROOT."""
    import shutil

    shutil.copytree(cuts_model, tmp_path / "model")
    tiny_root_file(tmp_path / "events.root", toy_events(2_000, seed=9))
    (tmp_path / "menu.yaml").write_text(MENU)
    return tmp_path
