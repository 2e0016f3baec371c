"""Measure the FPGA emulation targets and print a Markdown table for the docs.

Models (trained here on toy data, float scores from the trained model itself):

- jet-tagger-size MLP 16-64-32-32-5 (softmax, 5 classes) at ap_fixed<16,6>;
- 100-tree depth-4 xgboost BDT at ap_fixed<18,8>, with a precision scan;
- autoencoder 57-32-8-32-57 scored by its reconstruction error, cut at the 99th
  percentile.

For each: decision agreement with the float model on 100k held-out events, the first
export (compiling) and a second export of the unchanged model (cache), the emulation
throughput, and as the peer the float model's own throughput on the same events.

Run: ``.venv/bin/python plugins/trigml-fpga/benchmarks/fpga_targets.py [--out DIR]``
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from trigml.artifact import Artifact
from trigml.schema.card import WorkingPoint
from trigml_fpga import ConiferBackend, ConiferParams, Hls4mlBackend, Hls4mlParams
from trigml_fpga.testing import bdt_artifact, module_loader, save_model

N_HOLDOUT = 100_000


def _train(
    module: Any, x: np.ndarray, target: np.ndarray, loss: str, epochs: int
) -> None:
    import torch

    data = torch.from_numpy(x)
    goal = torch.from_numpy(target)
    optimiser = torch.optim.Adam(module.parameters(), lr=3e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(data)).split(1024):
            optimiser.zero_grad()
            out = module[:-1](data[idx]) if loss == "ce" else module(data[idx])
            if loss == "ce":
                value = torch.nn.functional.cross_entropy(out, goal[idx])
            else:
                value = torch.nn.functional.mse_loss(out, goal[idx])
            value.backward()
            optimiser.step()


def jet_tagger(folder: Path) -> tuple[Artifact, Any, np.ndarray]:
    """16 substructure-like features, 5 overlapping classes, MLP 16-64-32-32-5."""
    import torch
    from torch import nn

    rng = np.random.default_rng(7)
    n = 100_000 + N_HOLDOUT
    labels = rng.integers(0, 5, n)
    centres = rng.normal(0.0, 1.0, size=(5, 16))
    mixing = rng.normal(0.0, 0.4, size=(16, 16)) + np.eye(16)
    x = (centres[labels] + rng.normal(size=(n, 16)) @ mixing).astype(np.float32)
    offset, scale = x.mean(axis=0), x.std(axis=0)
    scaled = ((x - offset) / scale).astype(np.float32)

    torch.manual_seed(7)
    module = nn.Sequential(
        nn.Linear(16, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, 32),
        nn.ReLU(),
        nn.Linear(32, 5),
        nn.Softmax(dim=1),
    )
    _train(module, scaled[:100_000], labels[:100_000], "ce", epochs=8)
    return _save_torch(
        folder,
        module,
        x,
        scaled,
        labels,
        "jet-tagger",
        "multiclass",
        offset,
        scale,
        points=[
            WorkingPoint(name="tag50", threshold=0.5),
            WorkingPoint(name="tag80", threshold=0.8),
        ],
    )


def autoencoder(folder: Path) -> tuple[Artifact, Any, np.ndarray]:
    """57 event-level inputs (objects' pT, eta, phi, MET), AE 57-32-8-32-57."""
    import torch
    from torch import nn

    rng = np.random.default_rng(11)
    n = 100_000 + N_HOLDOUT
    pt = rng.exponential(20.0, size=(n, 19)) * rng.random((n, 19)).round()
    eta = rng.normal(0.0, 1.5, size=(n, 19)) * (pt > 0)
    phi = rng.uniform(-np.pi, np.pi, size=(n, 19)) * (pt > 0)
    x = np.concatenate([pt, eta, phi], axis=1).astype(np.float32)
    labels = np.zeros(n, dtype=np.int64)
    offset, scale = x.mean(axis=0), x.std(axis=0)
    scaled = ((x - offset) / scale).astype(np.float32)

    torch.manual_seed(11)
    module = nn.Sequential(
        nn.Linear(57, 32),
        nn.ReLU(),
        nn.Linear(32, 8),
        nn.ReLU(),
        nn.Linear(8, 32),
        nn.ReLU(),
        nn.Linear(32, 57),
    )
    _train(module, scaled[:100_000], scaled[:100_000], "mse", epochs=6)
    return _save_torch(
        folder,
        module,
        x,
        scaled,
        labels,
        "anomaly-ae",
        "anomaly",
        offset,
        scale,
        points=[],
    )


def _save_torch(
    folder: Path,
    module: Any,
    x: np.ndarray,
    scaled: np.ndarray,
    labels: np.ndarray,
    name: str,
    task: str,
    offset: np.ndarray,
    scale: np.ndarray,
    points: list[WorkingPoint],
) -> tuple[Artifact, Any, np.ndarray]:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    hold = slice(len(x) - N_HOLDOUT, len(x))
    with torch.no_grad():
        out = module.train(False)(torch.from_numpy(scaled[hold])).numpy()
    scores = (
        np.mean((out - scaled[hold]) ** 2, axis=1) if task == "anomaly" else out
    ).astype(np.float32)
    torch.save(module.state_dict(), folder / "model.pt")
    (folder / "arch.json").write_text('{"builder": "benchmark", "params": {}}')
    names = [f"f{i}" for i in range(x.shape[1])]
    artifact = save_model(
        folder,
        name=name,
        task=task,
        names=names,
        formats={"torch-state": "model.pt", "torch-arch": "arch.json"},
        holdout={"features": x[hold], "labels": labels[hold], "scores": scores},
        family="torch",
        scaling=(offset, scale),
        points=points,
        classes=[f"c{i}" for i in range(5)] if task == "multiclass" else None,
    )
    return artifact, module, scaled[hold]


def _float_rate(predict: Any, x: np.ndarray) -> float:
    began = time.perf_counter()
    predict(x)
    return len(x) / (time.perf_counter() - began)


def _export_twice(backend: Any, artifact: Artifact, out: Path) -> dict[str, Any]:
    began = time.perf_counter()
    first = backend.export(artifact, out / "first")
    first_s = time.perf_counter() - began
    began = time.perf_counter()
    backend.export(artifact, out / "second")
    second_s = time.perf_counter() - began
    report = first.report
    return {
        "report": report,
        "first_s": first_s,
        "second_s": second_s,
        "emulation_rate": report["timing"]["events_per_second"],
    }


def _row(name: str, precision: str, result: dict[str, Any], float_rate: float) -> str:
    report = result["report"]
    wps = ", ".join(
        f"{w['name']} {100 * w['agreement']:.3f}%" for w in report["working_points"]
    )
    top = report["consistency"].get("top_class_agreement")
    if top is not None:
        wps += f", top class {100 * top:.3f}%"
    est = report["estimates"]
    resources = f"{est.get('latency_cycles_estimate')} cycles, " + (
        f"{est['dsp_estimate']} DSP"
        if "multiplications" in est
        else f"{est.get('lut_estimate')} LUT / {est.get('ff_estimate')} FF"
    )
    rate = result["emulation_rate"] or 0.0
    return (
        f"| {name} | {precision} | {wps} | {result['first_s']:.1f} s | "
        f"{result['second_s']:.2f} s | {rate / 1e3:.0f}k/s ({float_rate / rate:.0f}× "
        f"slower than float) | {resources} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="work folder (default: a temp dir)")
    parser.add_argument("--no-scan", action="store_true", help="skip the scans")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = args.out or Path(tempfile.mkdtemp(prefix="fpga-targets-"))
    cache = str(work / "cache")
    rows = []
    scans = []

    import torch
    import xgboost as xgb

    torch.set_num_threads(1)

    artifact, module, scaled = jet_tagger(work / "jet")
    backend = Hls4mlBackend(
        Hls4mlParams(
            precision="ap_fixed<16,6>",
            cache_dir=cache,
            scan_precision=not args.no_scan,
            scan_max_trials=8,
        )
    )
    backend.module_loader = module_loader(module)
    with torch.no_grad():
        float_rate = _float_rate(lambda a: module(torch.from_numpy(a)), scaled)
    result = _export_twice(backend, artifact, work / "jet-export")
    rows.append(_row("MLP 16-64-32-32-5", "ap_fixed<16,6>", result, float_rate))
    scans.append(("MLP 16-64-32-32-5", result["report"].get("scan")))

    artifact = bdt_artifact(work / "bdt", n_trees=100, depth=4, n=2 * N_HOLDOUT)
    booster = xgb.Booster()
    booster.load_model(artifact.file("xgboost-json"))
    booster.set_param({"nthread": 1})
    x = artifact.holdout()["features"]
    float_rate = _float_rate(lambda a: booster.inplace_predict(a), x)
    backend = ConiferBackend(
        ConiferParams(
            precision="ap_fixed<18,8>",
            cache_dir=cache,
            scan_precision=not args.no_scan,
            scan_max_trials=8,
        )
    )
    result = _export_twice(backend, artifact, work / "bdt-export")
    rows.append(_row("BDT 100 trees, depth 4", "ap_fixed<18,8>", result, float_rate))
    scans.append(("BDT 100 trees, depth 4", result["report"].get("scan")))

    artifact, module, scaled = autoencoder(work / "ae")
    backend = Hls4mlBackend(Hls4mlParams(precision="ap_fixed<16,6>", cache_dir=cache))
    backend.module_loader = module_loader(module)
    with torch.no_grad():
        float_rate = _float_rate(lambda a: module(torch.from_numpy(a)), scaled)
    result = _export_twice(backend, artifact, work / "ae-export")
    rows.append(_row("AE 57-32-8-32-57", "ap_fixed<16,6>", result, float_rate))

    print(f"Held-out events per model: {N_HOLDOUT:,}; work folder {work}\n")
    print(
        "| model | type | decision agreement | first export | second export "
        "| emulation (peer: float model, 1 thread) | estimates |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(row)
    for name, scan in scans:
        if not scan or not scan.get("trials"):
            continue
        tried = ", ".join(
            f"{t['precision'].replace(',AP_RND,AP_SAT', '')} "
            f"{100 * t['agreement']:.3f}%"
            for t in scan["trials"]
        )
        print(
            f"\nScan {name} (target {100 * scan['target_agreement']:.1f}%): "
            f"narrowest passing {scan['best']}; tried {tried}"
        )


if __name__ == "__main__":
    main()
