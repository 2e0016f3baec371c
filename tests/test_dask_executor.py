"""The dask executor gives the local executor's decisions, on a two-worker cluster."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from trigml.artifact import load_artifact
from trigml.cli import main
from trigml.cuts import CutsAlgorithm, CutsAlgorithmParams, CutsBackend
from trigml.dask_executor import DaskExecutor, DaskExecutorParams
from trigml.errors import RunFailure, UsageError
from trigml.io.memory import MemorySink, MemorySource
from trigml.io.root import RootSource, RootSourceParams, write_events, write_rntuple
from trigml.runtime import Line, LocalExecutor, Menu, run_menu
from trigml.testing import tiny_root_file
from trigml.toy import ToySource, ToySourceParams, toy_events

distributed = pytest.importorskip("distributed")

MENU = """\
source:
  type: root
  files: [a.root, b.root]
  step_size: 500
lines:
  - name: toy_cuts
    model: model
    backend: cpu.cuts
    working_point: eff70
  - name: loose
    model: model
    backend: cpu.cuts
    working_point: eff90
input_rate_hz: 1.0e6
signal_field: is_signal
sinks: [root]
plots: false
"""


@pytest.fixture(autouse=True)
def _builtins_only(monkeypatch):
    monkeypatch.setenv("TRIGML_PLUGINS", "none")


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes on 127.0.0.1, shared by the module."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # the scheduler's HTTP endpoint on a free port: clusters of parallel tests
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as local:
        yield local


@pytest.fixture
def run_dir(tmp_path: Path, cuts_model: Path) -> Path:
    """A menu over 6,000 toy events in two ROOT files, 12 chunks of at most 500."""
    shutil.copytree(cuts_model, tmp_path / "model")
    events = toy_events(6_000, seed=11)
    tiny_root_file(tmp_path / "a.root", events[:3_500])
    tiny_root_file(tmp_path / "b.root", events[3_500:])
    (tmp_path / "menu.yaml").write_text(MENU)
    return tmp_path


def decisions(path: Path) -> dict[str, np.ndarray]:
    with uproot.open(path) as rfile:
        return rfile["decisions"].arrays(library="np")


def assert_same_decisions(a: Path, b: Path) -> None:
    left, right = decisions(a / "decisions.root"), decisions(b / "decisions.root")
    assert list(left) == list(right)
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)


def counts(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    keep = ("n_input", "n_decided", "n_accepted_any", "rejected", "n_batches")
    lines = [(x["name"], x["n_accepted"], x["n_candidates"]) for x in report["lines"]]
    return {**{k: report[k] for k in keep}, "lines": lines}


@pytest.mark.parametrize("step", [700, "20 kB"])
@pytest.mark.parametrize("layout", ["ttree", "rntuple"])
@pytest.mark.parametrize("columns", [["x0", "objects.pt"], None, []])
def test_chunks_read_the_batches(tmp_path, step, layout, columns):
    """A source's chunks, read one by one, are its batches (bounds and events)."""
    if layout == "ttree":
        write_events(tmp_path / "a.root", [toy_events(2_500, 1), toy_events(1_500, 2)])
    else:
        write_rntuple(tmp_path / "a.root", toy_events(4_000, 1), layout="flat")
    write_events(tmp_path / "b.root", toy_events(1_000, 3))
    params = RootSourceParams(
        files=["a.root", "b.root"], base_dir=str(tmp_path), step_size=step
    )
    batches = list(RootSource(params).batches(columns))
    source = RootSource(params)
    chunks = source.chunks(columns)
    assert [(b.chunk, b.start, len(b), b.origin) for b in batches] == [
        (c.index, c.start, c.n, c.origin) for c in chunks
    ]
    for batch, ref in zip(batches, chunks):
        assert ak.array_equal(source.read_chunk(ref, columns).events, batch.events)
    source.close()


def test_toy_chunks_read_the_batches():
    source = ToySource(ToySourceParams(n_events=2_500, batch_size=1_000, seed=3))
    chunks = source.chunks()
    assert [(c.start, c.n) for c in chunks] == [(0, 1000), (1000, 1000), (2000, 500)]
    for batch, ref in zip(source.batches(), chunks):
        assert ak.array_equal(source.read_chunk(ref).events, batch.events)


def test_same_decisions_on_local_and_dask(run_dir, cluster):
    config = run_dir / "menu.yaml"
    dask_config = run_dir / "menu_dask.yaml"
    dask_config.write_text(
        MENU + f"executor: {{type: dask, address: '{cluster.scheduler_address}'}}\n"
    )
    assert main(["-q", "run", str(config), "--out", str(run_dir / "local")]) == 0
    assert main(["-q", "run", str(dask_config), "--out", str(run_dir / "dask")]) == 0

    assert_same_decisions(run_dir / "local", run_dir / "dask")
    assert counts(run_dir / "local") == counts(run_dir / "dask")
    report = json.loads((run_dir / "dask" / "report.json").read_text())
    assert report["executor"] == "dask" and report["n_batches"] == 12
    assert report["n_input"] == 6_000 and not report["retried_chunks"]
    assert not (run_dir / "dask" / "parts").exists(), "the journal is removed"


def test_toy_menu_in_memory_matches(cuts_model, cluster, tmp_path):
    def menu() -> Menu:
        line = Line(
            name="cuts",
            algorithm=CutsAlgorithm(CutsAlgorithmParams(features=["x0", "x1", "x2"])),
            artifact=load_artifact(cuts_model),
            backend=CutsBackend(),
            threshold=0.0,
        )
        source = ToySource(ToySourceParams(n_events=5_000, batch_size=700, seed=4))
        return Menu(source=source, lines=[line], sinks=[MemorySink()])

    local, dask = menu(), menu()
    run_menu(local, LocalExecutor(), tmp_path / "a")
    params = DaskExecutorParams(address=cluster.scheduler_address, max_in_flight=3)
    report, _ = run_menu(dask, DaskExecutor(params), tmp_path / "b")
    assert report.n_input == 5_000 and report.n_batches == 8
    for name, column in local.sinks[0].table.items():
        np.testing.assert_array_equal(column, dask.sinks[0].table[name])


def test_a_source_that_cannot_split_is_refused(cuts_model, cluster, tmp_path):
    source = MemorySource(toy_events(100, seed=1))
    line = Line(
        name="cuts",
        algorithm=CutsAlgorithm(CutsAlgorithmParams(features=["x0", "x1", "x2"])),
        artifact=load_artifact(cuts_model),
        backend=CutsBackend(),
        threshold=0.0,
    )
    menu = Menu(source=source, lines=[line])
    params = DaskExecutorParams(address=cluster.scheduler_address)
    with pytest.raises(UsageError, match="cannot be split into chunks"):
        run_menu(menu, DaskExecutor(params), tmp_path)


def test_a_menu_that_cannot_travel_is_a_clear_error(cuts_model, cluster, tmp_path):
    backend = CutsBackend()
    backend.session = threading.Lock()  # state that no process can receive
    line = Line(
        name="cuts",
        algorithm=CutsAlgorithm(CutsAlgorithmParams(features=["x0", "x1", "x2"])),
        artifact=load_artifact(cuts_model),
        backend=backend,
        threshold=0.0,
    )
    source = ToySource(ToySourceParams(n_events=1_000, batch_size=500))
    params = DaskExecutorParams(address=cluster.scheduler_address)
    with pytest.raises(RunFailure, match=r"cannot pickle '_thread\.lock' object"):
        run_menu(Menu(source=source, lines=[line]), DaskExecutor(params), tmp_path)


def test_an_unreachable_scheduler_is_a_clear_error(run_dir, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nobody listens there
    config = run_dir / "menu_away.yaml"
    config.write_text(
        MENU + f"executor: {{type: dask, address: 'tcp://127.0.0.1:{port}', "
        "connect_timeout_s: 1}\n"
    )
    code = main(["run", str(config), "--out", str(run_dir / "out")])
    assert code == 1
    assert (
        "cannot reach the Dask scheduler at tcp://127.0.0.1" in capsys.readouterr().out
    )


def test_cli_executor_option_starts_a_local_cluster(run_dir):
    """``--executor dask`` with no address: a cluster of its own on 127.0.0.1."""
    command = ["run", "menu.yaml", "--out", "out", "--executor", "dask"]
    proc = subprocess.run(
        [sys.executable, "-m", "trigml.cli", "-q", *command],
        cwd=run_dir,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TRIGML_PLUGINS": "none"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((run_dir / "out" / "report.json").read_text())
    assert report["executor"] == "dask" and report["n_input"] == 6_000
    assert "dashboard" not in proc.stderr


def test_params_are_checked():
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        DaskExecutorParams(n_workers=0)
    with pytest.raises(ValueError, match="on_failure"):
        DaskExecutorParams(on_failure="ignore")
