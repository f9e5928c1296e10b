"""DeepPot-SE descriptor ``se_e2_a`` (spec sections 3.3, 3.4, 3.6).

For center i with normalised environment rows R_j (1 x 4) and embeddings G_j = N(s_j) (1 x M1),
``gr_i = (1/nnei) sum_j G_j^T R_j`` (M1 x 4) and ``D_i = gr_i gr_i[:M2]^T`` flattened (a*M2 + b),
M2 = axis_neuron. nnei = sum(sel), padded slots included (they normalise to -davg/dstd).
"""

from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from deeppot.geometry.env_mat import environment_matrix
from deeppot.nn.mlp import EmbeddingNet, NetworkCollection
from deeppot.nn.precision import precision_name, resolve_dtype


class DescriptorSeA(nn.Module):
    """se_e2_a on type-blocked neighbor slots. All lengths in Angstrom."""

    def __init__(
        self,
        ntypes: int,
        rcut: float,
        rcut_smth: float,
        sel: List[int],
        neuron: List[int],
        axis_neuron: int,
        activation_function: str = "tanh",
        resnet_dt: bool = False,
        type_one_side: bool = True,
        exclude_types: Optional[List[Tuple[int, int]]] = None,
        env_protection: float = 0.0,
        set_davg_zero: bool = False,
        precision: str = "float64",
        trainable: bool = True,
        seed: Optional[int] = None,
    ):
        super().__init__()
        self.ntypes = ntypes
        self.rcut = float(rcut)
        self.rcut_smth = float(rcut_smth)
        self.sel = [int(s) for s in sel]
        self.nnei = int(sum(self.sel))
        self.sel_offsets = [int(x) for x in np.concatenate([[0], np.cumsum(self.sel)[:-1]])]
        self.neuron = list(neuron)
        self.axis_neuron = int(axis_neuron)
        self.activation_function = activation_function
        self.resnet_dt = resnet_dt
        self.type_one_side = type_one_side
        self.exclude_types = [tuple(int(t) for t in pair) for pair in (exclude_types or [])]
        self.has_exclude = len(self.exclude_types) > 0
        self.env_protection = float(env_protection)
        self.set_davg_zero = set_davg_zero
        self.trainable = trainable
        self.dtype = resolve_dtype(precision)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        nnets = ntypes if type_one_side else ntypes * ntypes
        self.embeddings = nn.ModuleList(
            EmbeddingNet(1, self.neuron, activation_function, resnet_dt, self.dtype, generator, trainable)
            for _ in range(nnets)
        )
        self.register_buffer("davg", torch.zeros(ntypes, self.nnei, 4, dtype=self.dtype))
        self.register_buffer("dstd", torch.ones(ntypes, self.nnei, 4, dtype=self.dtype))
        self.register_buffer("pair_excluded", self._excluded_slots(), persistent=False)
        slot_type = torch.cat([torch.full((width,), t, dtype=torch.long) for t, width in enumerate(self.sel)])
        self.register_buffer("slot_type", slot_type, persistent=False)  # nnei: the neighbor type of each slot's block

    def _excluded_slots(self) -> torch.Tensor:
        """ntypes x nnei: 1 where (center type, slot's block type) is in exclude_types."""
        table = torch.zeros(self.ntypes, self.nnei, dtype=self.dtype)
        for ti, tj in self.exclude_types:
            for a, b in ((ti, tj), (tj, ti)):
                table[a, self.sel_offsets[b] : self.sel_offsets[b] + self.sel[b]] = 1.0
        return table

    @property
    def dim_out(self) -> int:
        return self.neuron[-1] * self.axis_neuron

    def raw_environment(self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor) -> torch.Tensor:
        """Unnormalised rows (davg=0, dstd=1), excluded pairs zeroed: nf x nloc x nnei x 4."""
        env = environment_matrix(rij.to(self.dtype), nei_mask, self.rcut_smth, self.rcut, self.env_protection)
        return env * self._keep_factor(nei_mask, center_type)

    def _keep_factor(self, nei_mask: torch.Tensor, center_type: torch.Tensor) -> torch.Tensor:
        """0 for real neighbors of an excluded type pair, else 1: nf x nloc x nnei x 1."""
        excluded = self.pair_excluded[center_type] * nei_mask.to(self.dtype)
        return (1.0 - excluded).unsqueeze(-1)

    def forward(self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor) -> torch.Tensor:
        """rij: nf x nloc x nnei x 3 (Angstrom); nei_mask: nf x nloc x nnei bool; center_type: nf x nloc.

        Returns the descriptor, nf x nloc x (neuron[-1] * axis_neuron).
        """
        nf, nloc = rij.shape[0], rij.shape[1]
        env = environment_matrix(rij.to(self.dtype), nei_mask, self.rcut_smth, self.rcut, self.env_protection)
        env = (env - self.davg[center_type]) / self.dstd[center_type]
        if self.has_exclude:
            env = env * self._keep_factor(nei_mask, center_type)
        n, m1 = nf * nloc, self.neuron[-1]
        env = env.reshape(n, self.nnei, 4)  # n x nnei x 4
        mask = nei_mask.reshape(n, self.nnei)
        ctype = center_type.reshape(-1)
        radial = env[:, :, 0].reshape(n * self.nnei, 1)
        # a padded slot's embedding input depends only on (center type, slot): -davg/dstd
        pad_input = (-self.davg[:, :, :1] / self.dstd[:, :, :1]).to(self.dtype)  # ntypes x nnei x 1
        positions: List[torch.Tensor] = []  # flat (center, slot) index of the real neighbors of each net
        values: List[torch.Tensor] = []  # their embeddings
        pad_blocks: List[torch.Tensor] = []  # per net: embeddings of padded slots
        for k, net in enumerate(self.embeddings):
            tj = k % self.ntypes if self.type_one_side else k // self.ntypes
            start, stop = self.sel_offsets[tj], self.sel_offsets[tj] + self.sel[tj]
            selected = mask & (self.slot_type == tj).unsqueeze(0)
            pad_rows = pad_input[:, start:stop, :]  # ntypes x sel_t x 1
            if not self.type_one_side:
                selected = selected & (ctype == k % self.ntypes).unsqueeze(1)
                pad_rows = pad_rows[k % self.ntypes]  # sel_t x 1
            flat = torch.nonzero(selected.reshape(-1)).squeeze(-1)
            # one call of the net for its real neighbors and its pad rows
            outputs = net(torch.cat([radial.index_select(0, flat), pad_rows.reshape(-1, 1)]))
            positions.append(flat)
            values.append(outputs[: flat.shape[0]])
            pad_blocks.append(outputs[flat.shape[0] :].reshape(pad_rows.shape[:-1] + (m1,)))
        if self.type_one_side:
            pad_table = torch.cat(pad_blocks, dim=1)  # ntypes x nnei x M1
        else:  # net index ti + tj * ntypes: stack center types, then join neighbor blocks
            pad_table = torch.cat(
                [torch.stack(pad_blocks[tj * self.ntypes : (tj + 1) * self.ntypes]) for tj in range(self.ntypes)], dim=1
            )
        embedded = (
            pad_table.reshape(self.ntypes, self.nnei * m1)
            .index_select(0, ctype)
            .reshape(n * self.nnei, m1)
            .index_copy(0, torch.cat(positions), torch.cat(values))
        )
        gr_t = torch.matmul(env.transpose(1, 2), embedded.reshape(n, self.nnei, m1)) / self.nnei  # n x 4 x M1
        gr = gr_t.transpose(1, 2)  # n x M1 x 4
        desc = torch.matmul(gr, gr_t[:, :, : self.axis_neuron])  # n x M1 x M2
        return desc.reshape(nf, nloc, m1 * self.axis_neuron)

    @torch.jit.unused
    def serialize(self) -> dict:
        return {
            "@class": "Descriptor",
            "type": "se_e2_a",
            "@version": 2,
            "rcut": self.rcut,
            "rcut_smth": self.rcut_smth,
            "sel": list(self.sel),
            "neuron": list(self.neuron),
            "axis_neuron": self.axis_neuron,
            "resnet_dt": self.resnet_dt,
            "trainable": self.trainable,
            "type_one_side": self.type_one_side,
            "exclude_types": [list(p) for p in self.exclude_types],
            "env_protection": self.env_protection,
            "set_davg_zero": self.set_davg_zero,
            "activation_function": self.activation_function,
            "precision": precision_name(self.dtype),
            "spin": None,
            "env_mat": {
                "rcut": self.rcut,
                "rcut_smth": self.rcut_smth,
                "protection": self.env_protection,
                "use_exp_switch": False,
            },
            "embeddings": NetworkCollection.serialize(
                list(self.embeddings), 1 if self.type_one_side else 2, self.ntypes, "embedding_network"
            ),
            "@variables": {
                "davg": self.davg.detach().cpu().numpy().copy(),
                "dstd": self.dstd.detach().cpu().numpy().copy(),
            },
            "type_map": None,
        }

    @classmethod
    def deserialize(cls, data: dict) -> "DescriptorSeA":
        if data.get("compress") is not None:
            raise ValueError("compressed se_e2_a models are not supported yet")
        if data.get("env_mat", {}).get("use_exp_switch", False):
            raise ValueError("the exponential switch is not supported")
        embeddings = data["embeddings"]
        davg = np.asarray(data["@variables"]["davg"])
        descriptor = cls(
            ntypes=davg.shape[0],
            rcut=data["rcut"],
            rcut_smth=data["rcut_smth"],
            sel=data["sel"],
            neuron=data["neuron"],
            axis_neuron=data["axis_neuron"],
            activation_function=data["activation_function"],
            resnet_dt=data["resnet_dt"],
            type_one_side=data["type_one_side"],
            exclude_types=data.get("exclude_types", []),
            env_protection=data.get("env_protection", 0.0),
            set_davg_zero=data.get("set_davg_zero", False),
            precision=data["precision"],
            trainable=data.get("trainable", True),
        )
        descriptor.embeddings = nn.ModuleList(NetworkCollection.deserialize(embeddings, descriptor.dtype))
        with torch.no_grad():
            descriptor.davg.copy_(torch.as_tensor(davg))
            descriptor.dstd.copy_(torch.as_tensor(np.asarray(data["@variables"]["dstd"])))
        return descriptor
