"""CPU inference: ``cpu.auto`` and the bonsai table against their peers, side by side.

Three models, each saved as a trigml artifact in a temporary folder:

* a BDT, 100 trees of depth 6 on 10 features: ``cpu.auto`` against xgboost's
  ``inplace_predict`` at batches of 1 and 64, and against the better of xgboost and
  onnxruntime at 10,000;
* an MLP 16-64-32-32-5 built with torch and exported to ONNX: ``cpu.auto`` against torch
  eager at batches of 1 and 64, and against the better of torch and onnxruntime at
  10,000;
* a bonsai table (4 features × 32 bins) of a 100-tree depth-6 BDT: ``cpu.lut`` against
  the exact BDT (xgboost and ``cpu.auto``) at 10,000, with the signal efficiency of both
  at the same background rate.

Peers are called directly (no trigml checks); ``cpu.auto`` and ``cpu.lut`` go through
their full ``Scorer.predict`` (feature checks, NaN check, scaling). All contenders of a
row are timed in one process, interleaved, one thread each, and the best of several
repeats is kept. Ratios above 1 mean trigml is faster.

    python benchmarks/bench_cpu_backends.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

INPUT_RATE_HZ = 30e6
RATE_BUDGET_HZ = 300e3


def _timed(fn: Callable[[], Any], seconds: float) -> float:
    """Seconds per call of ``fn``, timed for about ``seconds``."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / calls


def race(
    contenders: dict[str, Callable[[np.ndarray], Any]],
    x: np.ndarray,
    seconds: float,
    repeats: int,
) -> dict[str, float]:
    """Events per second of each contender on ``x``, interleaved, best of repeats."""
    best = dict.fromkeys(contenders, np.inf)
    for _ in range(repeats):
        for name, fn in contenders.items():
            t = _timed(lambda fn=fn: fn(x), seconds / repeats)
            best[name] = min(best[name], t)
    return {name: len(x) / t for name, t in best.items()}


# -- models ---------------------------------------------------------------------------


def _card(name: str, n: int, formats: dict[str, str], task: str, classes: list[str]):
    from trigml.schema.card import FeatureSpec, ModelCard, OutputSpec

    outputs = [OutputSpec(name=c) for c in classes] if task == "multiclass" else []
    return ModelCard(
        name=name,
        algorithm="benchmark",
        family="benchmark",
        task=task,
        features=[FeatureSpec(name=f"x{i}") for i in range(n)],
        outputs=outputs or [OutputSpec(name="score")],
        classes=classes,
        formats=formats,
    )


def _toy(n: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0.0, 1.0, (n, n_features))
    x[:, 0] += 1.2 * y
    x[:, 1] += np.where(y == 1, 0.6 * x[:, 2], 0.0)
    x[:, 3] *= np.where(y == 1, 0.6, 1.0)
    return x.astype(np.float32), y


def bdt_artifact(
    directory: Path, n_features: int, n_train: int, seed: int
) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """A 100-tree depth-6 BDT as an artifact; returns (artifact, booster, x, y)."""
    import xgboost as xgb

    from trigml.artifact import save_artifact
    from trigml_xgboost.onnx_export import booster_to_onnx

    x, y = _toy(n_train, n_features, seed)
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "nthread": 2}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), 100)
    booster.set_param({"nthread": 1})
    directory.mkdir(parents=True)
    booster.save_model(str(directory / "model.json"))
    onnx_model = booster_to_onnx(booster, n_features)
    (directory / "model.onnx").write_bytes(onnx_model.SerializeToString())
    np.savez(
        directory / "holdout.npz",
        features=x[:20_000],
        labels=y[:20_000],
        scores=booster.inplace_predict(x[:20_000]),
    )
    formats = {"xgboost-json": "model.json", "onnx": "model.onnx"}
    card = _card("bench-bdt", n_features, formats, "binary", ["bkg", "sig"])
    return save_artifact(directory, card), booster, x, y


def mlp_artifact(directory: Path) -> tuple[Any, Any, np.ndarray]:
    """The 16-64-32-32-5 jet-tagging MLP in torch, exported to ONNX."""
    import torch
    from torch import nn

    from trigml.artifact import save_artifact

    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Linear(16, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Linear(32, 5),
        nn.Softmax(dim=1),
    ).train(False)
    x = np.random.default_rng(1).normal(0, 1, (20_000, 16)).astype(np.float32)
    directory.mkdir(parents=True)
    torch.onnx.export(
        module,
        (torch.from_numpy(x[:2]),),
        str(directory / "model.onnx"),
        input_names=["features"],
        output_names=["output"],
        dynamic_axes={"features": {0: "n"}, "output": {0: "n"}},
        dynamo=False,
    )
    with torch.inference_mode():
        scores = module(torch.from_numpy(x)).numpy()
    np.savez(
        directory / "holdout.npz", features=x, labels=np.zeros(len(x)), scores=scores
    )
    card = _card("bench-mlp", 16, {"onnx": "model.onnx"}, "multiclass", list("gqwzt"))
    return save_artifact(directory, card), module, x


# -- benchmarks -----------------------------------------------------------------------


def bench_bdt(tmp: Path, seconds: float, repeats: int, n_train: int) -> list[dict]:
    from trigml_cpu.auto import AutoBackend
    from trigml_cpu.onnx_backend import onnx_session
    from trigml_cpu.params import AutoParams

    artifact, booster, x, _ = bdt_artifact(tmp / "bdt", 10, n_train, 0)
    auto = AutoBackend(AutoParams(recalibrate=True)).load(artifact)
    session = onnx_session(artifact.file("onnx"))
    out = [session.get_outputs()[0].name]
    peers = {
        "xgboost": lambda b: booster.inplace_predict(b),
        "onnxruntime": lambda b: session.run(out, {"features": b}),
    }
    rows = []
    for size in (1, 64, 10_000):
        batch = np.ascontiguousarray(x[:size])
        speed = race({"cpu.auto": auto.predict, **peers}, batch, seconds, repeats)
        if size < 1000:
            peer, target = "xgboost", 10.0
        else:
            peer = max(peers, key=lambda p: speed[p])
            target = 0.9
        rows.append(
            _row("BDT 100×d6", size, auto.runtime_for(size), speed, peer, target)
        )
    return rows


def bench_mlp(tmp: Path, seconds: float, repeats: int) -> list[dict]:
    import torch

    from trigml_cpu.auto import AutoBackend
    from trigml_cpu.onnx_backend import onnx_session
    from trigml_cpu.params import AutoParams

    torch.set_num_threads(1)
    artifact, module, x = mlp_artifact(tmp / "mlp")
    auto = AutoBackend(AutoParams(recalibrate=True)).load(artifact)
    session = onnx_session(artifact.file("onnx"))

    def eager(b: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(b)).numpy()  # type: ignore[no-any-return]

    peers = {
        "torch eager": eager,
        "onnxruntime": lambda b: session.run(["output"], {"features": b}),
    }
    rows = []
    for size in (1, 64, 10_000):
        batch = np.ascontiguousarray(x[:size])
        speed = race({"cpu.auto": auto.predict, **peers}, batch, seconds, repeats)
        if size < 1000:
            peer, target = "torch eager", 2.0
        else:
            peer = max(peers, key=lambda p: speed[p])
            target = 0.9
        rows.append(
            _row("MLP 16-64-32-32-5", size, auto.runtime_for(size), speed, peer, target)
        )
    return rows


def bench_bonsai(tmp: Path, seconds: float, repeats: int, n_train: int) -> list[dict]:
    from trigml.artifact import save_artifact
    from trigml_cpu.auto import AutoBackend
    from trigml_cpu.lut_backend import LutBackend
    from trigml_cpu.params import AutoParams
    from trigml_xgboost.bonsai import build_lookup_table
    from trigml_xgboost.params import BonsaiParams

    artifact, booster, x, _ = bdt_artifact(tmp / "bonsai", 4, n_train, 1)
    lut = build_lookup_table(
        lambda r: booster.inplace_predict(r),
        x,
        artifact.card.feature_names,
        BonsaiParams(bins=32),
    )
    lut.save(artifact.path / "lut.npz")
    card = artifact.card.model_copy(
        update={"formats": {**artifact.card.formats, "lut": "lut.npz"}}
    )
    artifact = save_artifact(artifact.path, card)
    table = LutBackend().load(artifact)
    auto = AutoBackend(AutoParams(recalibrate=True)).load(artifact)

    batch = np.ascontiguousarray(_toy(10_000, 4, 99)[0])
    contenders = {
        "cpu.lut": table.predict,
        "xgboost": lambda b: booster.inplace_predict(b),
        "cpu.auto": auto.predict,
    }
    speed = race(contenders, batch, seconds, repeats)
    physics = _efficiency_at_rate(booster, table, n_eval=200_000)
    rows = []
    for peer in ("xgboost", "cpu.auto"):
        row = _row("bonsai LUT 4×32 bins", 10_000, "cpu.lut", speed, peer, 20.0)
        row["peer_runtime"] = auto.runtime_for(10_000) if peer == "cpu.auto" else peer
        row.update(physics)
        rows.append(row)
    return rows


def _efficiency_at_rate(booster: Any, table: Any, n_eval: int) -> dict[str, float]:
    """Signal efficiency of exact and bonsai models at the same background rate."""
    from trigml.metrics import threshold_for_rate

    x, y = _toy(n_eval, 4, 123)
    signal, background = x[y == 1], x[y == 0]
    result = {}
    for name, predict in (("exact", booster.inplace_predict), ("lut", table.predict)):
        bkg = predict(background)
        cut = threshold_for_rate(bkg, RATE_BUDGET_HZ, INPUT_RATE_HZ)
        result[f"efficiency_{name}"] = float((predict(signal) >= cut).mean())
        result[f"rate_{name}_hz"] = float((bkg >= cut).mean() * INPUT_RATE_HZ)
    result["efficiency_difference"] = (
        result["efficiency_lut"] - result["efficiency_exact"]
    )
    return result


def _row(
    model: str,
    size: int,
    runtime: str,
    speed: dict[str, float],
    peer: str,
    target: float,
) -> dict[str, Any]:
    ours = "cpu.lut" if "cpu.lut" in speed and runtime == "cpu.lut" else "cpu.auto"
    ratio = speed[ours] / speed[peer]
    return {
        "model": model,
        "batch": size,
        "trigml": ours,
        "runtime": runtime,
        "trigml_events_per_s": speed[ours],
        "peer": peer,
        "peer_events_per_s": speed[peer],
        "ratio": ratio,
        "target": target,
        "met": bool(ratio >= target),
        "all_events_per_s": speed,
    }


def _print_table(rows: list[dict]) -> None:
    print("| model | batch | trigml (runtime) | events/s | peer | events/s | ratio |")
    print("|" + "---|" * 7)
    for r in rows:
        peer = r["peer"]
        if r.get("peer_runtime", peer) != peer:
            peer += f" ({r['peer_runtime']})"
        verdict = "ok" if r["met"] else "MISSED"
        print(
            f"| {r['model']} | {r['batch']:,} | {r['trigml']} ({r['runtime']}) | "
            f"{r['trigml_events_per_s']:,.0f} | {peer} | "
            f"{r['peer_events_per_s']:,.0f} | **{r['ratio']:.1f}×** "
            f"(target ≥{r['target']:g}×, {verdict}) |"
        )
    bonsai = next((r for r in rows if "efficiency_difference" in r), None)
    if bonsai is not None:
        print(
            f"\nBonsai table at a rate of {RATE_BUDGET_HZ / 1e3:.0f} kHz out of "
            f"{INPUT_RATE_HZ / 1e6:.0f} MHz: signal efficiency "
            f"{bonsai['efficiency_exact']:.4f} (exact BDT) vs "
            f"{bonsai['efficiency_lut']:.4f} (table), difference "
            f"{bonsai['efficiency_difference']:+.4f} (target within ±0.01)."
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="shorter timing, smaller training"
    )
    parser.add_argument(
        "--json", type=Path, help="also write the rows to this JSON file"
    )
    args = parser.parse_args(argv)
    seconds, repeats, n_train = (0.3, 3, 20_000) if args.quick else (1.5, 5, 100_000)

    with tempfile.TemporaryDirectory(prefix="trigml-bench-") as name:
        tmp = Path(name)
        os.environ.setdefault("TRIGML_CACHE_DIR", str(tmp / "cache"))
        rows = bench_bdt(tmp, seconds, repeats, n_train)
        rows += bench_mlp(tmp, seconds, repeats)
        rows += bench_bonsai(tmp, seconds, repeats, n_train)

    _print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
