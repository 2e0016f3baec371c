"""The LHCb components through the registry and through ROOT files."""

from __future__ import annotations

import numpy as np

from trigml.io.root import RootSource, RootSourceParams
from trigml.plugins import discover
from trigml_lhcb import hooks
from trigml_lhcb.simulation import generate, simulate_topo
from trigml_lhcb.topo import TopoAlgorithm


def test_components_register_under_their_names():
    registry = discover(entry_points=False, extra=[("lhcb", hooks)]).registry
    assert "lhcb.topo" in registry.names("algorithm")
    assert "lhcb.ghost" in registry.names("algorithm")
    source = registry.build("source", "lhcb.sim", {"n_events": 50, "kind": "minbias"})
    assert sum(len(b) for b in source.batches()) == 50
    algo = registry.build("algorithm", "lhcb.topo", {"body_counts": [2, 3]})
    assert algo.params.body_counts == [2, 3]


def test_root_file_reads_back_into_the_same_candidates(tmp_path):
    path = generate(tmp_path / "topo.root", n_events=400, seed=9, batch_size=150)
    source = RootSource(RootSourceParams(files=[str(path)]))
    algo = TopoAlgorithm()
    from_file = [
        algo.candidates(b.events) for b in source.batches(algo.event_schema().columns())
    ]
    features = np.concatenate([c.features for c in from_file])

    # The same stream in memory: three batches of the seed sequence (9, i).
    memory = [
        simulate_topo(n, np.random.default_rng([9, i]), first_event=150 * i)
        for i, n in enumerate((150, 150, 100))
    ]
    expected = np.concatenate([algo.candidates(ev).features for ev in memory])
    np.testing.assert_array_equal(features, expected)

    # The truth needed for training survives too.
    data = algo.training_set(source, seed=1)
    assert data.labels.any() and not data.labels.all()
