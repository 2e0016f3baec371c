"""Resumable runs: a run killed at a random chunk, then resumed, equals a whole run."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from trigml.artifact import load_artifact
from trigml.cli import main
from trigml.cuts import CutsAlgorithm, CutsAlgorithmParams, CutsBackend
from trigml.io.memory import MemorySink, MemorySource
from trigml.journal import RunJournal
from trigml.runtime import Line, LocalExecutor, Menu, run_menu
from trigml.testing import tiny_root_file
from trigml.toy import toy_events

distributed = pytest.importorskip("distributed")

N_CHUNKS = 16
MENU = """\
source:
  type: root
  files: [a.root, b.root]
  step_size: 250
lines:
  - name: toy_cuts
    model: model
    backend: cpu.cuts
    working_point: eff70
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


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, cuts_model: Path) -> Path:
    """4,000 toy events in two files, 16 chunks of 250, and the uninterrupted run."""
    folder = tmp_path_factory.mktemp("resume")
    shutil.copytree(cuts_model, folder / "model")
    events = toy_events(4_000, seed=13)
    tiny_root_file(folder / "a.root", events[:2_500])
    tiny_root_file(folder / "b.root", events[2_500:])
    (folder / "menu.yaml").write_text(MENU)
    config, ref = str(folder / "menu.yaml"), str(folder / "ref")
    assert main(["-q", "run", config, "--out", ref]) == 0
    return folder


def decisions(out: Path) -> dict[str, np.ndarray]:
    with uproot.open(out / "decisions.root") as rfile:
        return rfile["decisions"].arrays(library="np")


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def assert_same_run(out: Path, ref: Path) -> None:
    left, right = decisions(out), decisions(ref)
    assert list(left) == list(right)
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)
    mine, theirs = report(out), report(ref)
    for key in ("n_input", "n_decided", "n_accepted_any", "rejected", "n_batches"):
        assert mine[key] == theirs[key], key
    assert mine["lines"][0]["n_accepted"] == theirs["lines"][0]["n_accepted"]


def killed_run(config: Path, out: Path, after: int) -> subprocess.CompletedProcess:
    """``trigml run`` in a subprocess that SIGKILLs itself once ``after`` chunks
    are in its journal."""
    env = {
        **os.environ,
        "TRIGML_PLUGINS": "none",
        "TRIGML_TEST_KILL_AFTER_CHUNKS": str(after),
    }
    return subprocess.run(
        [sys.executable, "-m", "trigml.cli", "-q", "run", str(config), "--out", out],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def logged(out: Path) -> list[int]:
    lines = (out / "parts" / "journal.jsonl").read_text().splitlines()
    return [json.loads(x)["chunk"] for x in lines if '"done"' in x]


def test_a_killed_run_resumes_to_the_same_outputs(run_dir):
    after = random.Random().randrange(1, N_CHUNKS - 1)
    out = run_dir / f"killed-{after}"
    proc = killed_run(run_dir / "menu.yaml", out, after)
    assert proc.returncode == -signal.SIGKILL, (after, proc.stdout, proc.stderr)
    assert logged(out) == list(range(after)), f"killed after chunk {after}"
    assert not (out / "report.json").exists()

    code = main(
        ["-q", "run", str(run_dir / "menu.yaml"), "--out", str(out), "--resume"]
    )
    assert code == 0, f"killed after chunk {after}"
    assert_same_run(out, run_dir / "ref")
    assert report(out)["resumed_chunks"] == after
    assert not (out / "parts").exists()


def test_a_killed_dask_run_resumes_on_dask(run_dir, cluster):
    config = run_dir / "menu_dask.yaml"
    config.write_text(
        MENU + f"executor: {{type: dask, address: '{cluster.scheduler_address}'}}\n"
    )
    after = random.Random().randrange(1, N_CHUNKS - 1)
    out = run_dir / f"dask-killed-{after}"
    proc = killed_run(config, out, after)
    assert proc.returncode == -signal.SIGKILL, (after, proc.stdout, proc.stderr)

    assert main(["-q", "run", str(config), "--out", str(out), "--resume"]) == 0
    assert_same_run(out, run_dir / "ref")
    assert report(out)["resumed_chunks"] == after
    assert report(out)["executor"] == "dask"


def test_damaged_journal_entries_are_redone(run_dir):
    out = run_dir / "damaged"
    proc = killed_run(run_dir / "menu.yaml", out, 6)
    assert proc.returncode == -signal.SIGKILL
    parts = out / "parts"
    # a chunk file cut short, a log line cut short, a temporary file left behind
    part = parts / "chunk-000002.npz"
    part.write_bytes(part.read_bytes()[:100])
    with (parts / "journal.jsonl").open("a") as log:
        log.write('{"chunk": 6, "status": "do')
    (parts / ".chunk-000006.npz.123.tmp").write_bytes(b"partial")

    assert (
        main(["-q", "run", str(run_dir / "menu.yaml"), "--out", str(out), "--resume"])
        == 0
    )
    assert_same_run(out, run_dir / "ref")
    assert report(out)["resumed_chunks"] == 5  # chunks 0, 1, 3, 4, 5


def test_resume_refuses_a_changed_menu(run_dir, capsys):
    out = run_dir / "changed"
    proc = killed_run(run_dir / "menu.yaml", out, 3)
    assert proc.returncode == -signal.SIGKILL
    changed = run_dir / "menu_changed.yaml"
    changed.write_text(MENU.replace("eff70", "eff90"))

    assert main(["run", str(changed), "--out", str(out), "--resume"]) == 2
    message = capsys.readouterr().out
    assert "cannot resume the run" in message and "lines, models or backends" in message
    # the same menu still resumes
    assert (
        main(["-q", "run", str(run_dir / "menu.yaml"), "--out", str(out), "--resume"])
        == 0
    )
    assert_same_run(out, run_dir / "ref")


def test_resume_of_a_finished_or_absent_run(run_dir, capsys):
    config = str(run_dir / "menu.yaml")
    out = run_dir / "fresh"
    assert main(["-q", "run", config, "--out", str(out), "--resume"]) == 0
    assert_same_run(out, run_dir / "ref")
    assert report(out)["resumed_chunks"] == 0

    assert main(["run", config, "--out", str(out), "--resume"]) == 0
    assert "nothing to resume" in capsys.readouterr().out
    assert main(["run", config, "--out", str(out), "--resume", "--overwrite"]) == 2
    assert "exclude each other" in capsys.readouterr().out


class Crash(Exception):
    """Stands for a crash of the process in the middle of a run."""


def test_a_source_that_cannot_split_resumes_by_reading_again(cuts_model, tmp_path):
    events = toy_events(3_000, seed=17)

    def menu() -> Menu:
        line = Line(
            name="cuts",
            algorithm=CutsAlgorithm(CutsAlgorithmParams(features=["x0", "x1", "x2"])),
            artifact=load_artifact(cuts_model),
            backend=CutsBackend(),
            threshold=0.0,
        )
        source = MemorySource(events, batch_size=500)
        return Menu(source=source, lines=[line], sinks=[MemorySink()])

    seen = []

    def crash_after_three(n: int) -> None:
        seen.append(n)
        if len(seen) == 3:
            raise Crash

    out = tmp_path / "out"
    with pytest.raises(Crash):
        run_menu(
            menu(),
            LocalExecutor(),
            out,
            progress=crash_after_three,
            journal=RunJournal(out),
        )
    resumed = menu()
    report, _ = run_menu(
        resumed, LocalExecutor(), out, journal=RunJournal(out, resume=True)
    )
    whole = menu()
    run_menu(whole, LocalExecutor(), tmp_path / "whole")
    assert report.resumed_chunks == 3 and report.n_batches == 6
    for name, column in whole.sinks[0].table.items():
        np.testing.assert_array_equal(resumed.sinks[0].table[name], column)


def test_a_line_cut_short_does_not_swallow_the_next(cuts_model, tmp_path):
    def menu() -> Menu:
        line = Line(
            name="cuts",
            algorithm=CutsAlgorithm(CutsAlgorithmParams(features=["x0", "x1", "x2"])),
            artifact=load_artifact(cuts_model),
            backend=CutsBackend(),
            threshold=0.0,
        )
        source = MemorySource(toy_events(4_000, seed=19), batch_size=500)
        return Menu(source=source, lines=[line])

    def crash_at(k: int):
        calls = []

        def progress(n: int) -> None:
            calls.append(n)
            if len(calls) == k:
                raise Crash

        return progress

    out = tmp_path / "out"
    with pytest.raises(Crash):
        run_menu(
            menu(), LocalExecutor(), out, progress=crash_at(3), journal=RunJournal(out)
        )
    with (out / "parts" / "journal.jsonl").open("a") as log:
        log.write('{"chunk": 3, "sta')
    with pytest.raises(Crash):
        journal = RunJournal(out, resume=True)
        run_menu(menu(), LocalExecutor(), out, progress=crash_at(5), journal=journal)

    journal = RunJournal(out, resume=True)
    assert journal.begin(menu(), None) == [0, 1, 2, 3, 4]
    journal.close()
