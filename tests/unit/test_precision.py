"""Mixed precision and the training device: config parsing and refusals, the layer arithmetic (DeePMD-kit TF's
casts), what checkpoints and frozen files record, --device choice and device-free saved state."""

import copy

import pytest
import torch

from deeppot.cli import main
from deeppot.config import validate_input
from deeppot.errors import ConfigError, OptionError
from deeppot.nn.activations import activate
from deeppot.nn.mlp import EmbeddingNet, FittingNet
from deeppot.nn.precision import check_mixed_precision_device, mixed_precision_of, mixed_precision_section
from deeppot.train.device import on_cpu, resolve_device
from deeppot.train.unsupported import check_supported
from helpers import small_water_input, write_json

MIXED = {"output_prec": "float32", "compute_prec": "bfloat16"}


def mixed_input(**descriptor) -> dict:
    config = small_water_input()
    config["training"]["mixed_precision"] = dict(MIXED)
    config["model"]["descriptor"].update(descriptor)
    return config


@pytest.mark.parametrize("section, message", [
    ({"compute_prec": "float64"}, "training/mixed_precision/compute_prec: 'float64' is not allowed"),
    ({"output_prec": "float16", "compute_prec": "bfloat16"}, "training/mixed_precision/output_prec"),
    ({"output_prec": "float32"}, "training/mixed_precision/compute_prec"),
])
def test_bad_mixed_precision_sections_are_named(section, message):
    config = small_water_input()
    config["training"]["mixed_precision"] = section
    with pytest.raises(ConfigError, match=message):
        validate_input(config)


def test_mixed_precision_is_acted_on_and_forces_float32_networks(caplog):
    config = validate_input(mixed_input(precision="float64"))
    assert config.training.mixed_precision.output_prec == "float32"
    check_supported(config)  # no refusal, and no "has no effect" warning any more
    assert "mixed_precision" not in caplog.text
    section = mixed_precision_section(config.model, config.training.mixed_precision)
    assert (section.descriptor.precision, section.fitting_net.precision) == ("float32", "float32")
    assert config.model.descriptor.precision == "float64"  # the validated input itself is left alone


def test_mixed_precision_refused_for_other_descriptors():
    config = mixed_input()
    descriptor = config["model"]["descriptor"]
    config["model"]["descriptor"] = {"type": "se_e2_r", "sel": descriptor["sel"], "rcut": 6.0, "rcut_smth": 0.5,
                                     "neuron": [4, 8]}
    with pytest.raises(ConfigError, match=r"training/mixed_precision: works with descriptor type se_e2_a only.*"
                                          r"'se_e2_r'; remove training/mixed_precision"):
        check_supported(validate_input(config))


def _bf16(x):
    return x.to(torch.bfloat16)


def test_embedding_layer_computes_in_bfloat16_with_the_residual_stream_in_it():
    gen = torch.Generator().manual_seed(3)
    net = EmbeddingNet(4, [4, 8], "tanh", True, torch.float32, gen)
    x = torch.randn(5, 4, generator=gen)
    net.enable_mixed_precision(torch.bfloat16)
    y = net(x)
    # by hand: DeePMD-kit's embedding_net with mixed_prec (x, w, b, idt cast; skips in bfloat16; cast at the end)
    first, second = net.layers
    h = activate(_bf16(x) @ _bf16(first.w) + _bf16(first.b), "tanh") * _bf16(first.idt) + _bf16(x)  # 4 -> 4
    h2 = activate(h @ _bf16(second.w) + _bf16(second.b), "tanh") * _bf16(second.idt)  # 4 -> 8: y + [x, x]
    expected = (h2 + torch.cat([h, h], dim=-1)).float()
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, expected, rtol=0, atol=0)
    assert not torch.equal(y, EmbeddingNet.forward(_plain_copy(net), x))  # the casts change the numbers


def test_fitting_net_adds_skips_in_float32_and_keeps_its_output_layer_float32():
    gen = torch.Generator().manual_seed(4)
    net = FittingNet(6, 1, [6, 6], "tanh", True, torch.float32, gen)
    x = torch.randn(7, 6, generator=gen)
    net.enable_mixed_precision(torch.bfloat16)
    h = x
    for layer in net.layers:  # DeePMD-kit's one_layer: hidden in bfloat16, cast to float32, then h += hidden
        hidden = activate(_bf16(h) @ _bf16(layer.w) + _bf16(layer.b), "tanh") * _bf16(layer.idt)
        h = hidden.float() + h if layer.skip == 1 else hidden.float()
    expected = h @ net.output.w + net.output.b  # final layer wholly in float32
    assert not net.output.mixed
    torch.testing.assert_close(net(x), expected, rtol=1e-6, atol=1e-6)


def _plain_copy(net):
    plain = copy.deepcopy(net)
    for layer in plain.layers:
        layer.mixed = False
    return plain


def test_mixed_precision_of_reports_what_files_record():
    net = FittingNet(3, 1, [4], "tanh", True, torch.float32)
    assert mixed_precision_of(net) is None
    net.enable_mixed_precision(torch.float16)
    assert mixed_precision_of(net) == {"output_prec": "float32", "compute_prec": "float16"}


def test_device_choice():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(OptionError, match=r"--device cuda: torch sees no CUDA GPU.*--device cpu"):
            resolve_device("cuda")


def test_train_refuses_cuda_without_a_gpu_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_json(tmp_path / "input.json", small_water_input(numb_steps=1))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "input.json", "--device", "cuda"]) == 2
    assert "--device cuda: torch sees no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "lcurve.out").exists() and not (tmp_path / "out.json").exists()


def test_saved_state_holds_cpu_tensors_only():
    class FakeDevice(torch.Tensor):
        """A tensor that says it lives on another device (no GPU here); .cpu() gives a plain CPU tensor."""

        @property
        def device(self):
            return torch.device("meta")

        def cpu(self):
            return self.as_subclass(torch.Tensor)

    off_cpu = torch.ones(2).as_subclass(FakeDevice)
    state = {"model": {"w": off_cpu}, "optimizer": {"state": [(1, off_cpu)]}, "step": 3}
    saved = on_cpu(state)
    assert type(saved["model"]["w"]) is torch.Tensor and saved["model"]["w"].device.type == "cpu"
    assert type(saved["optimizer"]["state"][0][1]) is torch.Tensor and saved["step"] == 3
    assert isinstance(saved["optimizer"]["state"][0], tuple)


def test_bfloat16_refused_on_a_gpu_without_it(monkeypatch):
    mixed = validate_input(mixed_input()).training.mixed_precision
    check_mixed_precision_device(mixed, torch.device("cpu"))  # every CPU torch computes in bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    with pytest.raises(ConfigError, match=r"compute_prec: bfloat16 is not supported by this GPU \(Tesla V100\); "
                                          r"use float16"):
        check_mixed_precision_device(mixed, torch.device("cuda"))
