"""DeepPot-SE descriptor ``se_e2_a`` (spec sections 3.3, 3.4, 3.6).

For center i with normalised environment rows R_j (1 x 4) and embeddings G_j = N(s_j) (1 x M1),
``gr_i = (1/nnei) sum_j G_j^T R_j`` (M1 x 4) and ``D_i = gr_i gr_i[:M2]^T`` flattened (a*M2 + b),
M2 = axis_neuron. nnei = sum(sel), padded slots included (they normalise to -davg/dstd).

Compressed (``deeppot compress``, spec section 6): each G is a table of quintic pieces in s and the sum
``sum_j G_j^T R_j`` is evaluated fused with it (:class:`deeppot.nn.tabulate.EmbeddingTables`); padded slots
still contribute ``G(s_pad)^T R_pad`` each.
"""

from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from deeppot.geometry.env_mat import environment_matrix
from deeppot.nn.mlp import EmbeddingNet, NetworkCollection
from deeppot.nn.precision import precision_name, resolve_dtype
from deeppot.nn.tabulate import EmbeddingTables, radial_input_bounds
from deeppot.nn.tabulate_kernel import embedding_tables


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
        starts = torch.tensor(self.sel_offsets, dtype=torch.long)
        self.register_buffer("block_starts", starts, persistent=False)  # first slot of each type block
        self.register_buffer("block_ends", starts + torch.tensor(self.sel), persistent=False)  # one past its last
        self.tables = EmbeddingTables([], [], self.neuron[-1], self.dtype)  # set by enable_compression
        self.compressed = False

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
        # padded slots normalise to the constant row -davg/dstd of (center type, slot)
        pad_env = (-self.davg / self.dstd).to(self.dtype)  # ntypes x nnei x 4
        # real neighbors fill each block from the front: past the longest filling (over all centers, at
        # least 2 so that no traced size is 0 or 1) a block holds padding only, whose rows are constants
        filled = torch.nn.functional.pad(torch.cumsum(mask.to(torch.int32), dim=1), (1, 0))  # n x (nnei + 1)
        counts = filled[:, self.block_ends] - filled[:, self.block_starts]  # n x ntypes real neighbors
        fill = torch.zeros(self.ntypes, dtype=torch.long, device=rij.device)  # ntypes head widths
        if n > 0:
            fill = torch.minimum(counts.max(dim=0).values.clamp(min=2), self.block_ends - self.block_starts)
        widths = torch.jit.annotate(List[int], fill.tolist())
        if not torch.jit.is_scripting():  # bounds of the data-dependent widths for graph export (export/aoti.py)
            for width, sel in zip(widths, self.sel):
                if sel > 2:  # a block of 1 or 2 slots has a fixed width (torch refuses bounds below 3)
                    torch.ops.aten.sym_constrain_range_for_size.default(width, min=2, max=sel)
        gr_t = torch.zeros(n, 4, m1, dtype=self.dtype, device=rij.device)  # gr transposed: n x 4 x M1
        tails: List[torch.Tensor] = []  # padding-only tails, as ntypes x 4 x M1 tables by center type
        for k, net in enumerate(self.embeddings):
            ti = k % self.ntypes
            tj = ti if self.type_one_side else k // self.ntypes
            start, stop, width = self.sel_offsets[tj], self.sel_offsets[tj] + self.sel[tj], widths[tj]
            rows = torch.arange(0)
            head = env.narrow(1, start, width)  # n_k x width x 4
            if not self.type_one_side:
                rows = torch.nonzero(ctype == ti).squeeze(-1)
                head = head[rows]
            block_pad = pad_env[:, start:stop]  # ntypes x sel_t x 4
            if not self.type_one_side:
                block_pad = block_pad[ti : ti + 1]  # only this net's center type
            if self.compressed:  # sum_j R_j^T G(s_j) fused with the table lookup
                contribution = self.tables.contract(k, head[:, :, 0], head)  # n_k x 4 x M1
                pad_g = self.tables.forward(k, block_pad[:, :, 0])  # (ntypes or 1) x sel_t x M1
            else:
                head_g = net(head[:, :, :1].reshape(-1, 1)).reshape(head.shape[0], width, m1)
                contribution = torch.matmul(head.transpose(1, 2), head_g)  # n_k x 4 x M1
                pad_g = net(block_pad[:, :, :1].reshape(-1, 1)).reshape(block_pad.shape[0], stop - start, m1)
            gr_t = gr_t + contribution if self.type_one_side else gr_t.index_add(0, rows, contribution)
            tail = self._padding_tail(block_pad, pad_g, fill[tj : tj + 1])  # (ntypes or 1) x 4 x M1
            if not self.type_one_side:
                tail = torch.nn.functional.pad(tail, (0, 0, 0, 0, ti, self.ntypes - 1 - ti))
            tails.append(tail)
        if len(tails) > 0:
            gr_t = gr_t + torch.stack(tails).sum(dim=0).index_select(0, ctype)
        gr_t = gr_t / self.nnei
        gr = gr_t.transpose(1, 2)  # n x M1 x 4
        desc = torch.matmul(gr, gr_t[:, :, : self.axis_neuron])  # n x M1 x M2
        return desc.reshape(nf, nloc, m1 * self.axis_neuron)

    @staticmethod
    def _padding_tail(block_pad: torch.Tensor, pad_g: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
        """sum over the padded slots width.. of a block of R_pad^T G(s_pad): T x 4 x M1, from the padded rows
        block_pad (T x sel_t x 4), their embeddings pad_g (T x sel_t x M1) and width (1, long). A gather from
        suffix sums, so no shape depends on the data."""
        per_slot = block_pad.unsqueeze(-1) * pad_g.unsqueeze(-2)  # T x sel_t x 4 x M1
        suffix = torch.nn.functional.pad(per_slot.flip(1).cumsum(1).flip(1), (0, 0, 0, 0, 0, 1))  # T x (sel_t+1) x 4 x M1
        return suffix.index_select(1, width).squeeze(1)

    # ------------------------------------------------------------ compression
    @torch.jit.unused
    def tabulated_nets(self) -> List[nn.Module]:
        """The one-input embedding nets that compression tabulates, in the order of the tables."""
        return list(self.embeddings)

    @torch.jit.unused
    def table_bounds(self, min_nbor_dist: float) -> List[Tuple[float, float]]:
        """(lower, upper) input range of each tabulated net: the normalised s of every center type it serves
        (all types with ``type_one_side``, net (ti, tj) serves ti)."""
        davg = self.davg[:, 0, 0].detach().double().cpu().numpy()
        dstd = self.dstd[:, 0, 0].detach().double().cpu().numpy()
        lower, upper = radial_input_bounds(davg, dstd, min_nbor_dist, self.rcut_smth, self.rcut)
        if self.type_one_side:
            return [(float(lower.min()), float(upper.max()))] * self.ntypes
        return [(float(lower[k % self.ntypes]), float(upper[k % self.ntypes])) for k in range(self.ntypes**2)]

    @torch.jit.unused
    def enable_compression(self, tables: EmbeddingTables) -> None:
        """Evaluate the embedding nets from ``tables`` (one per :meth:`tabulated_nets`) from now on."""
        self.tables = tables
        self.compressed = True

    @torch.jit.unused
    def serialize(self) -> dict:
        data = self._serialize_uncompressed()
        if self.compressed:  # DeePMD-kit's layout of a compressed descriptor (version 3)
            table_data, table_info = self.tables.serialize()
            data["@version"] = 3
            data["compress"] = {"@variables": {"compress_data": table_data, "compress_info": table_info}}
        return data

    @torch.jit.unused
    def _serialize_uncompressed(self) -> dict:
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
        if data.get("compress") is not None:
            tables = data["compress"]["@variables"]
            descriptor.enable_compression(embedding_tables(
                [np.asarray(d) for d in tables["compress_data"]], [np.asarray(i) for i in tables["compress_info"]],
                descriptor.neuron[-1], descriptor.dtype,
            ))
        return descriptor
