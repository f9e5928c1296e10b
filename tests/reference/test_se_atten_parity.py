"""Parity of the attention descriptor se_atten (DPA-1) / se_atten_v2 and its type embedding with DeePMD-kit 3.2's
numpy ``deepmd.dpmodel`` to 1e-10 in float64, at descriptor level (same serialized dict, same neighbor slots), and
the descriptor's second derivatives (force training) by finite differences.
"""

import numpy as np
import pytest
import torch

from deeppot.nn.type_embedding import TypeEmbedding

ATOL = 1e-10


@pytest.mark.parametrize(
    "ntypes, neuron, activation, bias",
    [(3, [8], "Linear", False), (8, [8], "Linear", True), (2, [4, 8], "tanh", True)],
    ids=["linear", "resnet_skip_bias", "two_layers_tanh"],
)
def test_type_embedding(ntypes, neuron, activation, bias):
    """DeePMD-kit's TypeEmbedNet: one-hot rows through the net (a ResNet skip when ntypes == tebd_dim), zero
    padding row last; the dict round-trips both ways."""
    from deepmd.dpmodel.utils.type_embed import TypeEmbedNet

    ours = TypeEmbedding(ntypes, neuron, activation, padding=True, use_tebd_bias=bias, seed=3)
    reference = TypeEmbedNet.deserialize(ours.serialize())
    table = ours().detach().numpy()
    assert table.shape == (ntypes + 1, neuron[-1])
    np.testing.assert_array_equal(table[-1], 0.0)
    assert np.abs(table[:-1]).max() > 0.1
    np.testing.assert_allclose(table, reference.call(), rtol=0, atol=ATOL)
    back = TypeEmbedding.deserialize(reference.serialize())
    np.testing.assert_allclose(back().detach().numpy(), table, rtol=0, atol=ATOL)
    np.testing.assert_allclose(torch.jit.script(ours)().detach().numpy(), table, rtol=0, atol=ATOL)


def test_type_embedding_refuses_econf():
    with pytest.raises(ValueError, match="use_econf_tebd"):
        TypeEmbedding(2, [8], use_econf_tebd=True)


# ------------------------------------------------------------------------------------------ descriptor level
NSEL = 7  # C3H3O4 (10 atoms) has 4 to 9 neighbors within 6 A: real slots, padding and truncation mix


def nearest_slots(coord: np.ndarray, rcut: float, nsel: int) -> np.ndarray:
    """Mixed-type neighbor list by brute force: the nsel nearest atoms within rcut (index order breaks ties),
    -1 padding after (spec 3.2)."""
    dist = np.linalg.norm(coord[None] - coord[:, None], axis=-1)
    nlist = -np.ones((len(coord), nsel), dtype=np.int64)
    for i in range(len(coord)):
        order = [j for j in np.argsort(dist[i], kind="stable") if j != i and dist[i, j] <= rcut][:nsel]
        nlist[i, : len(order)] = order
    return nlist


def slot_inputs(coord: torch.Tensor, atype: np.ndarray, nlist: np.ndarray):
    """(rij, nei_mask, center_type, nei_type) of one frame (as 1-frame batches) from a neighbor list."""
    index = torch.from_numpy(np.maximum(nlist, 0))
    rij = (coord[index] - coord[:, None])[None]
    nei_type = np.where(nlist >= 0, atype[np.maximum(nlist, 0)], -1)
    return rij, torch.from_numpy(nlist >= 0)[None], torch.from_numpy(atype)[None], torch.from_numpy(nei_type)[None]


def randomize(descriptor, seed: int):
    """Random non-trivial statistics (davg kept 0 with set_davg_zero) and attention layer norms."""
    gen = torch.Generator().manual_seed(seed)
    nt = descriptor.ntypes
    with torch.no_grad():
        if not descriptor.set_davg_zero:
            descriptor.davg[:, :, 0] = 0.05 + 0.25 * torch.rand(nt, 1, generator=gen, dtype=torch.float64)
        descriptor.dstd[:, :, 0] = 0.1 + 0.4 * torch.rand(nt, 1, generator=gen, dtype=torch.float64)
        descriptor.dstd[:, :, 1:] = 0.05 + 0.25 * torch.rand(nt, 1, 1, generator=gen, dtype=torch.float64)
        for norm in descriptor.attention.norms:
            norm.w.add_(0.2 * torch.randn(norm.w.shape, generator=gen, dtype=torch.float64))
            norm.b.add_(0.2 * torch.randn(norm.b.shape, generator=gen, dtype=torch.float64))
    return descriptor


def reference_descriptor(data: dict):
    """dpmodel's DescrptDPA1 / DescrptSeAttenV2 from our dict, parameters as torch tensors (for derivatives)."""
    from deepmd.dpmodel.descriptor.dpa1 import DescrptDPA1
    from deepmd.dpmodel.descriptor.se_atten_v2 import DescrptSeAttenV2
    from dpmodel_oracle import _to_torch

    reference = (DescrptSeAttenV2 if data["type"] == "se_atten_v2" else DescrptDPA1).deserialize(data)
    _to_torch(reference, set())
    return reference


def assert_descriptor_parity(descriptor, reference=None, system: str = "C3H3O4"):
    """Descriptor, rotation matrix and the coordinate gradient of a random projection of the descriptor, on
    the two first frames of a nopbc_cho molecule, against dpmodel's dense ``call``."""
    from deeppot_test_models import load_nopbc

    reference = reference_descriptor(descriptor.serialize()) if reference is None else reference
    frames, atype, _ = load_nopbc(system, 2)
    weights = torch.randn(descriptor.dim_out, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for coord in frames.astype(np.float64):
        nlist = nearest_slots(coord, descriptor.rcut, descriptor.nnei)
        assert (nlist < 0).any() and (nlist >= 0).sum(axis=1).max() == descriptor.nnei  # padding and truncation
        ours_coord = torch.tensor(coord, requires_grad=True)
        desc, rot = descriptor.forward_with_rotation(*slot_inputs(ours_coord, atype, nlist))
        (ours_grad,) = torch.autograd.grad((desc * weights).sum(), ours_coord)
        ref_coord = torch.tensor(coord, requires_grad=True)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            ref_desc, ref_rot, *_ = reference.call(ref_coord.reshape(1, -1), torch.from_numpy(atype)[None],
                                                   torch.from_numpy(nlist)[None])
        finally:
            torch.set_default_dtype(previous)
        (ref_grad,) = torch.autograd.grad((ref_desc * weights).sum(), ref_coord)
        assert ref_grad.abs().max() > 1e-3, "degenerate comparison"
        np.testing.assert_allclose(desc.detach().numpy(), ref_desc.detach().numpy(), rtol=0, atol=ATOL)
        np.testing.assert_allclose(rot.detach().numpy(), ref_rot.detach().numpy(), rtol=0, atol=ATOL)
        np.testing.assert_allclose(ours_grad.numpy(), ref_grad.numpy(), rtol=0, atol=ATOL)


SE_ATTEN_CASES = {
    "concat_two_side_davg": dict(set_davg_zero=False),
    "concat_default": dict(),
    "concat_smooth_one_side_temperature": dict(smooth_type_embedding=True, type_one_side=True, temperature=0.7,
                                               normalize=False, attn_dotr=False, set_davg_zero=False),
    "concat_no_attention_exclude": dict(attn_layer=0, exclude_types=[[0, 2]], set_davg_zero=False),
    "concat_no_output_tebd_bias": dict(concat_output_tebd=False, use_tebd_bias=True, scaling_factor=2.0,
                                       resnet_dt=True, set_davg_zero=False),
    "strip_two_side": dict(tebd_input_mode="strip", set_davg_zero=False),
    "strip_smooth_one_side_exclude": dict(tebd_input_mode="strip", smooth_type_embedding=True, type_one_side=True,
                                          exclude_types=[[1, 1], [0, 2]], set_davg_zero=False),
}


@pytest.mark.parametrize("options", SE_ATTEN_CASES.values(), ids=SE_ATTEN_CASES.keys())
def test_se_atten_descriptor(options):
    from deeppot.descriptor.se_atten import DescriptorSeAtten

    descriptor = DescriptorSeAtten(ntypes=3, rcut=6.0, rcut_smth=0.5, sel=[NSEL], neuron=[4, 8, 16], axis_neuron=4,
                                   tebd_dim=4, attn=8, seed=7, **options)
    assert descriptor.serialize()["type"] == "dpa1"
    assert_descriptor_parity(randomize(descriptor, 11))


@pytest.mark.parametrize("options", [{}, {"exclude_types": [[0, 1]], "type_one_side": True}], ids=["plain", "exclude"])
def test_se_atten_v2_descriptor(options):
    from deeppot.descriptor.se_atten import DescriptorSeAttenV2

    descriptor = DescriptorSeAttenV2(ntypes=3, rcut=6.0, rcut_smth=0.5, sel=[NSEL], neuron=[4, 8, 16], axis_neuron=4,
                                     tebd_dim=4, attn=8, seed=9, **options)
    data = descriptor.serialize()
    assert data["type"] == "se_atten_v2" and "tebd_input_mode" not in data
    assert_descriptor_parity(randomize(descriptor, 13))


@pytest.mark.parametrize("descriptor_type, options", [
    ("dpa1", {"tebd_input_mode": "concat", "smooth_type_embedding": True}),
    ("se_atten", {"tebd_input_mode": "strip", "type_one_side": True, "use_tebd_bias": True}),
    ("se_atten_v2", {}),
], ids=["dpa1_concat", "se_atten_strip", "se_atten_v2"])
def test_dpmodel_built_descriptor_loads(descriptor_type, options):
    """A descriptor constructed by deepmd.dpmodel itself (its own initialisation and dict) loads into deeppot
    (``deserialize_descriptor``, alias dpa1 included), agrees, and serializes back to an equivalent dict."""
    from deepmd.dpmodel.descriptor.base_descriptor import BaseDescriptor

    from deeppot.descriptor import deserialize_descriptor

    native = BaseDescriptor.get_class_by_type(descriptor_type)(
        rcut=6.0, rcut_smth=0.5, sel=NSEL, ntypes=3, neuron=[4, 8], axis_neuron=4, tebd_dim=4, attn=8, seed=3,
        **options)
    data = native.serialize()
    rng = np.random.default_rng(0)
    data["@variables"]["davg"][..., 0] = rng.uniform(0.05, 0.3, size=(3, 1))
    data["@variables"]["dstd"][..., 0] = rng.uniform(0.1, 0.5, size=(3, 1))
    ours = deserialize_descriptor(data)
    assert_descriptor_parity(ours, reference_descriptor(data))
    again = ours.serialize()
    assert again["type"] == data["type"] and again["@version"] == data["@version"]
    assert sorted(again) == sorted(data)


@pytest.mark.parametrize("options", [
    {}, {"tebd_input_mode": "strip", "set_davg_zero": False}, {"smooth_type_embedding": True, "exclude_types": [[0, 1]]},
], ids=["concat", "strip_davg", "smooth_exclude"])
def test_second_derivatives(options):
    """Force training differentiates forces again: first and second derivatives by finite differences, with padded
    slots, an excluded pair (its zero row has no direction) and a center without neighbors."""
    from deeppot.descriptor.se_atten import DescriptorSeAtten

    descriptor = DescriptorSeAtten(ntypes=2, rcut=4.0, rcut_smth=1.0, sel=[6], neuron=[3, 6], axis_neuron=2,
                                   tebd_dim=2, attn=4, seed=1, **options)
    randomize(descriptor, 5)
    gen = torch.Generator().manual_seed(2)
    rij = (4 * torch.rand(1, 3, 6, 3, generator=gen, dtype=torch.float64) - 2).requires_grad_(True)
    mask = torch.tensor([[[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [0] * 6]], dtype=torch.bool)
    center_type = torch.tensor([[0, 1, 0]])
    nei_type = torch.where(mask, torch.tensor([[[0, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0] * 6]]), -1)

    weights = torch.randn(descriptor.dim_out, generator=gen, dtype=torch.float64)

    def projected(r):  # a scalar like an energy: its gradient is what force training differentiates again
        return (descriptor(r, mask, center_type, nei_type) * weights).sum()

    assert torch.autograd.gradcheck(projected, (rij,))
    assert torch.autograd.gradgradcheck(projected, (rij,), fast_mode=True)
