"""Faults of long runs: a worker that dies, a corrupt chunk, a file that disappears.

Each is either retried or reported by chunk; a run never ends successfully with
events missing.
"""

from __future__ import annotations

import os
import shutil
import struct
import uuid
from pathlib import Path

import numpy as np
import pytest
import uproot

from trigml.artifact import load_artifact
from trigml.components import Batch, ChunkRef, Source
from trigml.cuts import CutsAlgorithm, CutsAlgorithmParams, CutsBackend
from trigml.dask_executor import DaskExecutor, DaskExecutorParams
from trigml.errors import DataError, ModelError, RunFailure
from trigml.io.memory import MemorySink
from trigml.io.root import RootSource, RootSourceParams
from trigml.journal import RunJournal
from trigml.runtime import Executor, ExecutorParams, Line, LocalExecutor, Menu, run_menu
from trigml.testing import tiny_root_file
from trigml.toy import ToySource, ToySourceParams, toy_events

distributed = pytest.importorskip("distributed")

FEATURES = ["x0", "x1", "x2"]


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded workers; a worker death reaches the client at once."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"allowed_failures": 0, "dashboard_address": "127.0.0.1:0"},
    ) as local:
        yield local


def make_executor(kind: str, cluster, **params) -> Executor:
    if kind == "local":
        return LocalExecutor(ExecutorParams(**params))
    address = cluster.scheduler_address
    return DaskExecutor(DaskExecutorParams(address=address, **params))


def faulty_toy(marks: Path, chunk: int, times: int = 1, die: bool = False) -> Source:
    """Toy events whose chunk ``chunk`` fails ``times`` times, or kills its worker.

    Attempts are counted with files in ``marks``, across worker processes. The class
    is made inside this function so that it travels to workers by value: this test
    module cannot be imported there under its own name.
    """

    class FaultyToy(ToySource):
        def read_chunk(self, ref: ChunkRef, columns=None) -> Batch:
            if ref.index == chunk:
                earlier = len(list(marks.glob(f"attempt-{ref.index}-*")))
                (marks / f"attempt-{ref.index}-{uuid.uuid4().hex}").touch()
                if earlier < times:
                    if die:
                        os._exit(1)  # the worker process dies in mid-chunk
                    raise DataError(f"{ref.origin}: injected failure {earlier + 1}")
            return super().read_chunk(ref, columns)

    return FaultyToy(ToySourceParams(n_events=4_000, batch_size=500, seed=8))


def toy_menu(model: Path, source=None, features=FEATURES) -> Menu:
    line = Line(
        name="cuts",
        algorithm=CutsAlgorithm(CutsAlgorithmParams(features=features)),
        artifact=load_artifact(model),
        backend=CutsBackend(),
        threshold=0.0,
    )
    source = source or ToySource(
        ToySourceParams(n_events=4_000, batch_size=500, seed=8)
    )
    return Menu(
        source=source, lines=[line], sinks=[MemorySink()], signal_field="is_signal"
    )


def table(menu: Menu) -> dict[str, np.ndarray]:
    return menu.sinks[0].table


@pytest.fixture(scope="module")
def clean(cuts_model, tmp_path_factory) -> dict[str, np.ndarray]:
    """Decisions of the toy menu run without faults."""
    menu = toy_menu(cuts_model)
    run_menu(menu, LocalExecutor(), tmp_path_factory.mktemp("clean"))
    return table(menu)


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_worker_killed_in_mid_chunk_is_retried(cuts_model, cluster, clean, tmp_path):
    source = faulty_toy(tmp_path, chunk=3, die=True)
    menu = toy_menu(cuts_model, source)
    report, _ = run_menu(menu, make_executor("dask", cluster), tmp_path / "out")

    # a task queued on the same worker may die with it and be retried too
    retried = {chunk.chunk: chunk for chunk in report.retried_chunks}
    assert (retried[3].attempts, retried[3].outcome) == (2, "retried")
    for chunk in retried.values():
        assert "the worker running it died (KilledWorker" in chunk.reasons[0]
    assert report.n_input == report.n_decided == 4_000 and not report.failed_chunks
    assert_same(table(menu), clean)


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_a_failing_chunk_is_retried(kind, cuts_model, cluster, clean, tmp_path):
    menu = toy_menu(cuts_model, faulty_toy(tmp_path, chunk=2, times=2))
    executor = make_executor(kind, cluster, retries=2)
    report, _ = run_menu(menu, executor, tmp_path / "out")

    (retried,) = report.retried_chunks
    assert (retried.chunk, retried.attempts, retried.origin) == (2, 3, "toy[1000:1500]")
    assert retried.reasons == [
        "DataError: toy[1000:1500]: injected failure 1",
        "DataError: toy[1000:1500]: injected failure 2",
    ]
    assert_same(table(menu), clean)


def corrupt_basket(path: Path, branch: str, basket: int) -> None:
    """Overwrite the compression header of one basket of ``branch``."""
    with uproot.open(path) as rfile:
        seek = int(rfile["Events"][branch].member("fBasketSeek")[basket])
    data = bytearray(path.read_bytes())
    nbytes, _, objlen, _, keylen = struct.unpack(">ihiih", data[seek : seek + 16])
    assert nbytes - keylen < objlen, "the basket must be compressed"
    data[seek + keylen : seek + keylen + 2] = b"??"
    path.write_bytes(bytes(data))


@pytest.fixture
def corrupt_file(tmp_path: Path) -> Path:
    """4,000 toy events in baskets of 500; the basket of events 1500-2000 is bad."""
    path = tiny_root_file(
        tmp_path / "bad.root", [toy_events(500, seed=20 + i) for i in range(8)]
    )
    corrupt_basket(path, "is_signal", 3)
    return path


def root_menu(model: Path, path: Path) -> Menu:
    source = RootSource(RootSourceParams(files=[str(path)], step_size=500))
    return toy_menu(model, source)


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_a_corrupt_chunk_fails_the_run(
    kind, cuts_model, cluster, corrupt_file, tmp_path
):
    menu = root_menu(cuts_model, corrupt_file)
    journal = RunJournal(tmp_path / "out")
    with pytest.raises(RunFailure) as failure:
        run_menu(menu, make_executor(kind, cluster), tmp_path / "out", journal=journal)

    message = str(failure.value)
    assert "1 chunk(s) failed on every attempt, so 500 events" in message
    assert "chunk 3 (" in message and "Events[1500:2000]" in message
    assert "unrecognized compression algorithm" in message
    assert "--resume" in message
    # the seven good chunks are kept for a resumed run
    assert len(list((tmp_path / "out" / "parts").glob("chunk-*.npz"))) == 7


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_a_corrupt_chunk_is_rejected_when_allowed(
    kind, cuts_model, cluster, corrupt_file, tmp_path
):
    menu = root_menu(cuts_model, corrupt_file)
    executor = make_executor(kind, cluster, retries=1, on_failure="reject")
    report, _ = run_menu(menu, executor, tmp_path / "out")

    (failed,) = report.failed_chunks
    assert (failed.chunk, failed.n_events, failed.attempts) == (3, 500, 2)
    assert failed.outcome == "rejected" and "Events[1500:2000]" in failed.origin
    (reason,) = report.rejected
    assert reason.startswith("chunk failed: DataError:")
    assert report.rejected[reason] == 500 and report.n_decided == 3_500
    assert report.n_input == report.n_decided + sum(report.rejected.values())

    rows = table(menu)
    np.testing.assert_array_equal(rows["event"], np.arange(4_000))
    bad = (rows["event"] >= 1_500) & (rows["event"] < 2_000)
    assert (rows["status"][bad] > 0).all() and (rows["status"][~bad] == 0).all()
    assert not rows["cuts"][bad].any() and np.isneginf(rows["cuts_score"][bad]).all()


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_a_file_that_disappears_mid_run(kind, cuts_model, cluster, tmp_path):
    """The second file vanishes after the first chunk; restored, the run resumes."""
    events = toy_events(3_000, seed=30)
    first = tiny_root_file(tmp_path / "a.root", events[:1_000])
    second = tiny_root_file(tmp_path / "b.root", events[1_000:])
    source = RootSource(
        RootSourceParams(files=[str(first), str(second)], step_size=500)
    )
    out = tmp_path / "out"
    saved = tmp_path / "saved.root"

    def vanish(n: int) -> None:
        if second.exists():
            shutil.move(second, saved)

    menu = toy_menu(cuts_model, source)
    # one chunk at a time, so that the file goes after the first chunk exactly
    one_by_one = {"max_in_flight": 1} if kind == "dask" else {}
    executor = make_executor(kind, cluster, retries=1, **one_by_one)
    with pytest.raises(RunFailure) as failure:
        run_menu(menu, executor, out, progress=vanish, journal=RunJournal(out))
    message = str(failure.value)
    assert "4 chunk(s) failed on every attempt, so 2000 events" in message
    assert "the file has disappeared since the run was planned" in message

    shutil.move(saved, second)
    resumed = toy_menu(cuts_model, source)
    report, _ = run_menu(resumed, executor, out, journal=RunJournal(out, resume=True))
    assert report.resumed_chunks == 2 and report.n_decided == 3_000

    whole = toy_menu(cuts_model, source)
    run_menu(whole, LocalExecutor(), tmp_path / "whole")
    # the resumed sink saw every chunk: the two kept ones and the four redone
    assert_same(table(resumed), table(whole))


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_an_error_of_the_whole_run_is_not_retried(kind, cuts_model, cluster, tmp_path):
    """A model that does not fit the algorithm fails at once, on the first chunk."""
    menu = toy_menu(cuts_model, features=["x0", "x1"])
    with pytest.raises(ModelError, match="expects features"):
        run_menu(menu, make_executor(kind, cluster), tmp_path / "out")
