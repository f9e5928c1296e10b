"""What the two-body embedding descriptors se_e2_a and se_e2_r share: one-input embedding nets
G = N(s_j) of the normalised radial entry s_j of each slot, summed over the slots with weights.

``embedding_sum`` returns ``sum_j W_j^T G(s_j)`` over all nnei slots (padding included), with W_j the
normalised row R_j (4 columns, se_e2_a) or 1 (se_e2_r, ``radial_only``). Nets: one per neighbor type
(``type_one_side``) or one per (center, neighbor) type pair at index ti + tj * ntypes.

With a type embedding (DeePMD-kit TF's model-level ``type_embedding``, se_e2_a only) there is one net for all
type pairs and its input is ``[s_j, T[t_j]]`` (``type_one_side``) or ``[s_j, T[t_j], T[t_i]]``, T the ntypes x Y
table of :class:`deeppot.nn.type_embedding.TypeEmbedding`, t_j the type block of slot j (padded slots included,
as in DeePMD-kit), t_i the center's type: :meth:`RadialEmbeddingDescriptor.typed_embedding_sum`.

Speed (the filled-front trick, without a type embedding): real neighbors fill each type block from the front, so past the longest
filling over all centers a block holds padding only, whose rows are the constants -davg/dstd of (center
type, slot). The nets run on the heads only; the padding tails come from constant tables gathered by
center type.
"""

from typing import List, Optional, Tuple

import torch
from torch import nn

from deeppot.descriptor.base import Descriptor
from deeppot.nn.mlp import EmbeddingNet, NetworkCollection
from deeppot.nn.tabulate import EmbeddingTables, radial_input_bounds
from deeppot.nn.tabulate_kernel import compressed_entries, tables_from_entries, tabulate_nets
from deeppot.nn.type_embedding import TypeEmbedding


class RadialEmbeddingDescriptor(Descriptor):
    """Base of se_e2_a and se_e2_r: the embedding nets and their weighted sum over the slots."""

    def __init__(
        self,
        ntypes: int,
        rcut: float,
        rcut_smth: float,
        sel: List[int],
        neuron: List[int],
        radial_only: bool,
        activation_function: str = "tanh",
        resnet_dt: bool = False,
        type_one_side: bool = True,
        exclude_types: Optional[List[Tuple[int, int]]] = None,
        env_protection: float = 0.0,
        set_davg_zero: bool = False,
        precision: str = "float64",
        trainable: bool = True,
        seed: Optional[int] = None,
        type_embedding: Optional[TypeEmbedding] = None,
    ):
        super().__init__(ntypes, rcut, rcut_smth, sel, 1 if radial_only else 4, exclude_types, env_protection,
                         set_davg_zero, precision, trainable)
        self.radial_only = radial_only
        self.neuron = list(neuron)
        self.activation_function = activation_function
        self.resnet_dt = resnet_dt
        self.type_one_side = type_one_side
        self.type_embedding = type_embedding
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        nnets, in_dim = (ntypes if type_one_side else ntypes * ntypes), 1
        if type_embedding is not None:  # one net; input [s, T[t_j]] or [s, T[t_j], T[t_i]]
            nnets, in_dim = 1, 1 + type_embedding.dim_out * (1 if type_one_side else 2)
        self.embeddings = nn.ModuleList(
            EmbeddingNet(in_dim, self.neuron, activation_function, resnet_dt, self.dtype, generator, trainable)
            for _ in range(nnets)
        )
        slot_types = [t for t, count in enumerate(self.sel) for _ in range(count)]
        self.register_buffer("slot_types", torch.tensor(slot_types, dtype=torch.long), persistent=False)  # nnei
        self.tables = EmbeddingTables([], [], self.neuron[-1], self.dtype)  # set by enable_compression

    def embedding_sum(self, env: torch.Tensor, mask: torch.Tensor, ctype: torch.Tensor) -> torch.Tensor:
        """sum_j W_j^T G(s_j) over all slots: n x W x M1 (W = 1 if radial_only else 4, M1 = neuron[-1]).

        env: n x nnei x env_width normalised rows; mask: n x nnei real neighbors; ctype: n center types."""
        n, m1 = env.shape[0], self.neuron[-1]
        pad_env = self.padded_rows()  # ntypes x nnei x env_width
        fill, widths = self.block_fill(mask)
        width_w = 1 if self.radial_only else 4
        total = torch.zeros(n, width_w, m1, dtype=self.dtype, device=env.device)  # sum transposed: n x W x M1
        tails: List[torch.Tensor] = []  # padding-only tails, as ntypes x W x M1 tables by center type
        for k, net in enumerate(self.embeddings):
            ti = k % self.ntypes
            tj = ti if self.type_one_side else k // self.ntypes
            start, stop, width = self.sel_offsets[tj], self.sel_offsets[tj] + self.sel[tj], widths[tj]
            rows = torch.arange(0)
            head = env.narrow(1, start, width)  # n_k x width x env_width
            if not self.type_one_side:
                rows = torch.nonzero(ctype == ti).squeeze(-1)
                head = head[rows]
            block_pad = pad_env[:, start:stop]  # ntypes x sel_t x env_width
            if not self.type_one_side:
                block_pad = block_pad[ti : ti + 1]  # only this net's center type
            head_w = torch.ones_like(head) if self.radial_only else head  # weights W_j: n_k x width x W
            pad_w = torch.ones_like(block_pad) if self.radial_only else block_pad
            if self.compressed:  # sum_j W_j^T G(s_j) fused with the table lookup
                contribution = self.tables.contract(k, head[:, :, 0], head_w)  # n_k x W x M1
                pad_g = self.tables.forward(k, block_pad[:, :, 0])  # (ntypes or 1) x sel_t x M1
            else:
                head_g = net(head[:, :, :1].reshape(-1, 1)).reshape(head.shape[0], width, m1)
                contribution = torch.matmul(head_w.transpose(1, 2), head_g)  # n_k x W x M1
                pad_g = net(block_pad[:, :, :1].reshape(-1, 1)).reshape(block_pad.shape[0], stop - start, m1)
            total = total + contribution if self.type_one_side else total.index_add(0, rows, contribution)
            tail = self._padding_tail(pad_w, pad_g, fill[tj : tj + 1])  # (ntypes or 1) x W x M1
            if not self.type_one_side:
                tail = torch.nn.functional.pad(tail, (0, 0, 0, 0, ti, self.ntypes - 1 - ti))
            tails.append(tail)
        if len(tails) > 0:
            total = total + torch.stack(tails).sum(dim=0).index_select(0, ctype)
        return total

    def typed_embedding_sum(self, env: torch.Tensor, ctype: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """sum_j W_j^T G([s_j, T[t_j] (, T[t_i])]) over all slots with the one shared net: n x W x M1.

        env: n x nnei x env_width normalised rows; ctype: n center types; types: the type-embedding table T,
        ntypes x Y."""
        n, nnei = env.shape[0], env.shape[1]
        types = types.to(self.dtype)
        parts = [env[:, :, :1], types.index_select(0, self.slot_types).unsqueeze(0).expand(n, nnei, types.shape[1])]
        if not self.type_one_side:
            parts.append(types.index_select(0, ctype).unsqueeze(1).expand(n, nnei, types.shape[1]))
        net_input = torch.cat(parts, dim=-1)  # n x nnei x (1 + Y) or (1 + 2Y)
        g = self.embeddings[0](net_input.reshape(n * nnei, -1)).reshape(n, nnei, self.neuron[-1])
        weights = torch.ones_like(env[:, :, :1]) if self.radial_only else env  # n x nnei x W
        return torch.matmul(weights.transpose(1, 2), g)

    # ------------------------------------------------------------ compression
    @torch.jit.unused
    def compression_refusal(self) -> Optional[str]:
        if getattr(self, "type_embedding", None) is not None:
            return "its embedding net also takes the type embedding as input (DeePMD-kit does not compress it either)"
        return None

    @torch.jit.unused
    def enable_compression(
        self, min_nbor_dist: float, table_extrapolate: float = 5.0, table_stride_1: float = 0.01,
        table_stride_2: float = 0.1, check_frequency: int = -1,
    ) -> None:
        """Tabulate each embedding net on the normalised s of the center types it serves (all of them with
        type_one_side, center type ti for net (ti, tj)): from floor(-davg/dstd) (a padded slot) to the s of a
        neighbor at min_nbor_dist (Angstrom), ceiled (spec section 6)."""
        refusal = self.compression_refusal()
        if refusal is not None or self.compressed:
            raise ValueError(f"descriptor {self.type_name} cannot be compressed: {refusal or 'it already is'}")
        davg = self.davg[:, 0, 0].detach().double().cpu().numpy()
        dstd = self.dstd[:, 0, 0].detach().double().cpu().numpy()
        lower, upper = radial_input_bounds(davg, dstd, min_nbor_dist, self.rcut_smth, self.rcut)
        if self.type_one_side:
            bounds = [(float(lower.min()), float(upper.max()))] * len(self.embeddings)
        else:
            bounds = [(float(lower[k % self.ntypes]), float(upper[k % self.ntypes])) for k in range(self.ntypes**2)]
        self.tables = tabulate_nets(list(self.embeddings), bounds, table_extrapolate, table_stride_1, table_stride_2,
                                    check_frequency, self.neuron[-1], self.dtype)
        self.compressed = True

    @torch.jit.unused
    def _with_compression(self, data: dict) -> dict:
        """The descriptor dict ``data`` in DeePMD-kit's compressed layout if compressed."""
        if self.compressed:
            data.update(compressed_entries(self.tables))
        return data

    @torch.jit.unused
    def _load_compression(self, data: dict) -> None:
        """The tables of a compressed descriptor dict (DeePMD-kit's or ours), if it has them."""
        if data.get("compress") is not None:
            self.tables = tables_from_entries(data["compress"], self.neuron[-1], self.dtype)
            self.compressed = True

    @staticmethod
    def _padding_tail(block_w: torch.Tensor, pad_g: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
        """sum over the padded slots width.. of a block of W_pad^T G(s_pad): T x W x M1, from the padded
        weights block_w (T x sel_t x W), their embeddings pad_g (T x sel_t x M1) and width (1, long). A gather
        from suffix sums, so no shape depends on the data."""
        per_slot = block_w.unsqueeze(-1) * pad_g.unsqueeze(-2)  # T x sel_t x W x M1
        suffix = torch.nn.functional.pad(per_slot.flip(1).cumsum(1).flip(1), (0, 0, 0, 0, 0, 1))  # T x (sel_t+1) x W x M1
        return suffix.index_select(1, width).squeeze(1)

    @torch.jit.unused
    def _embedding_dict(self) -> dict:
        """The keys of the embedding nets in DeePMD-kit's descriptor dict."""
        return {
            "neuron": list(self.neuron),
            "resnet_dt": self.resnet_dt,
            "type_one_side": self.type_one_side,
            "activation_function": self.activation_function,
            "spin": None,
            "embeddings": NetworkCollection.serialize(
                list(self.embeddings), 0 if self.type_embedding is not None else 1 if self.type_one_side else 2,
                self.ntypes, "embedding_network"
            ),
        }
