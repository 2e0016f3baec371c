"""Registration of the CMS components and the mixed source for menus."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from trigml.errors import ConfigError
from trigml.registry import Registry
from trigml.schema.events import validate_batch
from trigml.testing import isolated_plugins
from trigml_cms import hooks
from trigml_cms.btag_sim import btag_event_schema
from trigml_cms.emtf_sim import emtf_event_schema
from trigml_cms.menu_sim import MenuSimParams, MenuSimSource


@pytest.fixture(scope="module")
def registry() -> Registry:
    plugins = isolated_plugins(("cms", hooks))
    assert not plugins.failed
    return plugins.registry


def test_components_are_registered(registry: Registry) -> None:
    assert {"cms.emtf", "cms.deepcsv"} <= set(registry.names("algorithm"))
    assert {"cms.emtf_sim", "cms.btag_sim", "cms.menu_sim"} <= set(
        registry.names("source")
    )
    assert "cms.emtf_lut" in registry.names("backend")


def test_components_build_from_config_parameters(registry: Registry) -> None:
    emtf = registry.build("algorithm", "cms.emtf", {"mode": 14, "address_bits": 20})
    assert emtf.packing.address_bits <= 20
    source = registry.build(
        "source", "cms.emtf_sim", {"n_events": 100, "spectrum": "falling"}
    )
    assert len(next(iter(source.batches())).events) == 100
    with pytest.raises(ConfigError, match="mode"):
        registry.build("algorithm", "cms.emtf", {"mode": 8})
    with pytest.raises(ConfigError, match=r"field_bits\.bogus"):
        registry.build("algorithm", "cms.emtf", {"field_bits": {"bogus": 3}})
    with pytest.raises(ConfigError, match="composition"):
        registry.build("source", "cms.btag_sim", {"composition": {"top": 1.0}})


def test_menu_source_pairs_a_muon_and_a_jet() -> None:
    source = MenuSimSource(MenuSimParams(n_events=3_000, seed=5, batch_size=1_000))
    batches = list(source.batches())
    assert [b.start for b in batches] == [0, 1_000, 2_000]
    events = ak.concatenate([b.events for b in batches])
    schema = emtf_event_schema().merge(btag_event_schema())
    assert validate_batch(events, schema, policy="fail").keep.all()
    # Zero-bias-like muons and a QCD-like jet mix.
    assert (ak.to_numpy(events.mu_pt) > 20).mean() < 0.02
    light = (ak.to_numpy(events.flavour) == 3).mean()
    assert 0.8 < light < 0.9
    again = MenuSimSource(MenuSimParams(n_events=3_000, seed=5)).events()
    np.testing.assert_array_equal(ak.to_numpy(again.dphi12), ak.to_numpy(events.dphi12))
