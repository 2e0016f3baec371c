"""fpga.hls4ml: preparing networks, hls4ml types, export of an MLP, a CNN and an AE.

The networks follow trigml-torch's conventions (flat scaled rows in, a reshape first
for a CNN, a final sigmoid or softmax) but are defined here, so the tests need only
torch. Three networks are compiled once each for the session.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trigml.artifact import Artifact
from trigml.errors import ConfigError, ModelError
from trigml.testing import check_backend
from trigml_fpga import Hls4mlBackend, Hls4mlParams
from trigml_fpga.nn import NetworkFirmware, hls_config, prepare_network
from trigml_fpga.testing import module_loader, torch_artifact

torch = pytest.importorskip("torch")
nn = torch.nn
# Training these tiny networks gains nothing from threads, which would only compete
# with the compiler (and with another test worker) for the cores.
torch.set_num_threads(1)


class Net(nn.Module):
    """``final(body(x.view(-1, *shape)))``, like trigml-torch's networks."""

    def __init__(
        self,
        body: nn.Module,
        final: nn.Module | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.body = body
        self.final = final
        self.shape = shape

    def forward(self, x: Any) -> Any:
        if self.shape is not None:
            x = x.view(-1, *self.shape)
        z = self.body(x)
        return z if self.final is None else self.final(z)


def mlp() -> Net:
    torch.manual_seed(1)
    body = nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1)
    )
    return Net(body, nn.Sigmoid())


def cnn() -> Net:
    torch.manual_seed(2)
    body = nn.Sequential(nn.Conv1d(2, 4, 2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    return Net(body, nn.Softmax(dim=1), shape=(2, 3))


def autoencoder() -> Net:
    torch.manual_seed(3)
    body = nn.Sequential(
        nn.Linear(6, 4),
        nn.ReLU(),
        nn.Linear(4, 2),
        nn.ReLU(),
        nn.Linear(2, 4),
        nn.ReLU(),
        nn.Linear(4, 6),
    )
    return Net(body)


def fit(task: str) -> Callable[[Any, np.ndarray, np.ndarray], None]:
    """A few hundred full-batch Adam steps, enough to spread the scores out."""

    def train(module: Any, x: np.ndarray, y: np.ndarray) -> None:
        inputs = torch.from_numpy(x)
        optimiser = torch.optim.Adam(module.parameters(), lr=0.02)
        for _ in range(300):
            optimiser.zero_grad()
            out = module.body(
                inputs.view(-1, *module.shape) if module.shape else inputs
            )
            if task == "binary":
                loss = nn.functional.binary_cross_entropy_with_logits(
                    out[:, 0], torch.from_numpy(y.astype(np.float32))
                )
            elif task == "multiclass":
                loss = nn.functional.cross_entropy(out, torch.from_numpy(y))
            else:
                loss = nn.functional.mse_loss(out, inputs)
            loss.backward()
            optimiser.step()

    return train


MODELS = {
    "mlp": (mlp, "binary"),
    "cnn": (cnn, "multiclass"),
    "ae": (autoencoder, "anomaly"),
}


@pytest.fixture(scope="session")
def networks(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Artifact, Net]]:
    root = tmp_path_factory.mktemp("nets")
    made = {}
    for key, (make, task) in MODELS.items():
        module = make()
        artifact = torch_artifact(
            root / key, module, name=f"toy-{key}", task=task, train=fit(task)
        )
        made[key] = (artifact, module)
    return made


def backend_for(module: Net, cache: Path, **params: Any) -> Hls4mlBackend:
    backend = Hls4mlBackend(Hls4mlParams(cache_dir=str(cache), **params))
    backend.module_loader = module_loader(module)
    return backend


@pytest.fixture(scope="session")
def exports(
    networks: dict[str, tuple[Artifact, Net]],
    fpga_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("nn-exports")
    return {
        key: backend_for(module, fpga_cache).export(artifact, out / key)
        for key, (artifact, module) in networks.items()
    }


# -- preparing networks and types (nothing compiled) ----------------------------------


def test_prepare_strips_the_reshape_and_the_final_activation() -> None:
    module = cnn().train(False)
    prepared = prepare_network(module, 6, strip_final=True)
    assert prepared.input_shape == (2, 3) and prepared.n_outputs == 3
    assert prepared.final == "softmax" and prepared.firmware_final is None
    x = torch.randn(5, 6)
    with torch.no_grad():
        expected = module.body(x.view(-1, 2, 3))
        got = prepared.module(x.view(-1, 2, 3))
    torch.testing.assert_close(got, expected)
    kept = prepare_network(mlp(), 6, strip_final=False)
    assert kept.final is None and kept.firmware_final == "sigmoid"


def test_prepare_refuses_untraceable_or_misfit_networks() -> None:
    class Branchy(nn.Module):
        def forward(self, x: Any) -> Any:
            return x if x.sum() > 0 else -x

    with pytest.raises(ModelError, match="data-dependent control flow"):
        prepare_network(Branchy(), 6, strip_final=True)
    with pytest.raises(ModelError, match="does not hold 5 features"):
        prepare_network(cnn(), 5, strip_final=True)


def test_hls_config_writes_explicit_types_and_overrides() -> None:
    prepared = prepare_network(mlp(), 6, strip_final=False)
    fw = NetworkFirmware.from_params(
        Hls4mlParams(
            output="probabilities",
            layers={
                "body_2": {
                    "result": "ap_fixed<20,8>",
                    "accum": "ap_fixed<40,20>",
                    "reuse_factor": 4,
                }
            },
        )
    )
    config = hls_config(prepared, fw)
    layers = config["LayerName"]
    default = "ap_fixed<16,6,AP_RND,AP_SAT>"
    for name, layer in layers.items():
        for kind, value in layer["Precision"].items():
            assert value != "auto" or kind == "accum", (name, kind)
    assert layers["x"]["Precision"]["result"] == default
    assert layers["body_0"]["Precision"]["weight"] == default
    assert layers["body_0"]["Precision"]["accum"] == "auto"  # exact-width sum
    assert layers["body_2"]["Precision"]["result"] == "ap_fixed<20,8>"
    assert layers["body_2"]["Precision"]["accum"] == "ap_fixed<40,20>"
    assert layers["body_2"]["ReuseFactor"] == 4
    final = list(layers)[-1]
    assert layers[final]["Precision"]["result"] == "ap_ufixed<16,0,AP_RND,AP_SAT>"
    assert layers["body_4"]["Precision"]["result"] == default

    wrong = NetworkFirmware.from_params(Hls4mlParams(layers={"fc9": "ap_fixed<8,3>"}))
    with pytest.raises(ConfigError) as info:
        hls_config(prepared, wrong)
    assert "fc9" in str(info.value) and "body_0" in str(info.value)
    no_accum = NetworkFirmware.from_params(
        Hls4mlParams(layers={"body_1": {"accum": "ap_fixed<20,8>"}})
    )
    with pytest.raises(ConfigError, match=r"layers\.body_1\.accum"):
        hls_config(prepared, no_accum)
    shorthand = NetworkFirmware.from_params(
        Hls4mlParams(layers={"body_1": "ap_fixed<12,4>", "body_0": "ap_fixed<12,4>"})
    )
    layers = hls_config(prepared, shorthand)["LayerName"]
    assert layers["body_1"]["Precision"]["result"] == "ap_fixed<12,4>"
    assert layers["body_0"]["Precision"]["weight"] == "ap_fixed<12,4>"
    assert layers["body_0"]["Precision"]["accum"] == "auto"


# -- compiled networks ----------------------------------------------------------------


def test_mlp_export(exports: dict[str, Any]) -> None:
    result = exports["mlp"]
    out = result.directory
    for name in (
        "report.json",
        "README.md",
        "consistency.png",
        "emulated_scores.npz",
        "hls/build_prj.tcl",
        "hls/firmware/toy_mlp.cpp",
        "hls/firmware/parameters.h",
        "hls/tb_data/tb_input_features.dat",
    ):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["backend"] == "fpga.hls4ml" and report["n"] == 2000
    for wp in report["working_points"]:
        assert wp["agreement"] >= 0.999, wp
    assert report["network"]["activation_in_software"] == "sigmoid"
    est = report["estimates"]
    assert est["multiplications"] == 6 * 16 + 16 * 8 + 8
    assert est["parameters"] == 6 * 16 + 16 + 16 * 8 + 8 + 8 + 1
    assert est["parameter_bits"] == 16 * est["parameters"]
    assert est["dsp_estimate"] == est["multiplications"]  # reuse factor 1
    assert est["latency_cycles_estimate"] > 0 and est["initiation_interval_cycles"] == 1
    cuts = report["firmware_cuts"]
    assert [c["name"] for c in cuts] == [w["name"] for w in report["working_points"]]
    for c in cuts:
        assert c["quantity"] == "logit" and 0 <= c["grid_value"] - c["logit"] < 2**-10
    assert "build_prj.tcl" in (out / "README.md").read_text()


def test_emulation_is_batch_and_thread_invariant(
    networks: dict[str, tuple[Artifact, Net]],
    fpga_cache: Path,
    exports: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    artifact, module = networks["mlp"]
    backend = backend_for(module, fpga_cache)
    x = artifact.holdout()["features"]
    monkeypatch.setenv("TRIGML_FPGA_THREADS", "1")
    one = backend.load(artifact).predict(x)
    monkeypatch.setenv("TRIGML_FPGA_THREADS", "3")
    many = backend.load(artifact).predict(x)
    np.testing.assert_array_equal(one, many)
    check_backend(backend, artifact, x, one, atol=0.0)
    assert np.abs(one - artifact.holdout()["scores"]).max() < 0.02


def test_second_export_is_fast_and_compiles_nothing(
    networks: dict[str, tuple[Artifact, Net]],
    fpga_cache: Path,
    exports: dict[str, Any],
    tmp_path: Path,
) -> None:
    artifact, module = networks["mlp"]
    backend = backend_for(module, fpga_cache)
    backend.module_loader = _must_not_load
    began = time.perf_counter()
    again = backend.export(artifact, tmp_path / "again")
    assert time.perf_counter() - began < 2.0
    assert again.report["cache"]["hit"] is True
    assert again.report["working_points"] == exports["mlp"].report["working_points"]


def _must_not_load(artifact: Artifact) -> Any:
    raise AssertionError("a cached network must not be rebuilt")


def test_cnn_export(exports: dict[str, Any]) -> None:
    report = exports["cnn"].report
    assert report["network"]["input_shape"] == [2, 3]
    assert report["network"]["activation_in_software"] == "softmax"
    assert report["consistency"]["top_class_agreement"] >= 0.99
    conv = next(r for r in report["estimates"]["layers"] if r["class"] == "Conv1D")
    assert (
        conv["multiplications"] == 2 * 2 * 4 * 2
    )  # kernel 2, 2 -> 4 channels, 2 pixels
    with np.load(exports["cnn"].directory / "emulated_scores.npz") as scores:
        np.testing.assert_allclose(scores["firmware_scores"].sum(axis=1), 1, rtol=1e-5)


def test_autoencoder_export(exports: dict[str, Any]) -> None:
    report = exports["ae"].report
    names = [wp["name"] for wp in report["working_points"]]
    assert names == ["q99", "q99.9"]
    q99 = report["consistency"]["working_points"][0]
    assert q99["derived"] and q99["agreement"] >= 0.999
    assert q99["float"]["pass_fraction"] == pytest.approx(0.01, abs=0.002)
    assert report["network"]["outputs"] == 6
