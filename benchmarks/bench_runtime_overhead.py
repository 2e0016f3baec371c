"""The runtime's own cost next to the I/O it orchestrates.

Reads N events (default 1M, ten float32 branches) from a ROOT file, scores them with a
trivial scorer (one feature compared to a threshold) and writes one decision per event
to a ROOT TTree: once through the trigml pipeline (validation, candidates, backend,
bookkeeping, sink), once with bare uproot calls in one loop. Both run in this process,
alternately, and the best of several repeats is kept. The ratio bare / pipeline is the
pipeline's relative speed (1.0 = no overhead).

    python benchmarks/bench_runtime_overhead.py [--events 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

N_BRANCHES = 10
STEP = 200_000


def make_file(path: Path, n: int) -> None:
    import awkward as ak

    from trigml.io.root import write_events

    rng = np.random.default_rng(0)
    batches = []
    for start in range(0, n, STEP):
        k = min(STEP, n - start)
        cols = {
            f"x{i}": rng.exponential(2.0, k).astype(np.float32)
            for i in range(N_BRANCHES)
        }
        cols["is_signal"] = rng.random(k) < 0.5
        batches.append(ak.Array(cols))
    write_events(path, batches, compression="lz4")


def bare_uproot(path: Path, out: Path) -> int:
    import uproot

    n = 0
    with uproot.recreate(out, compression=uproot.LZ4(1)) as sink:
        tree = None
        for arrays in uproot.iterate(
            f"{path}:Events", ["x0", "x1", "x2"], step_size=STEP, library="np"
        ):
            k = len(arrays["x0"])
            table = {
                "event": np.arange(n, n + k, dtype=np.int64),
                "status": np.zeros(k, dtype=np.int16),
                "line": arrays["x0"] >= 2.0,
                "line_score": arrays["x0"],
            }
            if tree is None:
                tree = sink.mktree("decisions", {c: v.dtype for c, v in table.items()})
            tree.extend(table)
            n += k
    return n


def pipeline(path: Path, out: Path, artifact_dir: Path) -> int:
    from trigml.artifact import load_artifact
    from trigml.cuts import CutsAlgorithm, CutsAlgorithmParams
    from trigml.io.root import RootSink, RootSinkParams, RootSource, RootSourceParams
    from trigml.runtime import Line, LocalExecutor, Menu, run_menu

    source = RootSource(RootSourceParams(files=[str(path)], step_size=STEP))
    line = Line(
        name="line",
        algorithm=CutsAlgorithm(CutsAlgorithmParams(features=["x0", "x1", "x2"])),
        artifact=load_artifact(artifact_dir),
        backend=TrivialBackend(),
        threshold=2.0,
    )
    menu = Menu(source=source, lines=[line], sinks=[RootSink(RootSinkParams())])
    report, _ = run_menu(menu, LocalExecutor(), out)
    return report.n_input


class TrivialBackend:
    """Scores a candidate by its first feature."""

    name = "bench.trivial"

    def formats(self) -> Sequence[str]:
        return ["cuts-json"]

    def load(self, artifact: object) -> TrivialBackend:
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        return features[:, 0]


def make_artifact(directory: Path) -> Path:
    from trigml.artifact import save_artifact
    from trigml.schema.card import FeatureSpec, ModelCard

    directory.mkdir()
    (directory / "cuts.json").write_text('{"cuts": []}\n')
    card = ModelCard(
        name="trivial",
        algorithm="cuts",
        family="cuts",
        features=[FeatureSpec(name=f"x{i}") for i in range(3)],
        formats={"cuts-json": "cuts.json"},
    )
    save_artifact(directory, card)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        data = tmpdir / "events.root"
        make_file(data, args.events)
        artifact = make_artifact(tmpdir / "model")
        best = {"bare uproot": np.inf, "trigml pipeline": np.inf}
        for i in range(args.repeat):
            t0 = time.perf_counter()
            n_bare = bare_uproot(data, tmpdir / f"bare{i}.root")
            best["bare uproot"] = min(best["bare uproot"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            n_pipe = pipeline(data, tmpdir / f"pipe{i}", artifact)
            best["trigml pipeline"] = min(
                best["trigml pipeline"], time.perf_counter() - t0
            )
            assert n_bare == n_pipe == args.events
    for name, sec in best.items():
        print(f"{name:16s} {sec:7.3f} s  {args.events / sec / 1e6:6.2f} M events/s")
    ratio = best["bare uproot"] / best["trigml pipeline"]
    print(f"pipeline speed / bare uproot speed = {ratio:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
