"""Shared fixtures of the trigml-fpga tests: one cache of compiled emulations.

Every compile costs seconds, so artifacts are session fixtures and all tests share one
cache folder. Tests marked ``slow`` run only with ``TRIGML_SLOW=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if os.environ.get("TRIGML_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow; run with TRIGML_SLOW=1")
    for item in items:
        if "slow" in item.keywords and "trigml-fpga" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fpga_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of compiled emulations for the whole run.

    Under pytest-xdist the workers share it (entries are built under a file lock),
    so that two workers never compile the same firmware.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path = base / "fpga-cache"
    path.mkdir(exist_ok=True)
    return path
