"""The ``cms.emtf_lut`` backend: the EMTF pT lookup table, filled from a trained BDT.

``export`` fills the table of a ``cms.emtf`` artifact's BDT on every address of its
mode's packing (walking the trees over boxes of the address grid, or evaluating the
BDT address by address) and writes a new artifact whose model is the table (``lut``:
``lut.npz`` with ``table``, float32 1/pT of the hardware pT word, one axis per address
field, and ``edges_<i>`` per field). It checks the table against the BDT on addresses
and on the held-out tracks and writes ``consistency.json``. ``load`` runs such a table:
one lookup per track.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from trigml.artifact import HOLDOUT_FILE, Artifact, read_npz, save_artifact
from trigml.components import Backend, ExportResult, Scorer
from trigml.errors import ModelError
from trigml.registry import Params
from trigml_cms.packing import (
    PT_LSB_GEV,
    Packing,
    build_lut,
    fill_from_trees,
    invpt_to_pt_code,
    lookup,
    pt_code_to_invpt,
)

__all__ = [
    "LUT_FILE",
    "EmtfLutBackend",
    "EmtfLutParams",
    "LutScorer",
    "bdt_predictor",
    "check_table",
    "packing_of",
    "xgboost_trees",
]

log = logging.getLogger(__name__)

LUT_FILE = "lut.npz"


class EmtfLutParams(Params):
    """Parameters of ``cms.emtf_lut``.

    Attributes
    ----------
    method : {"auto", "trees", "evaluate"}
        ``trees`` adds each leaf of the BDT to its box of the address grid (one pass
        over the table per tree; xgboost regression models), ``evaluate`` runs the
        BDT on every address; ``auto`` takes ``trees`` where it applies.
    chunk : int
        Addresses evaluated per call of the BDT with ``evaluate``.
    check_addresses : int
        Addresses re-evaluated to check the table; every address when the table has
        no more than this many.
    threads : int
        xgboost threads while filling the table.
    seed : int
        Seed of the sample of addresses checked.
    """

    method: Literal["auto", "trees", "evaluate"] = "auto"
    chunk: int = Field(1 << 20, gt=0)
    check_addresses: int = Field(1 << 22, gt=0)
    threads: int = Field(2, gt=0)
    seed: int = 0


def packing_of(artifact: Artifact) -> Packing:
    """The address packing of a ``cms.emtf`` artifact, rebuilt from its card.

    Raises
    ------
    ModelError
        The artifact is not a ``cms.emtf`` model, or its features do not match the
        packing its parameters give.
    """
    from trigml_cms.emtf import EmtfParams, mode_packing

    card = artifact.card
    if card.algorithm != "cms.emtf":
        raise ModelError(
            f"model '{card.name}' at {artifact.path} was trained for "
            f"'{card.algorithm}'; "
            "the EMTF lookup table needs a 'cms.emtf' model"
        )
    params = EmtfParams.model_validate(card.algorithm_params)
    packing = mode_packing(params.mode, params.address_bits, params.field_bits)
    if packing.names != card.feature_names:
        raise ModelError(
            f"model '{card.name}': features {card.feature_names} do not match the "
            f"address fields {packing.names} of mode {params.mode}"
        )
    return packing


def bdt_predictor(
    artifact: Artifact, threads: int = 1
) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(features) -> 1/pT`` of the float BDT of an artifact (xgboost JSON)."""
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(artifact.file("xgboost-json")))
    booster.set_param({"nthread": threads})

    def predict(features: np.ndarray) -> np.ndarray:
        scaled = artifact.scale(features)
        raw = booster.inplace_predict(scaled, validate_features=False)
        return artifact.to_scores(np.asarray(raw), scaled)

    return predict


#: xgboost objectives whose output is the plain sum of leaves (identity link).
_IDENTITY_OBJECTIVES = ("reg:squarederror", "reg:pseudohubererror", "reg:absoluteerror")


def xgboost_trees(model_json: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """Trees and base score of a single-output identity-link xgboost JSON model.

    Raises
    ------
    ModelError
        The model is not a single-output regression with an identity link.
    """
    try:
        learner = model_json["learner"]
        objective = learner["objective"]["name"]
        param = learner["learner_model_param"]
        trees = learner["gradient_booster"]["model"]["trees"]
    except (KeyError, TypeError) as exc:
        raise ModelError(f"not an xgboost JSON model: missing {exc}") from None
    if objective not in _IDENTITY_OBJECTIVES or int(param.get("num_target", 1)) != 1:
        raise ModelError(
            f"tree filling needs a single-output regression with an identity link; "
            f"the model has objective '{objective}'",
            hint="set the backend's 'method: evaluate'",
        )
    base = [float(v) for v in str(param["base_score"]).strip("[]").split(",")]
    return trees, base[0]


class LutScorer(Scorer):
    """Scores tracks by table lookup: the 1/pT of the hardware pT word."""

    def __init__(self, artifact: Artifact) -> None:
        self.name = artifact.card.name
        arrays = read_npz(artifact.file("lut"))
        self.table = arrays["table"]
        self.edges = {k: v for k, v in arrays.items() if k.startswith("edges_")}
        if len(self.edges) != self.table.ndim:
            raise ModelError(
                f"model '{self.name}': {LUT_FILE} has {self.table.ndim} table axes but "
                f"{len(self.edges)} edge arrays"
            )

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.table.ndim:
            raise ModelError(
                f"model '{self.name}': the table takes {self.table.ndim} features per "
                f"track, got an array of shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ModelError(f"model '{self.name}': NaN or infinite feature values")
        return lookup(self.table, self.edges, x).astype(np.float32)


def check_table(
    table_invpt: np.ndarray,
    edges: dict[str, np.ndarray],
    packing: Packing,
    predict: Callable[[np.ndarray], np.ndarray],
    n_check: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare the table with the model on addresses, by hardware pT word.

    Every address is checked when there are at most ``n_check``; otherwise a seeded
    random sample of ``n_check`` addresses. The features of an address are decoded
    and looked up through the edges, as a scorer does, so the check covers the
    packing, the fill and the lookup.
    """
    n = packing.n_addresses
    if n <= n_check:
        address = np.arange(n, dtype=np.int64)
    else:
        address = np.random.default_rng(seed).integers(0, n, n_check, dtype=np.int64)
    features = packing.decode_codes(packing.unpack(address))
    expected = invpt_to_pt_code(predict(features))
    got = invpt_to_pt_code(lookup(table_invpt, edges, features))
    same = expected == got
    bad = np.flatnonzero(~same)[:10]
    return {
        "addresses_checked": len(address),
        "all_addresses": bool(n <= n_check),
        "pt_word_agreement": float(same.mean()),
        "mismatches": [
            {
                "address": int(address[i]),
                "bdt_word": int(expected[i]),
                "table_word": int(got[i]),
            }
            for i in bad
        ],
    }


def _turn_on_point(name: str) -> float | None:
    """The true pT (GeV) of a working point named ``eff90at<pt>``, else None."""
    prefix = "eff90at"
    if name.startswith(prefix) and name[len(prefix) :].isdigit():
        return float(name[len(prefix) :])
    return None


class EmtfLutBackend(Backend):
    """Runs EMTF pT lookup tables and fills them from BDTs (``cms.emtf_lut``)."""

    name = "cms.emtf_lut"

    def __init__(self, params: EmtfLutParams | None = None) -> None:
        self.params = params or EmtfLutParams()

    def formats(self) -> Sequence[str]:
        return ["lut"]

    def load(self, artifact: Artifact) -> Scorer:
        if "lut" not in artifact.card.formats:
            raise ModelError(
                f"model '{artifact.card.name}' at {artifact.path} has no lookup table",
                hint="fill one first: 'trigml export' with backend cms.emtf_lut",
            )
        return LutScorer(artifact)

    def export(self, artifact: Artifact, out_dir: Path) -> ExportResult:
        """Fill the table from the artifact's BDT and check it.

        Writes ``out_dir/model`` (an artifact with the table, the card of the BDT
        and its held-out sample) and ``out_dir/consistency.json``.
        """
        p = self.params
        packing = packing_of(artifact)
        predict = bdt_predictor(artifact, p.threads)
        t0 = time.perf_counter()
        codes, meta = self._fill(artifact, packing, predict)
        fill_s = time.perf_counter() - t0
        table = pt_code_to_invpt(codes)
        edges = packing.edges_arrays()

        model_dir = out_dir / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(model_dir / LUT_FILE, table=table, **edges)
        if (artifact.path / HOLDOUT_FILE).exists():
            shutil.copy2(artifact.path / HOLDOUT_FILE, model_dir / HOLDOUT_FILE)
        meta["file_bytes"] = (model_dir / LUT_FILE).stat().st_size
        meta["fill_seconds"] = fill_s
        meta["filled_from"] = {
            "model": artifact.card.name,
            "sha256": artifact.content_hash,
        }
        card = artifact.card.model_copy(
            update={
                "name": f"{artifact.card.name}-lut",
                "formats": {"lut": LUT_FILE},
                "metrics": {**artifact.card.metrics, "lut": meta},
                "notes": [
                    *artifact.card.notes,
                    f"Lookup table filled from '{artifact.card.name}' on all "
                    f"{packing.n_addresses} addresses ({packing.address_bits} bits); "
                    f"the table words are {meta['word_bits']}-bit pT in "
                    f"{meta['pt_lsb_gev']} GeV steps, stored as float32 1/pT.",
                ],
            }
        )
        lut_artifact = save_artifact(model_dir, card)

        report = self._report(artifact, lut_artifact, packing, table, edges, predict)
        report["lut"] = meta
        path = out_dir / "consistency.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        return ExportResult(directory=out_dir, files=[model_dir, path], report=report)

    def _fill(
        self,
        artifact: Artifact,
        packing: Packing,
        predict: Callable[[np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, dict[str, Any]]:
        method = self.params.method
        if method in ("auto", "trees"):
            try:
                doc = json.loads(artifact.file("xgboost-json").read_text())
                trees, base = xgboost_trees(doc)
            except ModelError:
                if method == "trees":
                    raise
                log.info("filling the table address by address")
            else:
                offset = np.array([f.offset for f in artifact.card.features])
                scale = np.array([f.scale for f in artifact.card.features])
                return fill_from_trees(
                    trees,
                    base,
                    packing,
                    predict,
                    feature_offset=offset,
                    feature_scale=scale,
                )
        if packing.address_bits > 26:
            log.warning(
                "evaluating the BDT on %d addresses; expect a long run",
                packing.n_addresses,
            )
        return build_lut(predict, packing, chunk=self.params.chunk)

    def _report(
        self,
        artifact: Artifact,
        lut_artifact: Artifact,
        packing: Packing,
        table: np.ndarray,
        edges: dict[str, np.ndarray],
        predict: Callable[[np.ndarray], np.ndarray],
    ) -> dict[str, Any]:
        from trigml.metrics import score_difference_quantiles

        report: dict[str, Any] = {
            "model": artifact.card.name,
            "backend": self.name,
            "addresses": check_table(
                table,
                edges,
                packing,
                predict,
                self.params.check_addresses,
                self.params.seed,
            ),
        }
        if not (artifact.path / HOLDOUT_FILE).exists():
            return report
        hold = artifact.holdout()
        features = hold["features"]
        pt_true = hold.get("aux_mu_pt")
        scorer = LutScorer(lut_artifact)
        t0 = time.perf_counter()
        deployed = scorer.predict(features)
        seconds = time.perf_counter() - t0
        reference = np.asarray(predict(features))
        word_ref, word_lut = invpt_to_pt_code(reference), invpt_to_pt_code(deployed)
        points = []
        for wp in artifact.card.working_points:
            # Decisions cut on hardware pT words (as cms.emtf decides): the BDT's own
            # word and the table's must agree on every track.
            ref_pass = word_ref * PT_LSB_GEV >= wp.threshold
            lut_pass = word_lut * PT_LSB_GEV >= wp.threshold
            entry: dict[str, Any] = {
                "name": wp.name,
                "threshold": wp.threshold,
                "agreement": float((ref_pass == lut_pass).mean()),
                "flips_to_pass": int((~ref_pass & lut_pass).sum()),
                "flips_to_fail": int((ref_pass & ~lut_pass).sum()),
            }
            at = _turn_on_point(wp.name)
            if pt_true is not None and at is not None:
                window = np.abs(pt_true - at) < 1.0
                if window.any():
                    entry["signal_efficiency_float"] = float(ref_pass[window].mean())
                    entry["signal_efficiency_deployed"] = float(lut_pass[window].mean())
            points.append(entry)
        report.update(
            {
                "n": len(features),
                "pt_word_agreement": float((word_ref == word_lut).mean()),
                "score_difference": {
                    str(q): v
                    for q, v in score_difference_quantiles(reference, deployed).items()
                },
                "max_abs_difference": float(np.max(np.abs(reference - deployed))),
                "working_points": points,
                "throughput_events_per_second": len(features) / seconds
                if seconds
                else 0.0,
            }
        )
        if points:
            report["min_agreement"] = min(p["agreement"] for p in points)
        return report
