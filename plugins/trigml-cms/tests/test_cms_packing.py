"""Lookup-table addresses: packing round trip, widths, compression and table filling."""

from __future__ import annotations

import numpy as np
import pytest

from trigml.errors import ConfigError
from trigml_cms.emtf import mode_packing, stations_of
from trigml_cms.packing import (
    MAX_ADDRESS_BITS,
    PT_BITS,
    build_lut,
    dphi_edges,
    invpt_to_pt_code,
    lookup,
    pt_code_to_invpt,
)

TRACK_MODES = [m for m in range(16) if len(stations_of(m)) >= 2]


@pytest.mark.parametrize("mode", TRACK_MODES)
def test_pack_unpack_round_trip(mode: int) -> None:
    packing = mode_packing(mode)
    assert packing.address_bits <= MAX_ADDRESS_BITS
    rng = np.random.default_rng(mode)
    codes = np.stack([rng.integers(0, 1 << f.bits, 1000) for f in packing.fields], 1)
    address = packing.pack(codes)
    assert address.min() >= 0 and address.max() < (1 << packing.address_bits)
    np.testing.assert_array_equal(packing.unpack(address), codes)


@pytest.mark.parametrize("bits", [12, 18, 24])
def test_address_width_is_configurable(bits: int) -> None:
    for mode in TRACK_MODES:
        packing = mode_packing(mode, address_bits=bits)
        assert packing.address_bits <= bits
        assert packing.names[0].startswith("dphi_")


def test_field_widths_can_be_set_and_dropped() -> None:
    packing = mode_packing(15, field_bits={"dphi_a": 6, "rpc": 0})
    assert "rpc" not in packing.names
    assert packing.fields[0].bits == 6
    with pytest.raises(ConfigError, match="no address field 'ring1'"):
        mode_packing(7, field_bits={"ring1": 1})
    with pytest.raises(ConfigError, match="cannot have"):
        mode_packing(15, field_bits={"fr": 2})
    with pytest.raises(ConfigError, match="need at least"):
        mode_packing(15, address_bits=4)
    with pytest.raises(ConfigError, match="two or more"):
        mode_packing(8)


def test_quantisation_is_idempotent_and_monotonic() -> None:
    packing = mode_packing(15)
    rng = np.random.default_rng(0)
    raw = np.column_stack(
        [rng.integers(-50, 700, 5000) if f.kind == "dphi"
         else rng.integers(-6, 130, 5000)
         for f in packing.fields]
    ).astype(float)  # fmt: skip
    once = packing.quantise(raw)
    np.testing.assert_array_equal(packing.quantise(once), once)
    edges = dphi_edges(7, 480.0)
    assert len(edges) == 128 and np.all(np.diff(edges) > 0)
    assert np.all(np.diff(np.diff(edges)) >= 0)  # steps never shrink
    assert edges[31] == 31 and edges[-1] >= 400  # full precision at small Δφ


def test_table_agrees_with_the_model_on_every_address() -> None:
    packing = mode_packing(15, address_bits=14)
    weights = np.linspace(0.2, 1.0, len(packing.fields))

    def predict(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + x @ weights)

    table, meta = build_lut(predict, packing, chunk=3000)
    assert table.shape == packing.shape and table.dtype == np.uint16
    assert meta["address_bits"] == packing.address_bits <= 14
    assert meta["memory_bytes"] == (1 << packing.address_bits) * PT_BITS // 8

    address = np.arange(packing.n_addresses)
    features = packing.decode_codes(packing.unpack(address))
    expected = invpt_to_pt_code(predict(features))
    np.testing.assert_array_equal(table.reshape(-1), expected)
    invpt = pt_code_to_invpt(table)
    got = lookup(invpt, packing.edges_arrays(), features)
    np.testing.assert_array_equal(invpt_to_pt_code(got), expected)


def test_pt_words_saturate() -> None:
    codes = invpt_to_pt_code(np.array([1.0 / 0.1, 1.0 / 20.0, 1e-6, 0.0, -0.5]))
    np.testing.assert_array_equal(codes, [1, 40, 511, 511, 511])
    np.testing.assert_allclose(pt_code_to_invpt(np.array([40])), [1.0 / 20.0])
