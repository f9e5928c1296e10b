"""deeppot.nn.graph_passes: the exp form of tanh against a long-double tanh, and the Inductor pass that puts it,
mm + add for addmm, elementwise products for mm with a side of 1 and transposed bmm in compiled graphs."""

import numpy as np
import torch

from deeppot.nn.graph_passes import StepGraphPass, exp_tanh


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


def test_pass_rewrites_every_tanh_and_addmm_of_a_compiled_net_and_keeps_its_gradients():
    """A two-layer tanh net with biases and its input gradient (as force training takes it), compiled with the
    pass: the tanh and addmm nodes are rewritten; values and gradients equal eager torch.tanh's to round-off."""
    generator = torch.Generator().manual_seed(0)
    w1, b1 = torch.randn(1, 16, dtype=torch.float64, generator=generator), torch.randn(16, dtype=torch.float64)
    w2, b2 = torch.randn(16, 8, dtype=torch.float64, generator=generator), torch.randn(8, dtype=torch.float64)
    x = torch.randn(300, 1, dtype=torch.float64, generator=generator) * 3

    def net(x):
        return torch.tanh(torch.addmm(b2, torch.tanh(torch.addmm(b1, x, w1)), w2)).sum()

    def value_and_force(x):
        return net(x), torch.func.grad(net)(x)

    exp_readers = []

    class RecordingPass(StepGraphPass):  # the readers of every exp node the pass leaves
        def __call__(self, graph):
            super().__call__(graph)
            exp_readers.extend(len(n.users) for n in graph.nodes if n.target is torch.ops.aten.exp.default)

    graph_pass = RecordingPass()
    compiled = torch.compile(value_and_force, fullgraph=True, options={"post_grad_custom_post_pass": graph_pass})
    with torch._inductor.config.patch(force_disable_caches=True):
        value, force = compiled(x)
    # each tanh's exp is two nodes read once each (so that Inductor stores the tanh, not the exp)
    assert exp_readers == [1] * 8, exp_readers
    # two tanh and two addmm in the value, as many in the forward that the gradient traces again; the first layer's
    # product with one input is an outer product
    replaced = graph_pass.replaced
    assert (replaced["tanh"], replaced["addmm"]) == (4, 4) and replaced["mm"] >= 2, replaced
    expected_value, expected_force = value_and_force(x)
    torch.testing.assert_close(value, expected_value, rtol=1e-14, atol=0)
    scale = expected_force.abs().max().item()  # round-off relative to the largest component
    torch.testing.assert_close(force, expected_force, rtol=0, atol=1e-14 * scale)


def test_pass_computes_a_bmm_read_transposed_in_the_layout_it_is_read():
    generator = torch.Generator().manual_seed(1)
    a, b = (torch.randn(6, 5, 4, dtype=torch.float64, generator=generator),
            torch.randn(6, 4, 7, dtype=torch.float64, generator=generator))
    weights = torch.randn(6, 7, 5, dtype=torch.float64, generator=generator)

    def contraction(a, b):
        return torch.bmm(a, b).transpose(1, 2) * weights

    graph_pass = StepGraphPass()
    compiled = torch.compile(contraction, fullgraph=True, options={"post_grad_custom_post_pass": graph_pass})
    with torch._inductor.config.patch(force_disable_caches=True):
        got = compiled(a, b)
    assert graph_pass.replaced["bmm"] == 1
    torch.testing.assert_close(got, contraction(a, b), rtol=1e-14, atol=1e-14)
