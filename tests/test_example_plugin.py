"""The example plugin under docs/ installs and is found through its entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trigml.plugins import discover
from trigml.testing import check_algorithm
from trigml.toy import toy_events

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "example-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
    )
    sys.path.insert(0, str(target))
    yield target
    sys.path.remove(str(target))
    for name in [m for m in sys.modules if m.startswith("trigml_example")]:
        del sys.modules[name]


def test_example_plugin_is_discovered(installed):
    plugins = discover(only="example")
    algo = plugins.registry.get("algorithm", "example.leading")
    assert (algo.dist, algo.version) == ("trigml-example", "0.1.0")
    assert ("backend", "example.threshold") in plugins.registry
    check_algorithm(algo.build({}), toy_events(300, seed=2))
