"""Generation speed of the LHCb simulation on one core.

Run with ``OMP_NUM_THREADS=1 python plugins/trigml-lhcb/benchmarks/bench_lhcb_sim.py``.
Prints events per minute of CPU time (and of wall time) for each kind, against the
issue's target of 100k events per minute, and the time to write a ROOT file.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from trigml_lhcb.ghostsim import simulate_ghost
from trigml_lhcb.simulation import generate, simulate_topo

TARGET_PER_MINUTE = 100_000


def _measure(label: str, run, n_events: int, batch: int) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(n_events // batch):
        run(batch, np.random.default_rng([7, i]))
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    per_min = n_events / cpu * 60
    print(
        f"{label:<12} {n_events:>8} events  cpu {cpu:6.2f} s  wall {wall:6.2f} s  "
        f"{per_min / 1e3:7.0f}k events/min (cpu)  "
        f"{per_min / TARGET_PER_MINUTE:4.1f}x target"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=20_000)
    args = parser.parse_args()
    n, b = args.events, args.batch

    simulate_topo(1000, np.random.default_rng(0))  # warm-up (tables, imports)
    _measure("signal-mix", lambda k, rng: simulate_topo(k, rng), n, b)
    _measure("minbias", lambda k, rng: simulate_topo(k, rng, kind="minbias"), n, b)
    _measure("signal", lambda k, rng: simulate_topo(k, rng, kind="signal"), n, b)
    _measure("ghost", lambda k, rng: simulate_ghost(k, rng), n, b)

    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = time.process_time(), time.perf_counter()
        path = generate(Path(tmp) / "events.root", n_events=n, seed=1, batch_size=b)
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        size = path.stat().st_size / 1e6
        print(
            f"{'ROOT file':<12} {n:>8} events  cpu {cpu:6.2f} s  wall {wall:6.2f} s  "
            f"(generate + write, {size:.0f} MB, LZ4)"
        )


if __name__ == "__main__":
    main()
