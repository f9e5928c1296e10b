"""The tabulation maths (deeppot.nn.tabulate): grids, Hermite quintics, evaluation, derivatives, ranges."""

import warnings

import numpy as np
import pytest
import torch

from deeppot.nn.mlp import EmbeddingNet
from deeppot.nn.tabulate import (
    EmbeddingTables,
    angle_product_bound,
    grid,
    quintic_coefficients,
    radial_input_bounds,
    tabulate_net,
)


def _net(activation: str = "tanh", seed: int = 3) -> EmbeddingNet:
    return EmbeddingNet(1, [4, 8, 16], activation, False, torch.float64, torch.Generator().manual_seed(seed))


def _tables(net, lower=-1.0, upper=3.0, extrapolate=5.0, stride=0.01, check_frequency=-1) -> EmbeddingTables:
    data, info = tabulate_net(net, lower, upper, extrapolate, stride, 10 * stride, check_frequency, torch.float64)
    return EmbeddingTables([data], [info], 16, torch.float64)


def test_grid_ranges_and_strides_as_deepmd():
    points, n_first, n_below = grid(-1.0, 9.0, 5.0, 0.01, 0.1)
    assert n_first == 1000 and n_below == 0
    assert len(points) == 1000 + 360 + 1  # [−1, 9] by 0.01, then [9, 45] by 0.1
    np.testing.assert_allclose(np.diff(points[:1001]), 0.01, atol=1e-12)
    np.testing.assert_allclose(np.diff(points[1000:]), 0.1, atol=1e-12)
    assert points[0] == -1.0 and points[1000] == pytest.approx(9.0) and points[-1] == pytest.approx(45.0)


def test_two_sided_grid_as_deepmd_se_t():
    """se_e3's tables (DeePMD-kit's se_t): [-max, lower] and [upper, max] with stride1, [lower, upper] with stride0."""
    points, n_first, n_below = grid(-3.0, 3.0, 5.0, 0.1, 1.0, two_sided=True)
    assert (n_below, n_first) == (12, 60) and len(points) == 12 + 60 + 12 + 1
    np.testing.assert_allclose(points[[0, 12, 72, -1]], [-15.0, -3.0, 3.0, 15.0], atol=1e-12)
    np.testing.assert_allclose(np.diff(points[:13]), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diff(points[12:73]), 0.1, atol=1e-12)


def test_quintic_pieces_reproduce_a_quintic_exactly():
    coeffs = np.array([0.3, -1.2, 0.7, 0.25, -0.4, 0.15])

    def poly(x, order):
        c = np.polynomial.polynomial.polyder(coeffs, order) if order else coeffs
        return np.polynomial.polynomial.polyval(x, c)[:, None]

    x = np.array([-1.0, -0.5, 0.2, 1.0])
    table = quintic_coefficients(poly(x, 0), poly(x, 1), poly(x, 2), np.diff(x))  # 3 x 6 x 1
    for piece, x0 in enumerate(x[:-1]):
        t = np.linspace(0, x[piece + 1] - x0, 7)
        values = sum(table[piece, k, 0] * t**k for k in range(6))
        np.testing.assert_allclose(values, poly(x0 + t, 0)[:, 0], rtol=1e-12, atol=1e-12)


def test_table_data_layout_is_deepmd_interleaved():
    net = _net()
    data, info = tabulate_net(net, -1.0, 3.0, 5.0, 0.01, 0.1, -1, torch.float64)
    assert data.shape == (400 + 120, 6 * 16)
    np.testing.assert_allclose(info, [-1.0, 3.0, 15.0, 0.01, 0.1, -1.0])
    with torch.no_grad():
        value = net(torch.tensor([[-1.0], [0.5]], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(data[0, 0::6], value[0], atol=1e-14)  # c0 of the first row: G(lower)
    np.testing.assert_allclose(data[150, 0::6], value[1], atol=1e-13)  # row 150 starts at -1 + 1.5


@pytest.mark.parametrize("activation", ["tanh", "gelu", "softplus"])
def test_values_and_exact_autograd_derivative(activation):
    net = _net(activation)
    tables = _tables(net)
    x = torch.linspace(-1.0, 15.0, 3001, dtype=torch.float64, requires_grad=True)
    got = tables(0, x)
    want = net(x.reshape(-1, 1))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), atol=1e-10)
    slope = torch.autograd.grad(got.sum(), x)[0]
    want_slope = torch.autograd.grad(want.sum(), x)[0]
    np.testing.assert_allclose(slope.numpy(), want_slope.numpy(), atol=1e-7)
    # the autograd slope is the table's own derivative: central differences of the table agree to round-off
    x_in = torch.tensor([-0.7312, 0.4217, 2.9, 7.333], dtype=torch.float64, requires_grad=True)
    h = 1e-6
    with torch.no_grad():
        fd = ((tables(0, x_in + h) - tables(0, x_in - h)) / (2 * h)).sum(-1)
    exact = torch.autograd.grad(tables(0, x_in).sum(), x_in)[0]
    np.testing.assert_allclose(exact.numpy(), fd.numpy(), rtol=1e-8)


@pytest.mark.parametrize("fused", [False, True], ids=["torch", "kernel"])
def test_two_sided_tables_values_gradients_and_continuation(fused):
    """A two-sided table (se_e3) equals the net on all three grids, both directions of linear continuation
    included; the C++ kernel gives the same as the torch path."""
    from deeppot.nn.tabulate_kernel import FusedEmbeddingTables, kernel_available

    assert kernel_available() or not fused
    net = _net(seed=5)
    data, info = tabulate_net(net, -2.0, 2.0, 5.0, 0.01, 0.1, -1, torch.float64, two_sided=True)
    cls = FusedEmbeddingTables if fused else EmbeddingTables
    tables = cls([data], [info], 16, torch.float64, two_sided=True)
    assert tables.n_below == [80] and tables.bottom == [-10.0] and data.shape[0] == 80 + 400 + 80
    x = torch.linspace(-9.99, 9.99, 777, dtype=torch.float64).reshape(7, 111).requires_grad_()
    env = x.detach().unsqueeze(-1).requires_grad_()  # se_e3 contracts theta with G(theta)
    got = tables.contract(0, x, env)
    want = env.transpose(1, 2) @ net(x.reshape(-1, 1)).reshape(7, 111, 16)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), atol=1e-9)
    for a, b in zip(torch.autograd.grad(got.sum(), [x, env]), torch.autograd.grad(want.sum(), [x, env])):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-7)
    ends = torch.tensor([[-10.0, 10.0]], dtype=torch.float64, requires_grad=True)
    weight = torch.ones(1, 2, 1, dtype=torch.float64)
    slope = torch.autograd.grad(tables.contract(0, ends, weight).sum(), ends)[0]
    outside = tables.contract(0, torch.tensor([[-10.5, 11.0]], dtype=torch.float64), weight[:, :1].expand(1, 2, 1))
    inside = tables.contract(0, ends.detach(), weight)
    np.testing.assert_allclose(outside.sum().item(), inside.sum().item() + (slope * torch.tensor([-0.5, 1.0])).sum().item(),
                               atol=1e-11)


def test_linear_continuation_outside_the_table():
    tables = _tables(_net())
    ends = torch.tensor([-1.0, 15.0], dtype=torch.float64, requires_grad=True)
    value = tables(0, ends)
    slope = torch.stack([torch.autograd.grad(value[i].sum(), ends, retain_graph=True)[0][i] for i in range(2)])
    beyond = torch.tensor([-1.5, 16.0], dtype=torch.float64)
    outside = tables(0, beyond).detach()
    delta = torch.tensor([-0.5, 1.0], dtype=torch.float64)
    # each output column continues linearly: G(end) + G'(end) * delta (column sums checked)
    np.testing.assert_allclose(outside.sum(-1).numpy(), (value.sum(-1) + slope * delta).detach().numpy(),
                               atol=1e-12)


def test_contract_equals_env_transpose_times_g():
    net = _net()
    tables = _tables(net)
    gen = torch.Generator().manual_seed(0)
    x = 4 * torch.rand(5, 7, generator=gen, dtype=torch.float64) - 1
    env = torch.randn(5, 7, 4, generator=gen, dtype=torch.float64)
    want = env.transpose(1, 2) @ net(x.reshape(-1, 1)).reshape(5, 7, 16)
    np.testing.assert_allclose(tables.contract(0, x, env).detach().numpy(), want.detach().numpy(), atol=1e-10)
    assert tables.contract(0, x[:0], env[:0]).shape == (0, 4, 16)


def test_scripted_tables_and_serialization_round_trip():
    tables = _tables(_net())
    data, info = tables.serialize()
    again = EmbeddingTables(data, info, 16, torch.float64)
    x = torch.linspace(-2, 20, 101, dtype=torch.float64)
    scripted = torch.jit.script(again)
    np.testing.assert_array_equal(scripted(0, x).numpy(), tables(0, x).numpy())


def test_check_frequency_warns_when_inputs_leave_the_table():
    tables = _tables(_net(), check_frequency=2)
    x = torch.tensor([0.0, 20.0], dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables(0, x[:1])
        tables(0, x[:1])  # second call checked, inside the table
        tables(0, x)
        tables(0, x)  # fourth call checked, 20 > 15
    assert len(caught) == 1 and "leaves the table" in str(caught[0].message)


def test_radial_bounds_formula():
    davg = np.array([0.2, 0.1])
    dstd = np.array([0.15, 0.3])
    lower, upper = radial_input_bounds(davg, dstd, 0.9, 0.5, 6.0)
    u = (0.9 - 0.5) / 5.5
    switch = u**3 * (-6 * u**2 + 15 * u - 10) + 1
    np.testing.assert_array_equal(lower, np.floor(-davg / dstd))
    np.testing.assert_array_equal(upper, np.ceil((switch / 0.9 - davg) / dstd))


def test_angle_product_bound_covers_every_pair_and_is_tight():
    """se_e3's theta = a_j . a_k over random neighbors at or beyond min_nbor_dist stays inside the bound; two
    neighbors at min_nbor_dist in one direction reach it (before the ceil) for the smaller dstd's center type."""
    from deeppot.geometry.env_mat import smooth_weight

    dstd_a = np.array([0.3, 0.2])
    d, rcut_smth, rcut = 0.9, 0.5, 6.0
    bound = angle_product_bound(dstd_a, d, rcut_smth, rcut)
    rng = np.random.default_rng(0)
    r = np.concatenate([[d, d], rng.uniform(d, rcut, 2000)])
    direction = rng.normal(size=(len(r), 3))
    direction[1] = direction[0]
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    a = (smooth_weight(torch.from_numpy(r), rcut_smth, rcut).numpy() / r)[:, None] * direction / dstd_a.min()
    theta = a @ a.T
    exact = theta[0, 1]
    assert np.abs(theta).max() == pytest.approx(exact, rel=1e-12) and bound == np.ceil(exact) > 10


def test_cpp_kernel_matches_torch_path_values_and_gradients():
    from deeppot.nn.tabulate_kernel import FusedEmbeddingTables, kernel_available

    assert kernel_available(), "the C++ table kernel must build here (g++ and the torch headers)"
    net = _net()
    data, info = tabulate_net(net, -1.0, 3.0, 5.0, 0.01, 0.1, -1, torch.float64)
    data2, info2 = tabulate_net(_net(seed=4), -2.0, 2.0, 5.0, 0.01, 0.1, -1, torch.float64)
    reference = EmbeddingTables([data, data2], [info, info2], 16, torch.float64)
    fused = torch.jit.script(FusedEmbeddingTables([data, data2], [info, info2], 16, torch.float64))
    gen = torch.Generator().manual_seed(1)
    x = (20 * torch.rand(6, 9, generator=gen, dtype=torch.float64) - 3).requires_grad_()  # some outside
    env = torch.randn(6, 9, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(6, 4, 16, generator=gen, dtype=torch.float64)
    for k in (0, 1):
        want = reference.contract(k, x, env)
        got = fused.contract(k, x, env)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), atol=1e-12)
        for a, b in zip(torch.autograd.grad(got, [x, env], upstream), torch.autograd.grad(want, [x, env], upstream)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-12)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(fused.contract(0, x, env).sum(), x, create_graph=True)
