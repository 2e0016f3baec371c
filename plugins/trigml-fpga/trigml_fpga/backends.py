"""The ``fpga.hls4ml`` and ``fpga.conifer`` backends.

``load`` returns a scorer that runs the compiled firmware emulation on the CPU, so a
menu line runs on ``fpga.*`` exactly like on ``cpu.*``. ``export`` writes the HLS
project, the emulated scores, a consistency report against the float model (JSON and
PNG), the resource and latency estimates and, on request, a precision scan.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from trigml.components import Backend, ExportResult, Scorer
from trigml.errors import ConfigError, DataError, ModelError
from trigml_fpga.cache import cache_key, cache_root, cached_build
from trigml_fpga.consistency import (
    N_FLIPS_LISTED,
    DecisionPoint,
    agreement_summary,
    consistency_report,
    decision_points,
)
from trigml_fpga.emulation import SOURCE_FINGERPRINT
from trigml_fpga.fixed import FixedType, parse_fixed
from trigml_fpga.params import ConiferParams, Hls4mlParams
from trigml_fpga.toolchain import compiler_identity

__all__ = [
    "EMULATION_VERSION",
    "ConiferBackend",
    "FirmwareScorer",
    "Hls4mlBackend",
]

log = logging.getLogger(__name__)

#: Changes whenever the generated C++ or the cache layout changes.
EMULATION_VERSION = 1

#: Held-out rows written as C-simulation test vectors into the HLS project.
N_TESTBENCH = 100


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _project_name(model: str) -> str:
    """A C identifier for the top function, from the model name."""
    name = re.sub(r"\W+", "_", model).strip("_").lower() or "model"
    return name if name[0].isalpha() else f"m_{name}"


def _apply_link(raw: np.ndarray, link: str | None) -> np.ndarray:
    from scipy import special

    if link == "sigmoid":
        return special.expit(raw)
    if link == "softmax":
        return special.softmax(raw, axis=1)
    if link == "exp":
        return np.exp(raw)
    return raw


class FirmwareScorer(Scorer):
    """Scores from a compiled firmware emulation.

    ``predict`` applies the card's scaling, the per-feature input shifts (BDTs), runs
    the fixed-point C++, applies the output link the firmware leaves to software
    (sigmoid or softmax of logits or margins) and the card's score definition.
    """

    def __init__(
        self,
        artifact: Any,
        emulator: Any,
        *,
        backend: str,
        link: str | None = None,
        shifts: np.ndarray | None = None,
    ) -> None:
        self.artifact = artifact
        self.emulator = emulator
        self.backend = backend
        self.link = link
        self.n_features = len(artifact.card.features)
        self.factors = (
            None
            if shifts is None or not np.any(shifts)
            else np.ldexp(1.0, -np.asarray(shifts, dtype=int))
        )

    def _check(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features)
        name = self.artifact.card.name
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ModelError(
                f"model '{name}' on backend '{self.backend}' expects "
                f"{self.n_features} features, got shape {features.shape}"
            )
        if not np.isfinite(features).all():
            raise DataError(
                f"model '{name}' on backend '{self.backend}': non-finite input "
                "features (firmware has no NaN or infinity)"
            )
        return features

    def firmware_inputs(self, scaled: np.ndarray) -> np.ndarray:
        """What the firmware reads: scaled features, shifted per feature (float64)."""
        x = np.asarray(scaled, dtype=np.float64)
        return x * self.factors if self.factors is not None else x

    def firmware_outputs(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scaled features and the raw firmware outputs (logits, margins, values)."""
        scaled = self.artifact.scale(self._check(features))
        return scaled, self.emulator.predict(self.firmware_inputs(scaled))

    def predict(self, features: np.ndarray) -> np.ndarray:
        # TODO(ae-score): an autoencoder's error is summed in float here from the
        # emulated reconstruction; anomaly firmware would sum it in fixed point.
        scaled, raw = self.firmware_outputs(features)
        return self.artifact.to_scores(_apply_link(raw, self.link), scaled)


@dataclass
class Compiled:
    """A firmware emulation found in or added to the cache.

    Attributes
    ----------
    scorer : FirmwareScorer
    project_dir : Path
        The HLS project in the cache.
    meta : dict
        What the cache entry remembers (sizes, estimates, layer types).
    cache_hit : bool
        Nothing had to be compiled.
    output_type : str or None
        Fixed-point type of the firmware output.
    results_dir : Path
        Where emulated outputs of held-out samples are kept.
    results_tag : str
        Suffix naming the compiled library the outputs came from.
    """

    scorer: FirmwareScorer
    project_dir: Path
    meta: dict[str, Any]
    cache_hit: bool
    output_type: str | None
    results_dir: Path
    results_tag: str = ""


class _FpgaBackend(Backend):
    """What both FPGA backends share: caching, export, consistency, scan."""

    params: Any
    min_integer_bits = 1

    def _precision(self) -> FixedType:
        return parse_fixed(self.params.precision, key="precision").with_safe_modes()

    def _compile(self, artifact: Any, precision: FixedType) -> Compiled:
        raise NotImplementedError

    def _firmware(self, precision: FixedType) -> dict[str, Any]:
        raise NotImplementedError

    def _extra_report(
        self,
        artifact: Any,
        compiled: Compiled,
        scaled: np.ndarray,
        scores: np.ndarray,
    ) -> dict[str, Any]:
        """Backend-specific sections of the report."""
        return {}

    def load(self, artifact: Any) -> Scorer:
        """Compile (or find in the cache) the emulation of ``artifact``."""
        return self._compile(artifact, self._precision()).scorer

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, **self.params.model_dump(exclude_none=True)}

    def _root(self) -> Path:
        return cache_root(self.params.cache_dir)

    def export(self, artifact: Any, out_dir: Path) -> ExportResult:
        """Write the HLS project, emulated scores, consistency report and estimates.

        Raises
        ------
        ModelError
            The artifact has no held-out sample, or its model cannot be converted.
        ToolchainError
            g++ or a header is missing.
        """
        started = time.perf_counter()
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        card = artifact.card
        features, labels, float_scores = _held_out(artifact, self.params.n_check)

        precision = self._precision()
        compiled = self._compile(artifact, precision)
        scaled, raw, seconds = _holdout_outputs(compiled, artifact, features)
        firmware_scores = artifact.to_scores(
            _apply_link(raw, compiled.scorer.link), scaled
        )
        if firmware_scores.shape != float_scores.shape:
            raise ModelError(
                f"model '{card.name}': firmware scores have shape "
                f"{firmware_scores.shape}, the held-out float scores "
                f"{float_scores.shape}"
            )

        points = decision_points(card, float_scores, labels)
        consistency = consistency_report(
            float_scores=float_scores,
            firmware_scores=firmware_scores,
            labels=labels,
            features=features,
            feature_names=card.feature_names,
            points=points,
            task=card.task,
            target_agreement=self.params.target_agreement,
        )
        scan = None
        if self.params.scan_precision:
            scan = self._scan(artifact, precision, features, float_scores, points)

        files = self._write_project(compiled, out_dir, scaled, raw)
        narrow = raw.astype(np.float32)
        np.savez(
            out_dir / "emulated_scores.npz",
            float_scores=float_scores,
            firmware_scores=firmware_scores,
            # float32 when that holds every firmware value exactly
            firmware_outputs=narrow if np.array_equal(narrow, raw) else raw,
            labels=labels,
        )
        files.append(out_dir / "emulated_scores.npz")
        report = {
            **_summary(consistency),
            "model": card.name,
            "backend": self.name,
            "task": card.task,
            "features": card.feature_names,
            "firmware": self._firmware(precision),
            "project": compiled.meta.get("project"),
            "cache": {
                "hit": compiled.cache_hit,
                "compile_seconds": (
                    None if compiled.cache_hit else compiled.meta.get("compile_seconds")
                ),
            },
            "timing": _timing(len(features), seconds),
            "consistency": consistency,
            "firmware_cuts": self._firmware_cuts(compiled, points),
            "estimates": compiled.meta.get("estimates", {}),
            "scan": scan,
            "versions": _versions(),
            **self._extra_report(artifact, compiled, scaled, float_scores),
        }
        files += self._plots(
            report, compiled, artifact, float_scores, firmware_scores, out_dir
        )
        files += _write_report(report, out_dir, files, started)
        log.info(
            "exported '%s' with %s to %s in %.2f s",
            card.name,
            self.name,
            out_dir,
            report["export_seconds"],
        )
        return ExportResult(directory=out_dir, files=files, report=report)

    def _firmware_cuts(
        self, compiled: Compiled, points: Sequence[DecisionPoint]
    ) -> list[dict[str, Any]]:
        """Working points as cuts on the firmware output (binary sigmoid models)."""
        meta = compiled.meta
        if compiled.scorer.link != "sigmoid" or meta.get("n_outputs") != 1:
            return []
        if compiled.output_type is None:
            return []
        out_t = parse_fixed(compiled.output_type)
        quantity = "margin" if self.name == "fpga.conifer" else "logit"
        cuts = []
        for p in points:
            if not 0.0 < p.threshold < 1.0:
                continue
            logit = float(np.log(p.threshold / (1.0 - p.threshold)))
            cuts.append(
                {
                    "name": p.name,
                    "threshold": p.threshold,
                    "quantity": quantity,
                    "logit": logit,
                    "grid_value": float(out_t.quantise(logit, ceil=True)),
                    "output_type": out_t.cpp(),
                }
            )
        return cuts

    def _scan(
        self,
        artifact: Any,
        start: FixedType,
        features: np.ndarray,
        float_scores: np.ndarray,
        points: Sequence[DecisionPoint],
    ) -> dict[str, Any]:
        from trigml_fpga.scan import scan_precision

        if not points and float_scores.ndim == 1:
            return {"skipped": "no working point to compare decisions at", "trials": []}

        def evaluate(precision: FixedType) -> float:
            compiled = self._compile(artifact, precision)
            scaled, raw, _ = _holdout_outputs(compiled, artifact, features)
            scores = artifact.to_scores(_apply_link(raw, compiled.scorer.link), scaled)
            value = agreement_summary(float_scores, scores, points)
            return 0.0 if value is None else value

        result = scan_precision(
            evaluate,
            start,
            self.params.target_agreement,
            max_trials=self.params.scan_max_trials,
            min_integer=self.min_integer_bits,
        )
        return result.to_dict()

    def _write_project(
        self, compiled: Compiled, out_dir: Path, inputs: np.ndarray, raw: np.ndarray
    ) -> list[Path]:
        target = out_dir / "hls"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(
            compiled.project_dir,
            target,
            ignore=shutil.ignore_patterns("*.so", "*.o", "compile.log", "__pycache__"),
        )
        tb = target / "tb_data"
        tb.mkdir(exist_ok=True)
        rows = slice(0, N_TESTBENCH)
        firmware_in = compiled.scorer.firmware_inputs(inputs[rows])
        np.savetxt(tb / "tb_input_features.dat", firmware_in, fmt="%.17g")
        np.savetxt(tb / "tb_output_predictions.dat", raw[rows], fmt="%.17g")
        return [target]

    def _plots(
        self,
        report: dict[str, Any],
        compiled: Compiled,
        artifact: Any,
        float_scores: np.ndarray,
        firmware_scores: np.ndarray,
        out_dir: Path,
    ) -> list[Path]:
        from trigml_fpga.figures import FIGURES_VERSION, plot_consistency, plot_scan

        title = f"{report['model']} on {self.name} {report['firmware']['precision']}"
        wps = report["consistency"]["working_points"]
        if wps:
            threshold = min(wps, key=lambda w: w["agreement"])["threshold"]
        else:
            threshold = float(np.median(float_scores))
        key = {
            "outputs": _outputs_path(compiled, artifact, len(float_scores)).name,
            "title": title,
            "version": FIGURES_VERSION,
        }
        target = out_dir / "consistency.png"
        files = [
            _figure(
                compiled,
                {**key, "threshold": threshold},
                target,
                lambda: plot_consistency(
                    float_scores, firmware_scores, threshold, target, title=title
                ),
            )
        ]
        scan = report.get("scan")
        if scan and scan.get("trials"):
            target_scan = out_dir / "precision_scan.png"
            files.append(
                _figure(
                    compiled,
                    {**key, "scan": scan["trials"]},
                    target_scan,
                    lambda: plot_scan(scan, target_scan, title=title),
                )
            )
        return files


def _held_out(artifact: Any, n_check: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n_check`` held-out rows: raw features, labels, float scores."""
    hold = artifact.holdout()
    n = min(n_check, len(hold["scores"]))
    if n == 0:
        raise ModelError(f"model '{artifact.card.name}': the held-out sample is empty")
    scores = np.asarray(hold["scores"][:n], dtype=np.float32)
    return hold["features"][:n], hold["labels"][:n], scores


def _timing(n: int, seconds: float | None) -> dict[str, Any]:
    return {
        "emulated_events": n,
        "predict_seconds": None if seconds is None else round(seconds, 4),
        "events_per_second": round(n / seconds, 1) if seconds else None,
        "outputs_from_cache": seconds is None,
    }


def _versions() -> dict[str, str]:
    return {
        "trigml-fpga": _version("trigml-fpga"),
        "hls4ml": _version("hls4ml"),
        "conifer": _version("conifer"),
        "compiler": compiler_identity(),
    }


def _write_report(
    report: dict[str, Any], out_dir: Path, files: list[Path], started: float
) -> list[Path]:
    """Write report.json and the folder's README.md; return both paths."""
    from trigml_fpga.project_readme import export_readme

    report["export_seconds"] = round(time.perf_counter() - started, 3)
    report["files"] = [p.relative_to(out_dir).as_posix() for p in files]
    report["files"] += ["report.json", "README.md"]
    report_path = out_dir / "report.json"
    report_path.write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    readme = out_dir / "README.md"
    readme.write_text(export_readme(report))
    return [report_path, readme]


def _outputs_path(compiled: Compiled, artifact: Any, n: int) -> Path:
    """Where the firmware outputs of the first ``n`` held-out rows are kept."""
    scaling = [(f.offset, f.scale) for f in artifact.card.features]
    tag = cache_key({"content": artifact.content_hash, "scaling": scaling})
    return compiled.results_dir / f"{tag}-{n}{compiled.results_tag}.npy"


def _figure(
    compiled: Compiled, key: dict[str, Any], target: Path, draw: Callable[[], Path]
) -> Path:
    """Draw a figure, or copy the one drawn before from the same inputs.

    A figure depends only on the cached outputs it shows and on ``key``; drawing one
    costs about a second, most of an export of an unchanged model.
    """
    kept = compiled.results_dir / "figures" / f"{cache_key(key)}.png"
    if kept.is_file():
        shutil.copyfile(kept, target)
        return target
    draw()
    kept.parent.mkdir(parents=True, exist_ok=True)
    partial = kept.with_name(f"{kept.stem}.{os.getpid()}.partial.png")
    shutil.copyfile(target, partial)
    os.replace(partial, kept)
    return target


def _holdout_outputs(
    compiled: Compiled, artifact: Any, features: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Scaled features and firmware outputs of held-out rows, emulated once.

    The outputs are kept next to the compiled library, named by the artifact's
    content and scaling, so that exporting an unchanged model again reads them
    instead of running the emulation.

    Returns
    -------
    scaled : ndarray
    raw : ndarray, float64
        Firmware outputs.
    seconds : float or None
        Emulation time, None when the outputs came from the cache.
    """
    scaled = artifact.scale(features)
    path = _outputs_path(compiled, artifact, len(features))
    if path.is_file():
        raw = np.load(path, allow_pickle=False)
        if raw.shape[0] == len(features):
            return scaled, raw, None
    began = time.perf_counter()
    _, raw = compiled.scorer.firmware_outputs(features)
    seconds = time.perf_counter() - began
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npy")
    np.save(partial, raw)
    os.replace(partial, path)
    return scaled, raw, seconds


def _summary(consistency: dict[str, Any]) -> dict[str, Any]:
    """The keys every trigml export report has (see :mod:`trigml.export`)."""
    points = []
    flips = []
    for wp in consistency["working_points"]:
        entry = {
            "name": wp["name"],
            "threshold": wp["threshold"],
            "agreement": wp["agreement"],
            "flips_to_pass": wp["flips_to_pass"],
            "flips_to_fail": wp["flips_to_fail"],
        }
        fl, fw = wp["float"], wp["firmware"]
        if fl.get("signal_efficiency") is not None:
            entry["signal_efficiency_float"] = fl["signal_efficiency"]
            entry["signal_efficiency_deployed"] = fw["signal_efficiency"]
        if fl.get("background_efficiency") is not None:
            entry["background_efficiency_float"] = fl["background_efficiency"]
            entry["background_efficiency_deployed"] = fw["background_efficiency"]
        if fw.get("rate_hz") is not None:
            entry["rate_hz_deployed"] = fw["rate_hz"]
        points.append(entry)
        for row in wp["flips"]:
            if len(flips) < N_FLIPS_LISTED:
                flips.append(
                    {
                        "working_point": wp["name"],
                        "row": row["index"],
                        "float_score": row["float_score"],
                        "deployed_score": row["firmware_score"],
                        "features": row["features"],
                    }
                )
    absolute = consistency["score_difference"]["abs_quantiles"]
    summary: dict[str, Any] = {
        "n": consistency["n_events"],
        "score_difference": absolute,
        "max_abs_difference": absolute.get("1"),
        "working_points": points,
        "flips": flips,
    }
    if consistency.get("min_agreement") is not None:
        summary["min_agreement"] = consistency["min_agreement"]
    return summary


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _file_hash(artifact: Any, fmt: str) -> str:
    name = artifact.card.formats.get(fmt)
    if name is None:
        artifact.file(fmt)  # raises ModelError naming the formats present
    return str(artifact.card.files.get(name, ""))


def _hls4ml_type(text: str) -> str | None:
    """``ap_fixed<...>`` spelling of hls4ml's ``fixed<16,6,RND,SAT,0>``."""
    match = re.match(r"^(u?)fixed<(\d+),(-?\d+)", text.strip())
    if not match:
        return None
    unsigned, width, integer = match.groups()
    return f"ap_{unsigned}fixed<{width},{integer}>"


class Hls4mlBackend(_FpgaBackend):
    """Neural networks (MLP, CNN, autoencoder) through hls4ml's PyTorch front end."""

    name = "fpga.hls4ml"

    def __init__(self, params: Hls4mlParams | None = None) -> None:
        self.params = params or Hls4mlParams()
        from trigml_fpga.nn import NetworkFirmware

        self.firmware = NetworkFirmware.from_params(self.params)
        #: Reads the artifact's torch network; trigml-torch by default.
        self.module_loader: Callable[[Any], Any] = _load_torch_module

    def formats(self) -> Sequence[str]:
        return ["torch-state"]

    def _firmware(self, precision: FixedType) -> dict[str, Any]:
        return self.firmware.with_precision(precision).key()

    def _compile(self, artifact: Any, precision: FixedType) -> Compiled:
        from trigml_fpga.emulation import NetworkLibrary

        fw = self.firmware.with_precision(precision)
        card = artifact.card
        project = _project_name(card.name)
        key = cache_key(
            {
                "emulation": [EMULATION_VERSION, SOURCE_FINGERPRINT],
                "backend": self.name,
                "model": [
                    _file_hash(artifact, "torch-state"),
                    _file_hash(artifact, "torch-arch"),
                ],
                "task": card.task,
                "n_features": len(card.features),
                "project": project,
                "firmware": fw.key(),
                "hls4ml": _version("hls4ml"),
                "torch": _version("torch"),
                "compiler": compiler_identity(),
            }
        )

        def build(folder: Path) -> dict[str, Any]:
            from trigml_fpga.nn import build_network, prepare_network

            log.info(
                "compiling the hls4ml emulation of '%s' (%s)", card.name, fw.precision
            )
            module = self.module_loader(artifact)
            strip = fw.output == "logits" and card.task in ("binary", "multiclass")
            prepared = prepare_network(module, len(card.features), strip_final=strip)
            return build_network(prepared, fw, folder, project)

        folder, meta, hit = cached_build(self._root(), "hls4ml", key, build)
        library = NetworkLibrary(
            folder / "emulation" / "emulation.so", meta["n_inputs"], meta["n_outputs"]
        )
        scorer = FirmwareScorer(
            artifact, library, backend=self.name, link=meta["final"]
        )
        layers = meta.get("layers") or [{}]
        return Compiled(
            scorer=scorer,
            project_dir=folder / "project",
            meta=meta,
            cache_hit=hit,
            output_type=_hls4ml_type(layers[-1].get("result", "")),
            results_dir=folder / "results",
        )

    def _extra_report(
        self,
        artifact: Any,
        compiled: Compiled,
        scaled: np.ndarray,
        scores: np.ndarray,
    ) -> dict[str, Any]:
        meta = compiled.meta
        return {
            "network": {
                "input_shape": meta.get("input_shape"),
                "outputs": meta.get("n_outputs"),
                "activation_in_software": meta.get("final"),
                "layers": meta.get("layers"),
            }
        }


def _load_torch_module(artifact: Any) -> Any:
    """The artifact's torch network with its weights, through trigml-torch.

    TODO(onnx): networks that exist only as ONNX need hls4ml's ONNX front end, which
    needs qonnx (not installed with trigml); they are refused for now.
    """
    try:
        from trigml_torch.arch import load_module
    except ImportError:
        raise ModelError(
            f"model '{artifact.card.name}': reading its torch-state network needs the "
            "trigml-torch plugin",
            hint="pip install trigml-torch",
        ) from None
    return load_module(artifact)


class ConiferBackend(_FpgaBackend):
    """Boosted decision trees through conifer's C++ (the ``cpp`` backend)."""

    name = "fpga.conifer"
    #: conifer's C++ multiplies each input by a weight of 1.0, which needs I ≥ 2.
    min_integer_bits = 2

    def __init__(self, params: ConiferParams | None = None) -> None:
        self.params = params or ConiferParams()

    def formats(self) -> Sequence[str]:
        return ["xgboost-json"]

    def _types(self, precision: FixedType) -> tuple[FixedType, FixedType]:
        if precision.signed and precision.integer < self.min_integer_bits:
            raise ConfigError(
                f"'{precision.cpp()}' has {precision.integer} integer bit(s); conifer "
                "needs at least 2 (its C++ multiplies every input by 1.0)",
                key="precision",
            )
        score = (
            parse_fixed(
                self.params.score_precision, key="score_precision"
            ).with_safe_modes()
            if self.params.score_precision
            else precision
        )
        return precision, score

    def _firmware(self, precision: FixedType) -> dict[str, Any]:
        input_t, score_t = self._types(precision)
        return {
            "precision": input_t.cpp(),
            "score_precision": score_t.cpp(),
            "input_scaling": self.params.input_scaling,
            "unroll": self.params.unroll,
            "clock_period_ns": self.params.clock_period_ns,
            "part": self.params.part,
        }

    def _compile(self, artifact: Any, precision: FixedType) -> Compiled:
        from trigml_fpga.bdt import (
            build_forest_library,
            feature_shifts,
            forest_estimates,
            read_xgboost_json,
            write_forest_project,
        )
        from trigml_fpga.emulation import ForestLibrary

        input_t, score_t = self._types(precision)
        card = artifact.card
        project = _project_name(card.name)
        model_key = cache_key(
            {
                "emulation": [EMULATION_VERSION, SOURCE_FINGERPRINT],
                "backend": self.name,
                "model": _file_hash(artifact, "xgboost-json"),
                "project": project,
                "firmware": self._firmware(precision),
                "conifer": _version("conifer"),
            }
        )

        def build_model(folder: Path) -> dict[str, Any]:
            forest = read_xgboost_json(artifact.file("xgboost-json"))
            if forest.n_features != len(card.features):
                raise ModelError(
                    f"model '{card.name}': the BDT reads {forest.n_features} features, "
                    f"the card lists {len(card.features)}"
                )
            shifts = (
                feature_shifts(forest, input_t)
                if self.params.input_scaling == "auto"
                else np.zeros(forest.n_features, dtype=int)
            )
            shifted = forest.shifted(shifts)
            _, model = write_forest_project(
                shifted,
                folder / "project",
                project,
                input_t=input_t,
                score_t=score_t,
                part=self.params.part,
                clock_period_ns=self.params.clock_period_ns,
                unroll=self.params.unroll,
            )
            return {
                "project": project,
                "n_features": forest.n_features,
                "n_outputs": forest.n_outputs,
                "objective": forest.objective,
                "link": forest.link,
                "shifts": shifts.tolist(),
                "estimates": forest_estimates(
                    model, shifted, self.params.clock_period_ns
                ),
            }

        lib_key = cache_key(
            {
                "emulation": [EMULATION_VERSION, SOURCE_FINGERPRINT],
                "input_t": input_t.cpp(),
                "score_t": score_t.cpp(),
                "conifer": _version("conifer"),
                "compiler": compiler_identity(),
            }
        )
        root = self._root()
        model_dir, meta, model_hit = cached_build(
            root, "conifer-model", model_key, build_model
        )
        lib_dir, lib_meta, lib_hit = cached_build(
            root,
            "conifer-lib",
            lib_key,
            lambda folder: build_forest_library(folder, input_t, score_t),
        )
        library = ForestLibrary(
            lib_dir / "forest.so",
            model_dir / "project" / f"{project}.json",
            meta["n_features"],
            meta["n_outputs"],
        )
        scorer = FirmwareScorer(
            artifact,
            library,
            backend=self.name,
            link=meta["link"],
            shifts=np.asarray(meta["shifts"], dtype=int),
        )
        meta = {
            **meta,
            "compile_seconds": None if lib_hit else lib_meta["compile_seconds"],
        }
        return Compiled(
            scorer=scorer,
            project_dir=model_dir / "project",
            meta=meta,
            cache_hit=model_hit and lib_hit,
            output_type=score_t.cpp(),
            results_dir=model_dir / "results",
            results_tag=f"-{lib_key[:12]}",
        )

    def _extra_report(
        self, artifact: Any, compiled: Compiled, scaled: np.ndarray, scores: np.ndarray
    ) -> dict[str, Any]:
        from trigml_fpga.bdt import evaluate_margins, read_xgboost_json

        forest = read_xgboost_json(artifact.file("xgboost-json"))
        rows = slice(0, 5000)
        converted = artifact.to_scores(
            _apply_link(evaluate_margins(forest, scaled[rows]), forest.link),
            scaled[rows],
        )
        worst = float(np.max(np.abs(converted - scores[rows]))) if len(converted) else 0
        if worst > 1e-4:
            log.warning(
                "model '%s': the converted BDT differs from the trained model's "
                "held-out scores by up to %.3g before any fixed-point arithmetic",
                artifact.card.name,
                worst,
            )
        return {
            "conversion_check": {
                "rows": len(converted),
                "max_abs_difference_float": worst,
                "note": "converted trees evaluated in float against the trained "
                "model's held-out scores",
            },
            "input_shifts": dict(
                zip(artifact.card.feature_names, compiled.meta["shifts"])
            ),
            "forest": {
                "objective": compiled.meta.get("objective"),
                "outputs": compiled.meta.get("n_outputs"),
            },
        }
