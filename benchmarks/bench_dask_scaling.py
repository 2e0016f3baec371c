"""Throughput of the dask executor on 2 local workers against the local executor.

Writes N toy events (default 2M) into a ROOT file and runs two menus over it with both
executors in the same process, alternately, keeping the best of several repeats:

* ``light``: one cuts line (a few numpy comparisons per event), so reading, merging
  and writing decide the speed;
* ``heavy``: one line scored by a small numpy MLP (3-64-64-1, float32, one BLAS
  thread), about a microsecond of arithmetic per event, so scoring decides it.

Both write ``decisions.root`` like a real run. The cluster (2 worker processes, one
thread each, on 127.0.0.1) is started once, outside the timing, and its start-up time
is printed on its own, and so is the parallel capacity the machine offers at that
moment (two processes against one on the same numpy work), without which a ratio
measured on a shared machine cannot be read. Also measured: the client's own ceiling
(the rate at which it merges finished chunk results and writes them, which bounds any
cluster's throughput), the cost of the run journal that makes ``trigml run``
resumable, and the fixed cost of one chunk on the cluster (200 chunks of 2,000 toy
events).

    python benchmarks/bench_dask_scaling.py [--events 2000000] [--repeat 3]
"""

from __future__ import annotations

import os

# one BLAS thread per process, in this process and in the workers it starts
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

STEP = 100_000


class MLPBackend:
    """Scores candidates with a fixed random 3-64-64-1 MLP in numpy."""

    name = "bench.mlp"

    def __init__(self, width: int = 64) -> None:
        rng = np.random.default_rng(0)
        self.w1 = rng.normal(size=(3, width)).astype(np.float32)
        self.w2 = (rng.normal(size=(width, width)) / width**0.5).astype(np.float32)
        self.w3 = (rng.normal(size=(width, 1)) / width**0.5).astype(np.float32)

    def formats(self) -> Sequence[str]:
        return ["cuts-json"]

    def load(self, artifact: Any) -> MLPBackend:
        return self

    def describe(self) -> dict[str, str]:
        return {"backend": self.name}

    def predict(self, features: np.ndarray) -> np.ndarray:
        hidden = np.tanh(features @ self.w1)
        hidden = np.tanh(hidden @ self.w2)
        return 1.0 / (1.0 + np.exp(-(hidden @ self.w3)[:, 0]))


def make_inputs(folder: Path, n: int) -> tuple[Path, Path]:
    """A ROOT file of ``n`` toy events and a cuts model trained on toy events."""
    from trigml.io.root import write_events
    from trigml.schema.config import ComponentRef, TrainConfig
    from trigml.testing import isolated_plugins
    from trigml.toy import toy_events
    from trigml.train import train_model

    data = folder / "events.root"
    batches = (
        toy_events(min(STEP, n - lo), seed=lo // STEP) for lo in range(0, n, STEP)
    )
    write_events(data, batches, compression="lz4")
    model = folder / "model"
    config = TrainConfig(
        name="toy-cuts",
        algorithm=ComponentRef(type="cuts", params={"features": ["x0", "x1", "x2"]}),
        family=ComponentRef(type="cuts", params={"target_efficiency": 0.7}),
        source=ComponentRef(type="toy", params={"n_events": 20_000, "seed": 2}),
        output=str(model),
    )
    train_model(config, isolated_plugins().registry)
    return data, model


def make_menu(data: Path, model: Path, heavy: bool) -> Any:
    from trigml.artifact import load_artifact
    from trigml.cuts import CutsAlgorithm, CutsAlgorithmParams, CutsBackend
    from trigml.io.root import RootSink, RootSinkParams, RootSource, RootSourceParams
    from trigml.runtime import Line, Menu

    artifact = load_artifact(model)
    line = Line(
        name="line",
        algorithm=CutsAlgorithm(CutsAlgorithmParams(features=["x0", "x1", "x2"])),
        artifact=artifact,
        backend=MLPBackend() if heavy else CutsBackend(),
        threshold=0.5 if heavy else artifact.card.working_point("eff70").threshold,
    )
    source = RootSource(RootSourceParams(files=[str(data)], step_size=STEP))
    return Menu(
        source=source,
        lines=[line],
        sinks=[RootSink(RootSinkParams())],
        signal_field="is_signal",
    )


def timed_run(menu: Any, executor: Any, out: Path) -> float:
    from trigml.runtime import run_menu

    t0 = time.perf_counter()
    report, _ = run_menu(menu, executor, out)
    assert report.n_input == report.n_decided
    return time.perf_counter() - t0


def merge_rate(menu: Any, out: Path) -> float:
    """Events/s at which the client merges finished results and writes them."""
    from trigml.runtime import LocalExecutor, RunAccounting

    results = list(LocalExecutor().map(menu))
    accounting = RunAccounting(menu, out)
    t0 = time.perf_counter()
    for result in results:
        accounting.add(result)
    accounting.finish()
    return sum(r.n for r in results) / (time.perf_counter() - t0)


def journal_cost(data: Path, model: Path, folder: Path, repeat: int) -> float:
    """Speed with the run journal over speed without it (light menu, local)."""
    from trigml.journal import RunJournal
    from trigml.runtime import LocalExecutor, run_menu

    best = {False: np.inf, True: np.inf}
    for i in range(repeat):
        for journal in (False, True):
            out = folder / f"journal-{journal}-{i}"
            menu = make_menu(data, model, False)
            t0 = time.perf_counter()
            kept = RunJournal(out) if journal else None
            run_menu(menu, LocalExecutor(), out, journal=kept)
            if kept is not None:
                kept.discard()
            best[journal] = min(best[journal], time.perf_counter() - t0)
    return best[False] / best[True]


def tiny_chunks(model: Path, folder: Path, dask: Any) -> tuple[float, float, int]:
    """Seconds for 200 chunks of 2,000 toy events into memory, local and dask."""
    from trigml.io.memory import MemorySink
    from trigml.runtime import LocalExecutor
    from trigml.toy import ToySource, ToySourceParams

    best = {"local": np.inf, "dask": np.inf}
    for i in range(2):
        for name, executor in (("local", LocalExecutor()), ("dask", dask)):
            menu = make_menu(folder / "events.root", model, False)
            menu.source = ToySource(ToySourceParams(n_events=400_000, batch_size=2_000))
            menu.sinks = [MemorySink()]
            out = folder / f"tiny-{name}-{i}"
            best[name] = min(best[name], timed_run(menu, executor, out))
    return best["local"], best["dask"], 200


def _spin(seconds: float) -> float:
    """Fixed numpy work; returns how long it took (seconds)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50_000, 64)).astype(np.float32)
    w = rng.normal(size=(64, 64)).astype(np.float32)
    t0 = time.perf_counter()
    for _ in range(20):
        np.tanh(a @ w)
    return time.perf_counter() - t0


def parallel_capacity() -> float:
    """Throughput of two processes over one on the same numpy work, right now.

    2.0 means two free cores; less means other work on the machine takes a share.
    """
    import multiprocessing as mp

    alone = min(_spin(0) for _ in range(2))
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [0, 0])  # start-up
        together = max(pool.map(_spin, [0, 0]))
    return 2 * alone / together


def same_decisions(a: Path, b: Path) -> bool:
    import uproot

    with (
        uproot.open(a / "decisions.root") as fa,
        uproot.open(b / "decisions.root") as fb,
    ):
        left = fa["decisions"].arrays(library="np")
        right = fb["decisions"].arrays(library="np")
    return all(np.array_equal(left[k], right[k]) for k in left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from distributed import LocalCluster

    from trigml.dask_executor import DaskExecutor, DaskExecutorParams
    from trigml.runtime import LocalExecutor

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data, model = make_inputs(folder, args.events)
        t0 = time.perf_counter()
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        start_up = time.perf_counter() - t0
        dask = DaskExecutor(DaskExecutorParams(address=cluster.scheduler_address))
        with cluster:
            print(
                f"{args.events:,} events, chunks of {STEP:,}, 2 cores; cluster "
                f"start-up {start_up:.1f} s (not in the times below)"
            )
            print(
                f"{'menu':6s} {'local':>14s} {'dask, 2 workers':>18s} {'ratio':>6s} "
                "  capacity (2 processes / 1 on numpy work, before and after; 2.0 = "
                "two free cores)"
            )
            for heavy in (False, True):
                kind = "heavy" if heavy else "light"
                best = {"local": np.inf, "dask": np.inf}
                before = parallel_capacity()
                for i in range(args.repeat):
                    for name, executor in (("local", LocalExecutor()), ("dask", dask)):
                        out = folder / f"{kind}-{name}-{i}"
                        menu = make_menu(data, model, heavy)
                        best[name] = min(best[name], timed_run(menu, executor, out))
                assert same_decisions(
                    folder / f"{kind}-local-0", folder / f"{kind}-dask-0"
                )
                after = parallel_capacity()
                local, dask_rate = (args.events / best[k] / 1e6 for k in best)
                print(
                    f"{kind:6s} {local:10.2f} M/s {dask_rate:14.2f} M/s "
                    f"{dask_rate / local:6.2f}   {before:.2f}, {after:.2f}"
                )
            ceiling = merge_rate(make_menu(data, model, False), folder / "merge")
            print(
                f"client merge + decisions.root writing alone: {ceiling / 1e6:.2f} M/s"
            )
            journal = journal_cost(data, model, folder, args.repeat)
            print(
                "light, local, with the run journal of 'trigml run' (resumable): "
                f"{journal:.2f} of the speed without it"
            )
            local_s, dask_s, n_chunks = tiny_chunks(model, folder, dask)
            print(
                f"{n_chunks} chunks of 2,000 toy events into memory: local "
                f"{local_s:.2f} s, dask {dask_s:.2f} s; cost of a chunk on dask "
                f"beyond its share of the work about "
                f"{(dask_s - local_s / 2) / n_chunks * 1e3:.1f} ms"
            )


if __name__ == "__main__":
    main()
