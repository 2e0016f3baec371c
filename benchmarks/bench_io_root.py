"""Read speed of :class:`trigml.io.RootSource` against bare ``uproot.iterate``.

Writes 1M events x 10 float32 flat branches (LZ4 and uncompressed) into a temporary
folder, reads all branches with both in the same run, and prints the best of several
repetitions and the ratio (events/s of trigml over events/s of uproot).

Run: ``.venv/bin/python benchmarks/bench_io_root.py [n_events] [repeats]``
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from trigml.io import RootSource, RootSourceParams, write_events


def _best(readers: dict, repeats: int) -> dict[str, float]:
    """Best time of each reader, alternating them so that load hits both alike."""
    best = dict.fromkeys(readers, float("inf"))
    for _ in range(repeats):
        for name, read in readers.items():
            t0 = time.perf_counter()
            read()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    rng = np.random.default_rng(1)
    names = [f"x{i}" for i in range(10)]
    events = ak.zip({k: rng.normal(size=n).astype(np.float32) for k in names})
    with tempfile.TemporaryDirectory() as tmp:
        for compression in ("lz4", "none"):
            path = Path(tmp) / f"bench_{compression}.root"
            write_events(path, events, compression=compression)
            source = RootSource(RootSourceParams(files=[str(path)]))

            def bare(path: Path = path) -> int:
                count = 0
                for arrays in uproot.iterate(
                    f"{path}:Events", names, step_size="50 MB", library="ak"
                ):
                    count += len(arrays)
                assert count == n
                return count

            def trigml(source: RootSource = source) -> int:
                count = sum(len(b) for b in source.batches(names))
                assert count == n
                return count

            best = _best({"bare": bare, "trigml": trigml}, repeats)
            t_bare, t_trigml = best["bare"], best["trigml"]
            print(
                f"{compression:>4}: uproot.iterate {n / t_bare / 1e6:6.2f} M events/s, "
                f"RootSource {n / t_trigml / 1e6:6.2f} M events/s, "
                f"ratio {t_bare / t_trigml:.2f}"
            )


if __name__ == "__main__":
    main()
