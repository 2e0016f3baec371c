"""Memory of a long run: 10⁷ generated events streamed through a menu.

Runs the toy source (100,000 events per chunk) through one cuts line, the ROOT
decisions sink and the run journal, as ``trigml run`` does, and records the process's
resident memory after every million events: the current value and the peak so far
(``ru_maxrss``). A run whose memory is flat has the same peak at 10⁶ and 10⁷ events.
With ``--executor dask`` the menu runs on a local cluster of 2 workers and the
larger of the two workers' peaks is shown too. Not part of the tests: it takes a
minute or more.

    python benchmarks/soak_memory.py [--events 10000000] [--executor local|dask]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def rss_now() -> float:
    """Resident memory of this process now, in MiB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / MIB


def rss_peak() -> float:
    """Peak resident memory of this process so far, in MiB (Linux: kB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train(folder: Path) -> Path:
    from trigml.schema.config import ComponentRef, TrainConfig
    from trigml.testing import isolated_plugins
    from trigml.train import train_model

    config = TrainConfig(
        name="toy-cuts",
        algorithm=ComponentRef(type="cuts", params={"features": ["x0", "x1", "x2"]}),
        family=ComponentRef(type="cuts", params={"target_efficiency": 0.7}),
        source=ComponentRef(type="toy", params={"n_events": 20_000, "seed": 2}),
        output=str(folder / "model"),
    )
    return train_model(config, isolated_plugins().registry).path


def make_menu(model: Path, n_events: int) -> Any:
    from trigml.artifact import load_artifact
    from trigml.cuts import CutsAlgorithm, CutsAlgorithmParams, CutsBackend
    from trigml.io.root import RootSink, RootSinkParams
    from trigml.runtime import Line, Menu
    from trigml.toy import ToySource, ToySourceParams

    artifact = load_artifact(model)
    line = Line(
        name="toy_cuts",
        algorithm=CutsAlgorithm(CutsAlgorithmParams(features=["x0", "x1", "x2"])),
        artifact=artifact,
        backend=CutsBackend(),
        threshold=artifact.card.working_point("eff70").threshold,
    )
    source = ToySource(ToySourceParams(n_events=n_events, batch_size=100_000, seed=1))
    return Menu(
        source=source,
        lines=[line],
        sinks=[RootSink(RootSinkParams())],
        input_rate_hz=1e6,
        signal_field="is_signal",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--executor", choices=["local", "dask"], default="local")
    args = parser.parse_args()

    from trigml.journal import RunJournal
    from trigml.runtime import LocalExecutor, run_menu

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        model = train(folder)
        menu = make_menu(model, args.events)
        executor: Any = LocalExecutor()
        client = None
        if args.executor == "dask":
            from distributed import Client, LocalCluster

            from trigml.dask_executor import DaskExecutor, DaskExecutorParams

            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=2,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
            address = cluster.scheduler_address
            executor = DaskExecutor(DaskExecutorParams(address=address))
        print(f"start: RSS {rss_now():.0f} MiB, peak {rss_peak():.0f} MiB")
        seen = 0
        mark = 1_000_000
        rows: list[tuple[int, float, float, float, float]] = []
        t0 = time.perf_counter()

        def progress(n: int) -> None:
            nonlocal seen, mark
            seen += n
            if seen >= mark:
                workers = 0.0
                if client is not None:
                    peaks = client.run(rss_peak)
                    workers = max(peaks.values())
                sec = time.perf_counter() - t0
                rows.append((seen, rss_now(), rss_peak(), workers, sec))
                mark += 1_000_000

        out = folder / "out"
        journal = RunJournal(out)
        report, _ = run_menu(menu, executor, out, progress=progress, journal=journal)
        journal.discard()
        assert report.n_input == report.n_decided == args.events

        head = f"{'events':>12s} {'RSS MiB':>8s} {'peak MiB':>9s}"
        if client is not None:
            head += f" {'worker peak MiB':>16s}"
        print(head + f" {'seconds':>8s}")
        for events, now, peak, workers, sec in rows:
            row = f"{events:12,d} {now:8.0f} {peak:9.0f}"
            if client is not None:
                row += f" {workers:16.0f}"
            print(row + f" {sec:8.1f}")
        first, last = rows[0], rows[-1]
        print(
            f"peak RSS at {first[0]:,} events: {first[2]:.0f} MiB; at {last[0]:,}: "
            f"{last[2]:.0f} MiB (ratio {last[2] / first[2]:.2f}); "
            f"{report.n_input / report.timing['total'].seconds / 1e6:.2f} M events/s"
        )


if __name__ == "__main__":
    main()
