"""Tests of the ROOT source, sink and writers (trigml.io.root) on tiny files."""

from __future__ import annotations

import logging
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from pydantic import ValidationError

from trigml.errors import DataError, RunFailure
from trigml.io import (
    RootSink,
    RootSinkParams,
    RootSource,
    RootSourceParams,
    write_events,
    write_rntuple,
)


def _events(n: int, seed: int = 0) -> ak.Array:
    """Events with a flat int, a flat float, a collection and a list of numbers."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, n)
    counts[:3] = [0, 2, 0]  # empty collections are part of every sample
    total = int(counts.sum())
    jets = ak.zip(
        {
            "pt": rng.exponential(30.0, total).astype(np.float32),
            "eta": rng.uniform(-2.5, 2.5, total).astype(np.float32),
        }
    )
    hits = rng.normal(size=int(counts.sum() * 2)).astype(np.float64)
    return ak.zip(
        {
            "nPV": rng.integers(1, 60, n).astype(np.int32),
            "met": rng.exponential(20.0, n).astype(np.float32),
            "jets": ak.unflatten(jets, counts),
            "hits": ak.unflatten(hits, counts * 2),
        },
        depth_limit=1,
    )


def _source(files: list[str | Path], **params: object) -> RootSource:
    return RootSource(RootSourceParams(files=[str(f) for f in files], **params))


def _read_all(source: RootSource, columns: list[str] | None = None) -> ak.Array:
    return ak.concatenate([b.events for b in source.batches(columns)])


@pytest.fixture
def sample() -> ak.Array:
    return _events(57)


@pytest.fixture
def ttree_file(tmp_path: Path, sample: ak.Array) -> Path:
    path = tmp_path / "events.root"
    write_events(path, [sample[:20], sample[20:21], sample[21:]])
    return path


# --- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
def test_ttree_round_trip(tmp_path: Path, sample: ak.Array, compression: str) -> None:
    path = tmp_path / "events.root"
    n = write_events(path, [sample[:30], sample[30:]], compression=compression)

    back = _read_all(_source([path]))

    assert n == len(sample)
    assert ak.to_list(back) == ak.to_list(sample)
    assert str(ak.type(back["jets"])) == str(ak.type(sample["jets"]))


def test_ttree_branches_follow_the_counter_convention(ttree_file: Path) -> None:
    tree = uproot.open(ttree_file)["Events"]

    assert set(tree.keys()) == {
        "nPV",
        "met",
        "njets",
        "jets_pt",
        "jets_eta",
        "nhits",
        "hits",
    }


@pytest.mark.parametrize("layout", ["flat", "records"])
def test_rntuple_round_trip(tmp_path: Path, sample: ak.Array, layout: str) -> None:
    path = tmp_path / "events.root"
    n = write_rntuple(path, [sample[:10], sample[10:]], layout=layout)  # type: ignore[arg-type]
    assert "RNTuple" in uproot.open(path).classnames()["Events;1"]

    back = _read_all(_source([path]))
    picked = _read_all(_source([path]), ["jets.pt", "nPV"])

    assert n == len(sample)
    assert ak.to_list(back) == ak.to_list(sample)
    assert ak.to_list(picked) == ak.to_list(
        ak.zip({"jets": sample["jets"][["pt"]], "nPV": sample["nPV"]}, depth_limit=1)
    )


def test_flat_jagged_branches_and_uproot_records_read_alike(
    tmp_path: Path, sample: ak.Array
) -> None:
    # NanoAOD style: a counter and independent jagged fields, no record anywhere.
    flat = tmp_path / "flat.root"
    with uproot.recreate(flat) as rfile:
        rfile["Events"] = {
            "nJet": ak.to_numpy(ak.num(sample["jets"])).astype(np.int32),
            "Jet_pt": sample["jets"]["pt"],
            "Jet_eta": sample["jets"]["eta"],
        }
    records = tmp_path / "records.root"
    write_events(records, ak.zip({"Jet": sample["jets"]}, depth_limit=1))
    columns = ["jets.pt", "jets.eta"]

    a = _read_all(_source([flat], aliases={"jets": "Jet"}), columns)
    b = _read_all(_source([records], aliases={"jets": "Jet"}), columns)

    assert ak.to_list(a) == ak.to_list(b)
    assert ak.to_list(a["jets"]) == ak.to_list(sample["jets"])


# --- batching ------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 7, 57, 1000, "1 kB", "50 MB"])
def test_step_sizes_give_the_same_events(
    ttree_file: Path, sample: ak.Array, step: str | int
) -> None:
    batches = list(_source([ttree_file], step_size=step).batches())

    starts = [b.start for b in batches]
    ends = np.cumsum([len(b) for b in batches])

    assert ak.to_list(ak.concatenate([b.events for b in batches])) == ak.to_list(sample)
    assert starts == [0, *ends[:-1].tolist()]
    assert [b.chunk for b in batches] == list(range(len(batches)))
    assert all(str(ttree_file) in b.origin for b in batches)
    if step == 7:
        assert [len(b) for b in batches] == [7] * 8 + [1]


@pytest.mark.parametrize("step", [5, "2 kB"])
def test_rntuple_step_sizes_give_the_same_events(
    tmp_path: Path, sample: ak.Array, step: str | int
) -> None:
    path = tmp_path / "events.root"
    write_rntuple(path, sample)

    batches = list(_source([path], step_size=step, entry_stop=40).batches())

    assert len(batches) > 1
    assert [b.start for b in batches] == np.cumsum([0] + [len(b) for b in batches])[
        :-1
    ].tolist()
    assert ak.to_list(ak.concatenate([b.events for b in batches])) == ak.to_list(
        sample[:40]
    )


def test_memory_step_size_makes_several_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.root"
    write_events(path, ak.zip({"x": np.arange(20_000, dtype=np.float64)}))

    batches = list(_source([path], step_size="40 kB").batches(["x"]))

    assert len(batches) > 2
    assert np.array_equal(
        np.concatenate([b.events["x"].to_numpy() for b in batches]), np.arange(20_000)
    )


def test_no_columns_still_counts_events(ttree_file: Path) -> None:
    batches = list(_source([ttree_file], step_size=25).batches([]))

    assert [len(b) for b in batches] == [25, 25, 7]
    assert [b.start for b in batches] == [0, 25, 50]
    assert all(b.events.fields == [] for b in batches)


# --- what is read --------------------------------------------------------------------


def test_only_requested_branches_are_read(tmp_path: Path) -> None:
    # A string branch cannot be read as numbers: asking for other columns must not
    # touch it, asking for everything must fail on it.
    path = tmp_path / "mixed.root"
    with uproot.recreate(path) as rfile:
        tree = rfile.mktree("Events", {"x": "float32", "label": "string"})
        tree.extend(
            {"x": np.arange(4, dtype=np.float32), "label": ["a", "b", "c", "d"]}
        )
    source = _source([path])

    events = _read_all(source, ["x"])

    assert events.fields == ["x"]
    assert events["x"].to_list() == [0, 1, 2, 3]
    with pytest.raises(DataError, match=r"mixed\.root.*'label'.*cannot be read as"):
        _read_all(source)


def test_reading_uses_only_the_needed_branch_names(
    ttree_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uproot.behaviors.TTree import TTree

    seen: list[str] = []
    original = TTree.iterate

    def spy(self, *args, filter_name, **kwargs):  # type: ignore[no-untyped-def]
        seen.extend(k for k in self.keys() if filter_name(k))
        return original(self, *args, filter_name=filter_name, **kwargs)

    monkeypatch.setattr(TTree, "iterate", spy)

    _read_all(_source([ttree_file]), ["met", "jets.eta"])

    assert sorted(seen) == ["jets_eta", "met"]


def test_string_field_in_rntuple_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "strings.root"
    with uproot.recreate(path) as rfile:
        rfile["Events"] = {"name": ak.Array(["a", "bb"]), "x": np.array([1.0, 2.0])}

    assert _read_all(_source([path]), ["x"])["x"].to_list() == [1.0, 2.0]
    with pytest.raises(DataError, match=r"strings\.root.*'name'.*cannot be read"):
        _read_all(_source([path]), ["name"])


# --- aliases -------------------------------------------------------------------------


def test_aliases_map_schema_names_onto_branches(
    tmp_path: Path, sample: ak.Array
) -> None:
    path = tmp_path / "nano.root"
    nano = ak.zip(
        {
            "PV_npvs": sample["nPV"],
            "Jet": sample["jets"],
            "trk_pt": sample["hits"],
        },
        depth_limit=1,
    )
    write_events(path, nano)
    aliases = {"nPV": "PV_npvs", "jets": "Jet", "hits": "trk_pt"}

    events = _read_all(_source([path], aliases=aliases), ["nPV", "jets.pt", "hits"])
    everything = _read_all(_source([path], aliases=aliases))

    assert events.fields == ["nPV", "jets", "hits"]
    assert events["nPV"].to_list() == sample["nPV"].to_list()
    assert events["jets"]["pt"].to_list() == sample["jets"]["pt"].to_list()
    assert events["hits"].to_list() == sample["hits"].to_list()
    assert ak.to_list(everything) == ak.to_list(sample[["nPV", "jets", "hits"]])


def test_field_alias_wins_over_collection_alias(
    tmp_path: Path, sample: ak.Array
) -> None:
    path = tmp_path / "nano.root"
    other = ak.zip({"pt": sample["jets"]["pt"] * 2, "eta": sample["jets"]["eta"]})
    write_events(path, ak.zip({"Jet": sample["jets"], "FatJet": other}, depth_limit=1))
    aliases = {"jets": "Jet", "jets.pt": "FatJet_pt"}

    events = _read_all(_source([path], aliases=aliases), ["jets.pt", "jets.eta"])

    assert events["jets"]["pt"].to_list() == other["pt"].to_list()
    assert events["jets"]["eta"].to_list() == sample["jets"]["eta"].to_list()


def test_alias_onto_collections_of_different_counters_fails(
    tmp_path: Path, sample: ak.Array
) -> None:
    path = tmp_path / "nano.root"
    write_events(path, sample)
    aliases = {"jets.q": "hits"}

    with pytest.raises(DataError, match=r"nano\.root.*'jets'.*same number of entries"):
        _read_all(_source([path], aliases=aliases), ["jets.pt", "jets.q"])


def test_flat_branch_as_collection_field_fails(ttree_file: Path) -> None:
    with pytest.raises(DataError, match=r"'jets.m' \(branch 'met'\).*one value"):
        _read_all(_source([ttree_file], aliases={"jets.m": "met"}), ["jets.m"])


def test_whole_collection_by_name(ttree_file: Path, sample: ak.Array) -> None:
    events = _read_all(_source([ttree_file]), ["jets", "jets.pt"])

    assert ak.to_list(events["jets"]) == ak.to_list(sample["jets"])


# --- several files -------------------------------------------------------------------


def test_files_are_read_in_order_with_global_starts(
    tmp_path: Path, sample: ak.Array
) -> None:
    folder = tmp_path / "data"
    parts = {"b_1.root": sample[:10], "b_0.root": sample[10:30], "a.root": sample[30:]}
    for name, part in parts.items():
        write_events(folder / name, part)

    # Explicit order first, then a glob expanded in sorted order.
    source = _source(["data/a.root", "data/b_*.root"], base_dir=str(tmp_path))
    batches = list(source.batches())

    expected = ak.concatenate([sample[30:], sample[10:30], sample[:10]])
    assert ak.to_list(ak.concatenate([b.events for b in batches])) == ak.to_list(
        expected
    )
    assert [b.start for b in batches] == [0, 27, 47]
    assert [Path(b.origin.split(":")[0]).name for b in batches] == [
        "a.root",
        "b_0.root",
        "b_1.root",
    ]
    assert source.num_entries() == len(sample)


def test_entry_stop_counts_over_all_files(tmp_path: Path, sample: ak.Array) -> None:
    write_events(tmp_path / "a.root", sample[:20])
    write_events(tmp_path / "b.root", sample[20:])
    source = _source(["a.root", "b.root"], base_dir=str(tmp_path), entry_stop=25)

    events = _read_all(source)

    assert ak.to_list(events) == ak.to_list(sample[:25])
    assert source.num_entries() == 25


def test_file_listed_twice_is_read_once(
    tmp_path: Path, sample: ak.Array, caplog: pytest.LogCaptureFixture
) -> None:
    write_events(tmp_path / "a.root", sample)

    with caplog.at_level(logging.WARNING, logger="trigml.io.root"):
        source = _source(["a.root", "*.root"], base_dir=str(tmp_path))
        events = _read_all(source)

    assert len(events) == len(sample)
    assert "listed twice" in caplog.text


def test_file_without_events_is_skipped(
    tmp_path: Path, sample: ak.Array, caplog: pytest.LogCaptureFixture
) -> None:
    write_events(tmp_path / "a.root", sample[:5])
    with uproot.recreate(tmp_path / "b.root") as rfile:
        rfile.mktree("Events", {"nPV": "int32", "met": "float32"})
    write_events(tmp_path / "c.root", sample[5:9])
    source = _source(["a.root", "b.root", "c.root"], base_dir=str(tmp_path))

    with caplog.at_level(logging.WARNING, logger="trigml.io.root"):
        batches = list(source.batches(["nPV"]))
        alone = list(_source([tmp_path / "b.root"]).batches(["nPV"]))

    assert [b.start for b in batches] == [0, 5]
    assert alone == []
    assert "b.root:Events holds no events" in caplog.text


# --- errors --------------------------------------------------------------------------


def test_glob_matching_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no file matches 'nothing/\*\.root'"):
        _read_all(_source(["nothing/*.root"], base_dir=str(tmp_path)))


def test_missing_file_names_closest(tmp_path: Path, sample: ak.Array) -> None:
    write_events(tmp_path / "events.root", sample)

    with pytest.raises(DataError, match=r"event\.root: no such file.*events\.root"):
        _read_all(_source(["event.root"], base_dir=str(tmp_path)))


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.root").write_bytes(b"")

    with pytest.raises(DataError, match=r"empty\.root: the file is empty \(0 bytes\)"):
        _read_all(_source([tmp_path / "empty.root"]))


def test_truncated_file(ttree_file: Path) -> None:
    data = ttree_file.read_bytes()
    cut = ttree_file.with_name("cut.root")
    cut.write_bytes(data[: len(data) // 2])

    with pytest.raises(DataError, match=r"cut\.root: the file is truncated"):
        _read_all(_source([cut]))


def test_damaged_basket(tmp_path: Path) -> None:
    path = tmp_path / "damaged.root"
    write_events(path, ak.zip({"x": np.arange(100, dtype=np.float32)}))
    seek = int(uproot.open(path)["Events"]["x"].member("fBasketSeek")[0])
    data = bytearray(path.read_bytes())
    data[seek : seek + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))

    with pytest.raises(DataError, match=r"damaged\.root:Events: reading entries"):
        _read_all(_source([path]))


def test_not_a_root_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.root"
    path.write_text("run 1234: good\n")

    with pytest.raises(DataError, match=r"notes\.root: not a ROOT file"):
        _read_all(_source([path]))


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()

    with pytest.raises(DataError, match=r"folder: is a directory"):
        _read_all(_source(["folder"], base_dir=str(tmp_path)))


def test_missing_tree_suggests_closest(ttree_file: Path) -> None:
    with pytest.raises(DataError, match=r"events\.root: no tree 'Event'") as info:
        _read_all(_source([ttree_file], tree="Event"))

    assert "Events (TTree)" in str(info.value)
    assert "Did you mean 'Events'?" in str(info.value)


def test_tree_name_of_a_histogram(tmp_path: Path) -> None:
    path = tmp_path / "hists.root"
    with uproot.recreate(path) as rfile:
        rfile["h"] = np.histogram(np.arange(10.0))

    with pytest.raises(DataError, match=r"hists\.root: 'h' is a TH1D, not a TTree"):
        _read_all(_source([path], tree="h"))


def test_missing_branch_names_field_branch_and_closest(ttree_file: Path) -> None:
    with pytest.raises(DataError) as info:
        _read_all(_source([ttree_file]), ["jet.pt"])

    text = str(info.value)
    assert "events.root:Events: no branch 'jet_pt'" in text
    assert "schema field 'jet.pt'" in text
    assert "closest: jets_pt" in text
    assert "collections in the file: jets" in text
    assert "aliases" in text


def test_missing_aliased_branch(ttree_file: Path) -> None:
    with pytest.raises(DataError, match=r"no branch 'PV_npvs'.*'nPV'"):
        _read_all(_source([ttree_file], aliases={"nPV": "PV_npvs"}), ["nPV"])


def test_error_in_second_file_names_it(tmp_path: Path, sample: ak.Array) -> None:
    write_events(tmp_path / "a.root", sample)
    write_events(tmp_path / "b.root", sample[["nPV"]])
    source = _source(["a.root", "b.root"], base_dir=str(tmp_path))

    with pytest.raises(DataError, match=r"b\.root:Events: no branch 'met'"):
        _read_all(source, ["met"])


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValidationError, match="step_size"):
        RootSourceParams(files=["a.root"], step_size="fifty")
    with pytest.raises(ValidationError, match="step_size"):
        RootSourceParams(files=["a.root"], step_size=0)
    with pytest.raises(ValidationError):
        RootSourceParams(files=[])
    with pytest.raises(ValidationError):
        RootSourceParams(files=["a.root"], colour="red")  # type: ignore[call-arg]
    assert (
        RootSourceParams(files=["a.root"], step_size="1.5 GiB").step_size == "1.5 GiB"
    )


def test_describe_is_one_line() -> None:
    source = _source(["a.root", "b/*.root"], aliases={"jets": "Jet"}, entry_stop=10)

    text = source.describe()

    assert "\n" not in text
    assert "a.root, b/*.root" in text
    assert "tree 'Events'" in text


# --- writers and the sink ------------------------------------------------------------


def test_write_events_refuses_missing_values(tmp_path: Path) -> None:
    events = ak.Array([{"x": 1.0}, {"x": None}])

    with pytest.raises(DataError, match=r"bad\.root: field 'x' has type \?float64"):
        write_events(tmp_path / "bad.root", events)


def test_write_events_refuses_branch_name_clash(tmp_path: Path) -> None:
    events = ak.Array([{"jets": [{"pt": 1.0}], "jets_pt": 2.0}])

    with pytest.raises(DataError, match=r"'jets_pt' needed by 'jets'"):
        write_events(tmp_path / "clash.root", events)


@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
def test_sink_writes_readable_decisions(tmp_path: Path, compression: str) -> None:
    sink = RootSink(RootSinkParams(compression=compression))  # type: ignore[arg-type]
    columns = {
        "event": np.dtype(np.int64),
        "topo": np.dtype(bool),
        "score": np.dtype(np.float32),
    }
    tables = [
        {"event": np.arange(5), "topo": np.arange(5) % 2 == 0, "score": np.ones(5)},
        {"event": np.arange(5, 8), "topo": np.ones(3, bool), "score": np.zeros(3)},
    ]

    sink.open(tmp_path / "out", columns)
    for table in tables:
        sink.write(table)
    paths = sink.close()

    assert paths == [tmp_path / "out" / "decisions.root"]
    tree = uproot.open(paths[0])["decisions"]
    back = tree.arrays(library="np")
    assert back["event"].tolist() == list(range(8))
    assert back["topo"].dtype == np.dtype(bool)
    assert back["topo"].tolist() == [True, False, True, False, True, True, True, True]
    assert back["score"].dtype == np.float32
    assert tree.num_entries == 8


def test_sink_refuses_a_table_that_does_not_match(tmp_path: Path) -> None:
    sink = RootSink(RootSinkParams())
    sink.open(tmp_path, {"a": np.dtype(np.float32)})

    with pytest.raises(RunFailure, match=r"missing: \['a'\], unexpected: \['b'\]"):
        sink.write({"b": np.zeros(3)})
    sink.close()


def test_sink_refuses_text_columns(tmp_path: Path) -> None:
    with pytest.raises(RunFailure, match="column 'label' has dtype <U3"):
        RootSink(RootSinkParams()).open(tmp_path, {"label": np.dtype("<U3")})
