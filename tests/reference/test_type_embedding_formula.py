"""se_e2_a with DeePMD-kit TF's model-level type embedding against a float64 numpy evaluation of its formula
(deepmd.dpmodel has no such model): T = N_T(one-hot), G_ij = N([s_ij, T[t_j]]) (type_one_side) or
N([s_ij, T[t_j], T[t_i]]), D_i = (gr gr[:M2]^T) with gr = R_i^T G_i / nnei, then [D_i, T[t_i]] through one fitting
net for every type, E_i = F([D_i, T[t_i]]) + bias_atom_e[t_i] + out_bias[t_i]. The dense nets are evaluated by
deepmd.dpmodel's EmbeddingNet / FittingNet from the serialized weights; everything else is written out here."""

import numpy as np
import pytest
from deepmd.dpmodel.utils.network import EmbeddingNet, FittingNet

from deeppot.export.compress import compress_model
from deeppot.model.energy_model import EnergyModel
from deeppot_test_models import evaluate, make_model, random_positions

RCUT, RCUT_SMTH, SEL = 4.0, 1.0, (14, 14, 14)


def environment_rows(coord: np.ndarray, atype: np.ndarray, i: int) -> tuple:
    """Unnormalised rows [s, s x/r, s y/r, s z/r] of atom i's slots (type-blocked, sel[t] per type, real
    neighbors first, zero rows for padding), each slot's block type and its real-neighbor flag."""
    rows, slot_types, real = [], [], []
    for t, count in enumerate(SEL):
        block = []
        for j in range(len(atype)):
            d = coord[j] - coord[i]
            r = np.linalg.norm(d)
            if j == i or atype[j] != t or r >= RCUT:
                continue
            u = (r - RCUT_SMTH) / (RCUT - RCUT_SMTH)
            w = 1.0 if r < RCUT_SMTH else u**3 * (-6 * u**2 + 15 * u - 10) + 1
            block.append(np.concatenate([[w / r], w / r * d / r]))
        assert len(block) <= count
        rows += block + [np.zeros(4)] * (count - len(block))
        slot_types += [t] * count
        real += [True] * len(block) + [False] * (count - len(block))
    return np.array(rows), np.array(slot_types), np.array(real)


def numpy_atomic_energies(data: dict, coord: np.ndarray, atype: np.ndarray) -> np.ndarray:
    descriptor, fitting = data["descriptor"], data["fitting"]
    ntypes = len(SEL)
    types = EmbeddingNet.deserialize(descriptor["type_embedding"]["embedding"]).call(np.eye(ntypes))  # ntypes x Y
    embedding = EmbeddingNet.deserialize(descriptor["embeddings"]["networks"][0])
    fitting_net = FittingNet.deserialize(fitting["nets"]["networks"][0])
    davg, dstd = descriptor["@variables"]["davg"], descriptor["@variables"]["dstd"]
    excluded = {tuple(p) for p in descriptor["exclude_types"]} | {tuple(p[::-1]) for p in descriptor["exclude_types"]}
    m2, nnei = descriptor["axis_neuron"], sum(SEL)
    energies = []
    for i, ti in enumerate(atype):
        rows, slot_types, real = environment_rows(coord, atype, i)
        rows = (rows - davg[ti]) / dstd[ti]
        rows[[bool(real[k] and (ti, slot_types[k]) in excluded) for k in range(nnei)]] = 0.0
        net_input = [rows[:, :1], types[slot_types]]
        if not descriptor["type_one_side"]:
            net_input.append(np.tile(types[ti], (nnei, 1)))
        g = embedding.call(np.concatenate(net_input, axis=1))  # nnei x M1
        gr = rows.T @ g / nnei  # 4 x M1
        d = (gr.T @ gr[:, :m2]).reshape(-1)  # M1 * M2
        fitting_input = np.concatenate([d, types[ti]])
        energies.append(fitting_net.call(fitting_input[None])[0, 0] + fitting["@variables"]["bias_atom_e"][ti, 0]
                        + data["@variables"]["out_bias"][0, ti, 0])
    return np.array(energies)


@pytest.mark.parametrize("type_one_side", [True, False])
def test_atomic_energies_follow_the_formula(type_one_side):
    rng = np.random.default_rng(7)
    coord = random_positions(16, np.zeros(3), np.full(3, 5.0), 0.9, rng)
    atype = rng.integers(0, 3, 16)
    model = make_model(ntypes=3, sel=SEL, rcut=RCUT, rcut_smth=RCUT_SMTH, type_embedding=(3, 6),
                       type_one_side=type_one_side, exclude_types=[[0, 2]], seed=41)
    data = model.serialize()
    assert len(data["fitting"]["nets"]["networks"]) == 1 and data["fitting"]["mixed_types"]
    ours = evaluate(model, coord, atype)["atom_energy"].reshape(-1)
    reference = numpy_atomic_energies(data, coord, atype)
    assert np.std(reference) > 1e-3  # the types and environments matter
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-10)
    # the serialized dict (deeppot's extension of se_e2_a's) rebuilds the same model
    again = evaluate(EnergyModel.deserialize(data), coord, atype)["atom_energy"].reshape(-1)
    np.testing.assert_array_equal(again, ours)


def test_unknown_extension_version_is_refused():
    data = make_model(type_embedding=(4,)).serialize()
    data["descriptor"]["deeppot_extension"]["@version"] = 2
    with pytest.raises(ValueError, match="newer deeppot"):
        EnergyModel.deserialize(data)


def test_compression_is_refused():
    with pytest.raises(Exception, match="cannot be compressed: its embedding net also takes the type embedding"):
        compress_model(make_model(type_embedding=(4,)), 0.9)
