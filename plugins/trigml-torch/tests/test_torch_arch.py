"""Network builders: shapes, tracing with torch.fx, masks, parameter errors."""

from __future__ import annotations

import pytest
import torch

from trigml.errors import ConfigError
from trigml.registry import Component
from trigml_torch.arch import build_module
from trigml_torch.hooks import _make_family, trigml_register_model_families
from trigml_torch.specs import TorchParams, parse_arch

CASES = {
    "mlp": (
        {"n_inputs": 7, "n_outputs": 1, "final": "sigmoid", "batchnorm": True},
        7,
        1,
    ),
    "cnn1d": ({"input_shape": [2, 16], "n_outputs": 3, "final": "softmax"}, 32, 3),
    "cnn2d": ({"input_shape": [1, 8, 8], "n_outputs": 1}, 64, 1),
    "cnn3d": ({"input_shape": [1, 4, 4, 8], "channels": [4], "n_outputs": 2}, 128, 2),
    "unet3d": (
        {"input_shape": [1, 4, 4, 8], "out_channels": 3, "depth": 2},
        128,
        3 * 128,
    ),
    "deepsets": (
        {"max_items": 5, "item_features": 3, "global_features": 2, "n_outputs": 1},
        17,
        1,
    ),
    "autoencoder": ({"n_inputs": 9, "latent": 3}, 9, 9),
}


@pytest.mark.parametrize("builder", sorted(CASES))
def test_torch_builder_forward_shape_and_fx(builder: str) -> None:
    params, n_in, n_out = CASES[builder]
    module = build_module({"builder": builder, "params": params}).train(False)
    x = torch.randn(4, n_in)

    out = module(x)
    traced = torch.fx.symbolic_trace(module)

    assert out.shape == (4, n_out)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(traced(x), out)


def test_torch_final_activations() -> None:
    sig = build_module({"builder": "mlp", "params": CASES["mlp"][0]}).train(False)
    soft = build_module({"builder": "cnn1d", "params": CASES["cnn1d"][0]}).train(False)

    p = sig(torch.randn(50, 7))
    q = soft(torch.randn(50, 32))

    assert ((p > 0) & (p < 1)).all()
    torch.testing.assert_close(q.sum(dim=1), torch.ones(50))


def _deepsets(mask: str) -> torch.nn.Module:
    params = {
        "max_items": 4,
        "item_features": 2,
        "mask": mask,
        "pad_value": -9.0,
        "n_outputs": 1,
    }
    torch.manual_seed(0)
    return build_module({"builder": "deepsets", "params": params}).train(False)


def test_torch_deepsets_ignores_order_and_padded_slots() -> None:
    module = _deepsets("pad_value")
    items = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-9.0, 5.0], [-9.0, 7.0]])
    swapped = items[[1, 0, 3, 2]]
    other_pad = items.clone()
    other_pad[2:, 1] = torch.tensor([100.0, -3.0])
    one_less = items.clone()
    one_less[1] = torch.tensor([-9.0, -1.0])

    out = [module(t.reshape(1, -1)) for t in (items, swapped, other_pad, one_less)]

    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(out[0], out[2])
    assert not torch.allclose(out[0], out[3])


def test_torch_deepsets_count_mask() -> None:
    module = _deepsets("count")
    items = torch.randn(4, 2)
    garbage = items.clone()
    garbage[2:] = torch.randn(2, 2) * 50

    two = module(torch.cat([torch.tensor([2.0]), items.reshape(-1)])[None])
    two_garbage = module(torch.cat([torch.tensor([2.0]), garbage.reshape(-1)])[None])
    three = module(torch.cat([torch.tensor([3.0]), items.reshape(-1)])[None])

    torch.testing.assert_close(two, two_garbage)
    assert not torch.allclose(two, three)


@pytest.mark.parametrize(
    ("arch", "key"),
    [
        ({"builder": "lstm"}, "arch.builder"),
        ({"builder": "mlp", "params": {"hiden": [4]}}, "arch.params.hiden"),
        (
            {"builder": "mlp", "params": {"activation": "gelu"}},
            "arch.params.activation",
        ),
        ({"builder": "cnn2d", "params": {"input_shape": [1, 8]}}, "arch.params"),
        ({"builder": "cnn1d", "params": {"input_shape": [1, 8], "kernel_size": 4}}, ""),
        ({"builder": "unet3d", "params": {"input_shape": [1, 6, 8, 8]}}, ""),
        (
            {"builder": "cnn1d", "params": {"input_shape": [2, 8], "n_inputs": 17}},
            "arch.params",
        ),
    ],
)
def test_torch_bad_arch_is_config_error(arch: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_arch(arch)

    assert info.value.key is not None
    assert info.value.key.startswith(key or "arch")


def test_torch_build_needs_widths() -> None:
    with pytest.raises(ConfigError, match="n_inputs is not set"):
        build_module({"builder": "mlp", "params": {"n_outputs": 1}})


def test_torch_hook_registers_family() -> None:
    registered: list[Component] = []

    def register(name, factory, params, description=""):  # type: ignore[no-untyped-def]
        registered.append(Component("family", name, factory, params, description))

    trigml_register_model_families(register=register)
    (component,) = registered
    family = component.build({"epochs": 3, "arch": {"builder": "autoencoder"}})

    assert component.name == "torch"
    assert component.factory is _make_family
    assert family.params.epochs == 3
    with pytest.raises(ConfigError) as info:
        component.build({"quantiles": [0.5, 0.2]}, key="family")
    assert info.value.key == "family.quantiles"
    assert TorchParams().arch.builder == "mlp"


@pytest.mark.parametrize("builder", ["cnn2d", "unet3d", "mlp"])
def test_torch_shaped_input_matches_flat(builder: str) -> None:
    params, n_in, _ = CASES[builder]
    module = build_module({"builder": builder, "params": params}).train(False)
    x = torch.randn(3, n_in)

    shaped = module.shaped()(x.reshape(-1, *module.input_shape))

    torch.testing.assert_close(shaped, module(x))
    assert list(shaped.shape) == list(module(x).shape)


def test_torch_hls4ml_parses_builders(tmp_path) -> None:
    hls4ml = pytest.importorskip("hls4ml")
    flat = build_module({"builder": "mlp", "params": CASES["mlp"][0]}).train(False)
    conv = build_module({"builder": "cnn1d", "params": CASES["cnn1d"][0]}).train(False)
    layers = {}

    for name, net in (("mlp", flat), ("cnn1d", conv.shaped().train(False))):
        shape = net.input_shape if name == "mlp" else conv.input_shape
        config = hls4ml.utils.config_from_pytorch_model(
            net, input_shape=shape, granularity="name", backend="Vitis"
        )
        model = hls4ml.converters.convert_from_pytorch_model(
            net, hls_config=config, backend="Vitis", output_dir=str(tmp_path / name)
        )
        layers[name] = [layer.class_name for layer in model.get_layers()]

    assert layers["mlp"][-1] == "Activation"  # the sigmoid
    # A shaped input lets hls4ml add its channels-last transpose before the convs.
    assert layers["cnn1d"][:3] == ["Input", "Transpose", "Conv1D"]
    assert layers["cnn1d"][-1] == "Softmax"
