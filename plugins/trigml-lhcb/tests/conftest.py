"""Small simulated samples shared by the trigml-lhcb tests (generated once)."""

from __future__ import annotations

import numpy as np
import pytest

from trigml_lhcb.ghostsim import simulate_ghost
from trigml_lhcb.simulation import simulate_topo


@pytest.fixture(scope="session")
def signal_events():
    """3000 signal events of every mode."""
    return simulate_topo(3000, np.random.default_rng(11), kind="signal")


@pytest.fixture(scope="session")
def minbias_events():
    """4000 minimum-bias events."""
    return simulate_topo(4000, np.random.default_rng(12), kind="minbias")


@pytest.fixture(scope="session")
def ghost_events():
    """600 busy events of the ghost simulation."""
    return simulate_ghost(600, np.random.default_rng(13))
