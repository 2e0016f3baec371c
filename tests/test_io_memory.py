"""Tests of the in-memory source and sink and the column helpers (trigml.io.memory)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from pydantic import ValidationError

from trigml.errors import DataError, RunFailure
from trigml.io import MemorySink, MemorySource, MemorySourceParams
from trigml.io.memory import events_from_columns, select_columns, zip_collection


@pytest.fixture
def events() -> ak.Array:
    return ak.Array(
        [
            {"nPV": 3, "tracks": [{"pt": 1.5, "eta": 0.1}, {"pt": 2.0, "eta": -1.0}]},
            {"nPV": 1, "tracks": []},
            {"nPV": 7, "tracks": [{"pt": 9.0, "eta": 2.0}]},
            {"nPV": 2, "tracks": []},
            {"nPV": 5, "tracks": [{"pt": 0.5, "eta": 0.0}]},
        ]
    )


def test_batches_cover_every_event_in_order(events: ak.Array) -> None:
    source = MemorySource(events, batch_size=2)

    batches = list(source.batches())

    assert [len(b) for b in batches] == [2, 2, 1]
    assert [b.start for b in batches] == [0, 2, 4]
    assert [b.chunk for b in batches] == [0, 1, 2]
    assert batches[1].origin == "memory[2:4]"
    assert ak.to_list(ak.concatenate([b.events for b in batches])) == ak.to_list(events)
    assert source.num_entries() == 5


def test_batches_keep_only_requested_columns(events: ak.Array) -> None:
    batch = next(MemorySource(events, batch_size=10).batches(["tracks.pt"]))

    assert batch.events.fields == ["tracks"]
    assert ak.fields(batch.events["tracks"]) == ["pt"]
    assert batch.events["tracks"]["pt"].to_list() == [[1.5, 2.0], [], [9.0], [], [0.5]]


def test_no_columns_keeps_the_event_count(events: ak.Array) -> None:
    batches = list(MemorySource(events, batch_size=3).batches([]))

    assert [len(b) for b in batches] == [3, 2]
    assert batches[0].events.fields == []


def test_missing_column_names_the_closest(events: ak.Array) -> None:
    source = MemorySource(events, origin="toy")

    with pytest.raises(DataError, match=r"toy: no field 'tracks.phi'; closest: "):
        list(source.batches(["tracks.phi"]))
    with pytest.raises(DataError, match=r"no field 'npv'.*closest: nPV"):
        list(source.batches(["npv"]))


def test_source_from_dotted_columns() -> None:
    columns = {
        "nPV": np.array([1, 2, 3]),
        "jets.pt": ak.Array([[10.0], [], [20.0, 30.0]]),
        "jets.eta": ak.Array([[0.5], [], [1.0, -1.0]]),
    }

    source = MemorySource(columns, batch_size=2)
    events = ak.concatenate([b.events for b in source.batches()])

    assert ak.to_list(events) == [
        {"nPV": 1, "jets": [{"pt": 10.0, "eta": 0.5}]},
        {"nPV": 2, "jets": []},
        {"nPV": 3, "jets": [{"pt": 20.0, "eta": 1.0}, {"pt": 30.0, "eta": -1.0}]},
    ]


def test_source_refuses_bad_input() -> None:
    with pytest.raises(DataError, match="batch_size must be positive"):
        MemorySource({"x": [1.0]}, batch_size=0)
    with pytest.raises(DataError, match="records with named fields"):
        MemorySource(ak.Array([1.0, 2.0]))
    with pytest.raises(ValidationError):
        MemorySourceParams(batch_size=0)
    assert MemorySourceParams(batch_size=7).batch_size == 7


def test_describe_is_one_line(events: ak.Array) -> None:
    text = MemorySource(events, batch_size=2).describe()

    assert "\n" not in text
    assert "5 events" in text


def test_zip_collection_shares_buffers_when_offsets_agree() -> None:
    pt = ak.Array([[1.0, 2.0], [], [3.0]])
    eta = ak.Array([[0.1, 0.2], [], [0.3]])
    offsets = ak.to_layout(pt).offsets
    eta = ak.Array(ak.contents.ListOffsetArray(offsets, ak.to_layout(eta).content))

    zipped = zip_collection({"pt": pt, "eta": eta}, name="jets")

    layout = ak.to_layout(zipped)
    assert layout.offsets is offsets
    assert np.shares_memory(
        layout.content.content("pt").data, ak.to_layout(pt).content.data
    )
    assert ak.to_list(zipped) == [
        [{"pt": 1.0, "eta": 0.1}, {"pt": 2.0, "eta": 0.2}],
        [],
        [{"pt": 3.0, "eta": 0.3}],
    ]


def test_zip_collection_of_unequal_lists_names_the_event() -> None:
    pt = ak.Array([[1.0], [2.0, 3.0]])
    q = ak.Array([[1], [1]])

    with pytest.raises(DataError, match=r"f\.root: .*'jets'.*event 1 has 2 'pt'"):
        zip_collection({"pt": pt, "q": q}, name="jets", origin="f.root")


def test_zip_collection_refuses_flat_field() -> None:
    with pytest.raises(DataError, match=r"'jets.m' \(branch 'mass'\).*one value"):
        zip_collection(
            {"pt": ak.Array([[1.0], []]), "m": ak.Array([1.0, 2.0])},
            name="jets",
            sources={"m": "mass"},
        )


def test_events_from_columns_checks_lengths() -> None:
    with pytest.raises(DataError, match=r"different numbers of events \(a: 2, b: 3\)"):
        events_from_columns({"a": [1, 2], "b": [1, 2, 3]})
    with pytest.raises(DataError, match="'jets' is given whole and by field"):
        events_from_columns({"jets": [[{"pt": 1.0}]], "jets.pt": [[1.0]]})


def test_select_columns_none_returns_everything(events: ak.Array) -> None:
    assert select_columns(events, None) is events


def test_sink_collects_tables(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.open(tmp_path, {"fired": np.dtype(bool), "score": np.dtype(np.float32)})

    sink.write({"fired": np.array([1, 0], bool), "score": np.array([0.9, 0.1])})
    sink.write({"fired": np.array([1], bool), "score": np.array([0.7])})

    assert sink.close() == []
    assert sink.table["fired"].tolist() == [True, False, True]
    assert sink.table["score"].dtype == np.float32
    np.testing.assert_allclose(sink.table["score"], [0.9, 0.1, 0.7], rtol=1e-6)
    assert not list(tmp_path.iterdir())


def test_sink_without_rows_has_typed_empty_columns(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.open(tmp_path, {"event": np.dtype(np.int64)})
    sink.close()

    assert sink.table["event"].dtype == np.int64
    assert len(sink.table["event"]) == 0


def test_sink_refuses_bad_tables(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.open(tmp_path, {"a": np.dtype(float), "b": np.dtype(float)})

    with pytest.raises(RunFailure, match=r"missing: \['b'\]"):
        sink.write({"a": np.zeros(2)})
    with pytest.raises(RunFailure, match="different lengths"):
        sink.write({"a": np.zeros(2), "b": np.zeros(3)})
    sink.close()
    with pytest.raises(RunFailure, match="write after close"):
        sink.write({"a": np.zeros(1), "b": np.zeros(1)})
