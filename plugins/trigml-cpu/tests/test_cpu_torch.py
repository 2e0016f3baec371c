"""cpu.torch on a trigml-torch network, and cpu.auto choosing between torch and ONNX."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from trigml.artifact import load_artifact, save_artifact
from trigml.errors import ModelError

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*legacy TorchScript:DeprecationWarning"
)

pytest.importorskip("trigml_torch")
torch = pytest.importorskip("torch")

from trigml_cpu.auto import AutoBackend  # noqa: E402
from trigml_cpu.conformance import check_backend  # noqa: E402
from trigml_cpu.onnx_backend import OnnxRuntimeBackend  # noqa: E402
from trigml_cpu.params import AutoParams  # noqa: E402
from trigml_cpu.torch_backend import TorchBackend  # noqa: E402

ARCH = {
    "builder": "mlp",
    "params": {
        "n_inputs": 16,
        "n_outputs": 5,
        "hidden": [64, 32, 32],
        "final": "softmax",
    },
}


@pytest.fixture(scope="module")
def torch_mlp(tmp_path_factory, builders):
    from trigml_torch.arch import build_module

    make_card, write_holdout = builders["card"], builders["holdout"]

    directory = tmp_path_factory.mktemp("torch-mlp")
    torch.manual_seed(0)
    module = build_module(ARCH).train(False)
    torch.save(module.state_dict(), directory / "model.pt")
    (directory / "arch.json").write_text(json.dumps(ARCH))
    x = np.random.default_rng(0).normal(0, 1, (300, 16)).astype(np.float32)
    with warnings.catch_warnings():  # the legacy exporter announces its retirement
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(module, x, directory)
    with torch.inference_mode():
        ref = module(torch.from_numpy(x)).numpy()
    write_holdout(directory, x, np.zeros(len(x), int), ref)
    formats = {
        "torch-arch": "arch.json",
        "torch-state": "model.pt",
        "onnx": "model.onnx",
    }
    card = make_card("jet-mlp", 16, formats, task="multiclass", classes=list("gqwzt"))
    save_artifact(directory, card)
    return load_artifact(directory), x, ref


def _export(module, x, directory):
    torch.onnx.export(
        module,
        (torch.from_numpy(x[:2]),),
        str(directory / "model.onnx"),
        input_names=["features"],
        output_names=["output"],
        dynamic_axes={"features": {0: "n"}, "output": {0: "n"}},
        dynamo=False,
    )


def test_torch_backend_conformance(torch_mlp):
    artifact, x, ref = torch_mlp
    check_backend(TorchBackend(), artifact, x, ref, 1e-6)
    check_backend(OnnxRuntimeBackend(), artifact, x, ref, 1e-5)


def test_auto_considers_torch_and_onnx(torch_mlp, trigml_cache):
    artifact, x, ref = torch_mlp
    params = AutoParams(batch_sizes=[1, 300], seconds_per_point=0.003)
    scorer = AutoBackend(params).load(artifact)
    assert set(scorer.scorers) == {"cpu.onnxruntime", "cpu.torch"}
    np.testing.assert_allclose(scorer.predict(x), ref, atol=1e-5)


def test_torch_needs_its_files(torch_mlp, tmp_path):
    artifact, _, _ = torch_mlp
    for f in artifact.path.iterdir():
        if f.name != "card.json":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    card = artifact.card.model_copy(update={"formats": {"onnx": "model.onnx"}})
    onnx_only = load_artifact(save_artifact(tmp_path, card).path)
    with pytest.raises(ModelError, match="no torch-arch \\+ torch-state file"):
        TorchBackend().load(onnx_only)
