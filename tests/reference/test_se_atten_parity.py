"""Parity of the attention descriptor se_atten (DPA-1) / se_atten_v2 and its type embedding with DeePMD-kit 3.2's
numpy ``deepmd.dpmodel`` to 1e-10 in float64, at descriptor level (same serialized dict, same neighbor slots).
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
