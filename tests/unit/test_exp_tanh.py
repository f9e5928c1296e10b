"""deeppot.nn.exp_tanh: the exp form of tanh against a long-double tanh, and the Inductor pass that puts it in
compiled graphs."""

import numpy as np
import torch

from deeppot.nn.exp_tanh import ExpTanhPass, exp_tanh


def long_double_tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.tanh(x.numpy().astype(np.longdouble)).astype(np.float64))


def test_exp_tanh_is_as_accurate_as_torch_tanh_in_absolute_terms():
    ramp = torch.linspace(-30.0, 30.0, 600_001, dtype=torch.float64)
    small = torch.logspace(-300, 1.5, 60_001, dtype=torch.float64)
    x = torch.cat([ramp, small, -small])
    reference = long_double_tanh(x)
    error = (exp_tanh(x) - reference).abs()
    assert error.max().item() <= 1.2e-16
    assert error.max().item() <= 1.01 * (torch.tanh(x) - reference).abs().max().item()
    away_from_zero = x.abs() > 0.5
    assert (error[away_from_zero] / reference[away_from_zero].abs()).max().item() <= 3e-16


def test_exp_tanh_special_values():
    x = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), 400.0, -400.0, float("nan")], dtype=torch.float64)
    y = exp_tanh(x)
    torch.testing.assert_close(y[:6], torch.tensor([0.0, -0.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64),
                               rtol=0, atol=0)
    assert torch.equal(torch.signbit(y[:2]), torch.tensor([False, True]))
    assert torch.isnan(y[6])


def test_pass_rewrites_every_tanh_of_a_compiled_net_and_keeps_its_gradients():
    """A two-layer tanh net with its input gradient (as force training takes it), compiled with the pass: both
    tanh nodes of the forward are rewritten; values and gradients equal eager torch.tanh's to round-off."""
    generator = torch.Generator().manual_seed(0)
    w1 = torch.randn(1, 16, dtype=torch.float64, generator=generator)
    w2 = torch.randn(16, 8, dtype=torch.float64, generator=generator)
    x = torch.randn(300, 1, dtype=torch.float64, generator=generator) * 3

    def net(x):
        return torch.tanh(torch.tanh(x @ w1) @ w2).sum()

    def value_and_force(x):
        return net(x), torch.func.grad(net)(x)

    tanh_pass = ExpTanhPass()
    compiled = torch.compile(value_and_force, fullgraph=True, options={"post_grad_custom_post_pass": tanh_pass})
    with torch._inductor.config.patch(force_disable_caches=True):
        value, force = compiled(x)
    assert tanh_pass.replaced == 4  # two tanh in the value, two more in the traced forward of the gradient
    expected_value, expected_force = value_and_force(x)
    torch.testing.assert_close(value, expected_value, rtol=1e-14, atol=0)
    torch.testing.assert_close(force, expected_force, rtol=1e-13, atol=1e-15)
