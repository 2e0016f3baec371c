"""Measure the targets of the CMS algorithms on the built-in simulations.

EMTF: one BDT per single-muon mode (15, 14, 13, 11) regresses 1/pT; each mode's lookup
table is filled from its BDT; the BDT, the table and the analytic Δφ assignment are
compared at the L1 threshold where each turn-on reaches 90% at 22 GeV, on a
zero-bias-like sample. DeepCSV: the 4×100 network over the 66 inputs against the
CSV-like likelihood ratio, at 10, 1 and 0.1% light-jet mistag.

Run::

    .venv/bin/python plugins/trigml-cms/benchmarks/cms_targets.py --out /tmp/cms-bench

``--quick`` shrinks every sample for a smoke test (the numbers are then not the
targets). Results go to ``<out>/cms_targets.json`` and the figures next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from trigml.components import TrainingSet
from trigml_cms.btag_sim import BtagSimParams, BtagSimSource
from trigml_cms.deepcsv import (
    CsvLikelihood,
    DeepCsvAlgorithm,
    b_discriminant,
    tagging_performance,
)
from trigml_cms.emtf import SINGLE_MU_MODES, EmtfAlgorithm, EmtfParams, pt_from_invpt
from trigml_cms.emtf_report import compare_assignments
from trigml_cms.emtf_sim import EmtfSimParams, EmtfSimSource
from trigml_cms.lut_backend import check_table, xgboost_trees
from trigml_cms.packing import (
    fill_from_trees,
    invpt_to_pt_code,
    lookup,
    pt_code_to_invpt,
)

log = logging.getLogger("cms_targets")

SIZES = {
    "full": {"emtf_train": 1_500_000, "emtf_eff": 1_500_000, "emtf_zb": 3_000_000,
             "trees": 400, "btag_train": 600_000, "btag_test": 300_000, "epochs": 40},
    "quick": {"emtf_train": 150_000, "emtf_eff": 150_000, "emtf_zb": 200_000,
              "trees": 40, "btag_train": 40_000, "btag_test": 20_000, "epochs": 3},
}  # fmt: skip


def _fit_bdt(train: TrainingSet, trees: int, seed: int) -> tuple[Any, Any]:
    """Fit a 1/pT regression; through trigml_xgboost when it is installed.

    Returns the prediction function and the xgboost booster.
    """
    fit, valid = train.split(0.2, seed)
    try:
        from trigml_xgboost.family import XGBoostFamily
        from trigml_xgboost.params import XGBoostParams
    except ImportError:
        XGBoostFamily = None
    if XGBoostFamily is not None:
        params = XGBoostParams(
            n_estimators=trees, max_depth=5, learning_rate=0.1, n_threads=2,
            early_stopping_rounds=30, min_child_weight=5.0,
        )  # fmt: skip
        model = XGBoostFamily(params).fit(fit, valid, seed=seed)
        return model.predict, model.model.booster
    import xgboost as xgb

    booster = xgb.train(
        {"max_depth": 5, "eta": 0.1, "nthread": 2, "objective": "reg:squarederror",
         "min_child_weight": 5.0, "seed": seed},
        xgb.DMatrix(fit.features, label=fit.labels),
        trees,
    )  # fmt: skip
    return (lambda x: booster.inplace_predict(x)), booster


def emtf(sizes: dict[str, int], address_bits: int, out: Path) -> dict[str, Any]:
    """Per-mode BDTs and tables against the analytic assignment."""
    flat = EmtfSimSource(EmtfSimParams(n_events=sizes["emtf_eff"], seed=202)).events()
    zb_params = EmtfSimParams(n_events=sizes["emtf_zb"], seed=303, spectrum="falling")
    zero_bias = EmtfSimSource(zb_params).events()
    train_source = EmtfSimSource(EmtfSimParams(n_events=sizes["emtf_train"], seed=101))

    names = ("BDT", "LUT", "analytic")
    eff = {n: np.zeros(len(flat)) for n in names}
    rate = {n: np.zeros(len(zero_bias)) for n in names}
    result: dict[str, Any] = {"address_bits": address_bits, "modes": {}}
    for mode in SINGLE_MU_MODES:
        t0 = time.perf_counter()
        alg = EmtfAlgorithm(EmtfParams(mode=mode, address_bits=address_bits))
        train = alg.training_set(train_source, seed=1)
        predict, booster = _fit_bdt(train, sizes["trees"], seed=1)
        t_fit = time.perf_counter() - t0

        t1 = time.perf_counter()
        trees, base = xgboost_trees(json.loads(booster.save_raw("json")))
        codes, meta = fill_from_trees(trees, base, alg.packing, predict)
        t_fill = time.perf_counter() - t1
        table = pt_code_to_invpt(codes)
        edges = alg.packing.edges_arrays()
        checked = check_table(table, edges, alg.packing, predict, 1 << 22, seed=mode)

        per_mode: dict[str, Any] = {
            "n_train": len(train),
            "fields": [f"{f.name}:{f.bits}" for f in alg.packing.fields],
            "fit_seconds": t_fit,
            "fill_seconds": t_fill,
            "fill_addresses_per_second": meta["n_addresses"] / t_fill,
            "fill_method": meta["method"],
            "reevaluated_near_word_boundaries": meta["reevaluated"],
            "memory_bytes": meta["memory_bytes"],
            "address_check": checked,
        }
        assert alg.analytic is not None
        mode_eff = {n: np.zeros(len(flat)) for n in names}
        for sample, target, mode_target in (
            (flat, eff, mode_eff),
            (zero_bias, rate, None),
        ):
            cands = alg.candidates(sample)
            invpt_bdt = predict(cands.features)
            invpt_lut = lookup(table, edges, cands.features)
            values = {
                "BDT": pt_from_invpt(invpt_bdt),
                "LUT": pt_from_invpt(invpt_lut),
                "analytic": alg.analytic.predict_pt(
                    cands.aux["theta"], cands.aux["dphi_first"]
                ),
            }
            for n in names:
                target[n][cands.event_index] = values[n]
                if mode_target is not None:
                    mode_target[n][cands.event_index] = values[n]
            if sample is flat:
                same = invpt_to_pt_code(invpt_bdt) == invpt_to_pt_code(invpt_lut)
                per_mode["lut_vs_bdt_word_agreement_tracks"] = float(same.mean())
        if mode == 15:
            in_mode = np.asarray(flat["mode"]) == 15
            per_mode["comparison"] = compare_assignments(
                {n: mode_eff[n][in_mode] for n in names},
                np.asarray(flat.mu_pt)[in_mode],
                rate_assigned={
                    n: np.where(np.asarray(zero_bias["mode"]) == 15, rate[n], 0.0)
                    for n in names
                },
                rate_pt=np.asarray(zero_bias.mu_pt),
                out_dir=out / "emtf_mode15",
                label="EMTF mode 15",
            )
        result["modes"][mode] = per_mode
        log.info(
            "mode %d: %d tracks, fit %.0f s, %d-bit table filled in %.0f s, "
            "address agreement %.6f",
            mode, len(train), t_fit, meta["address_bits"], t_fill,
            checked["pt_word_agreement"],
        )  # fmt: skip
    # Efficiencies relative to muons with a single-muon-quality track (the plateau).
    tracked = np.isin(np.asarray(flat["mode"]), SINGLE_MU_MODES)
    result["single_mu"] = compare_assignments(
        {n: eff[n][tracked] for n in names},
        np.asarray(flat.mu_pt)[tracked],
        rate_assigned=rate,
        rate_pt=np.asarray(zero_bias.mu_pt),
        out_dir=out / "emtf_single_mu",
        label="EMTF modes 15, 14, 13, 11",
    )
    return result


def deepcsv(sizes: dict[str, int], out: Path) -> dict[str, Any]:
    """The 4×100 DNN against the CSV-like likelihood ratio."""
    from trigml_torch.family import TorchFamily
    from trigml_torch.specs import TorchParams

    alg = DeepCsvAlgorithm()
    data = alg.training_set(
        BtagSimSource(BtagSimParams(n_events=sizes["btag_train"], seed=404)), seed=1
    )
    train, valid = data.split(0.2, 1)
    params = TorchParams.model_validate(
        {
            "arch": {"builder": "mlp", "params": {"hidden": [100, 100, 100, 100]}},
            "epochs": sizes["epochs"],
            "batch_size": 1024,
            "lr": 1e-3,
            "patience": 6,
            "threads": 1,
        }
    )
    t0 = time.perf_counter()
    model = TorchFamily(params).fit(train, valid, seed=1)
    t_fit = time.perf_counter() - t0
    csv = CsvLikelihood().fit(train.features, train.names, train.labels)

    test = alg.training_set(
        BtagSimSource(BtagSimParams(n_events=sizes["btag_test"], seed=505)), seed=1
    )
    disc = {
        "DeepCSV": b_discriminant(model.predict(test.features)),
        "CSV-like LR": csv.predict(test.features, test.names),
    }
    perf = tagging_performance(disc, test.labels, out / "deepcsv")
    medium = {k: perf[k]["working_points"]["medium"]["b_efficiency"] for k in disc}
    perf["b_efficiency_gain_at_1pc_light"] = medium["DeepCSV"] - medium["CSV-like LR"]
    perf["fit_seconds"] = t_fit
    perf["n_train"] = len(train)
    perf["n_test"] = len(test)
    return perf


def _print(results: dict[str, Any]) -> None:
    lines = []
    if "emtf" in results:
        r = results["emtf"]
        for label, block in (
            ("mode 15", r["modes"][15]["comparison"]),
            ("modes 15/14/13/11", r["single_mu"]),
        ):
            lines.append(
                f"EMTF {label}: L1 threshold for 90% at 22 GeV, rate, resolution"
            )
            for name in ("BDT", "LUT", "analytic"):
                e = block[name]
                lines.append(
                    f"  {name:9s} thr {e['threshold_gev']:6.1f} GeV  "
                    f"eff {e['efficiency_at']:.3f}  "
                    f"rate {e['rate_hz'] / 1e3:6.2f} kHz "
                    f"(at 90%: {e['rate_hz_at_90'] / 1e3:6.2f})  "
                    f"σ(1/pT) {e['invpt_resolution_15_30']:.3f}"
                )
            for k, v in block["rate_ratio"].items():
                lines.append(f"  rate ratio {k}: {v:.2f}")
        for mode, m in r["modes"].items():
            lines.append(
                f"  mode {mode}: {m['address_check']['addresses_checked']} "
                "addresses checked, "
                f"word agreement {m['address_check']['pt_word_agreement']:.6f}; "
                f"memory {m['memory_bytes'] / 2**20:.1f} MiB"
            )
    if "deepcsv" in results:
        d = results["deepcsv"]
        lines.append("DeepCSV working points (b efficiency / c mistag / light mistag)")
        for tagger in ("DeepCSV", "CSV-like LR"):
            wps = d[tagger]["working_points"]
            cells = "  ".join(
                f"{wp} {v['b_efficiency']:.3f}/{v['c_mistag']:.3f}/"
                f"{v['light_mistag']:.4f}"
                for wp, v in wps.items()
            )
            lines.append(
                f"  {tagger:12s} {cells}  AUC(b,l) {d[tagger]['auc_b_vs_light']:.4f}"
            )
        lines.append(f"  gain at 1% light: {d['b_efficiency_gain_at_1pc_light']:+.3f}")
    sys.stdout.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", choices=("emtf", "deepcsv", "all"), default="all")
    parser.add_argument("--address-bits", type=int, default=24)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sizes = SIZES["quick" if args.quick else "full"]
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {"sizes": sizes, "quick": args.quick}
    if args.part in ("emtf", "all"):
        results["emtf"] = emtf(sizes, args.address_bits, args.out)
    if args.part in ("deepcsv", "all"):
        results["deepcsv"] = deepcsv(sizes, args.out)
    path = args.out / f"cms_targets_{args.part}.json"
    path.write_text(json.dumps(results, indent=2, default=float) + "\n")
    _print(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
