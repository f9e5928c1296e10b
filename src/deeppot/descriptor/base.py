"""The interface every descriptor implements (DESIGN.md "Plug-ins, not branches").

A descriptor maps the pair vectors of a center's neighbor slots to one row per atom. Two slot layouts
(``mixed_types``, spec 3.2):
- type-blocked (``mixed_types`` False): ``sel[t]`` slots for neighbors of type t, starting at
  ``sel_offsets[t]``, nnei = sum(sel), real neighbors first in each block (nearest first, padding after);
- mixed (``mixed_types`` True): ``sel == [nsel]``, one block of nnei = nsel slots holding the nsel nearest
  neighbors of any type, nearest first, padding after.
The model, statistics, freeze, test and the physics checks use only what is defined here:

- ``ntypes``, ``rcut``, ``rcut_smth`` (Angstrom), ``sel``, ``nnei``, ``sel_offsets``, ``mixed_types``, ``dtype``;
- ``dim_out``: width of the descriptor row; ``has_rotation_matrix``: whether it offers the M1 x 3
  equivariant matrix dipole/polar fittings need; ``shared_fitting``: whether its rows carry the center's type
  (mixed types, a type embedding), so that one fitting net serves every type;
- ``forward(rij, nei_mask, center_type, nei_type)`` -> nf x nloc x dim_out; nei_type (nf x nloc x nnei int64)
  is the type of each slot's neighbor, -1 where nei_mask is False;
- ``forward_with_rotation(...)`` (same inputs) -> (descriptor, rotation matrix nf x nloc x M1 x 3) and ``dim_emb``
  (M1), for descriptors with ``has_rotation_matrix``: what dipole and polar fittings rotate their output with;
- ``compute_input_stats(samples, protection)``: set davg/dstd from (rij, nei_mask, center_type, nei_type)
  samples (spec 3.4); the environment rows have ``env_width`` columns (4: [s, sx/r, sy/r, sz/r]; 1: [s]);
- ``serialize()`` / ``deserialize(data)``: DeePMD-kit's descriptor dict (spec section 5);
- ``from_config(config, ntypes, type_embedding)``: build from the validated, resolved ``model/descriptor``
  section (config.model.ModelConfig.resolve_sel).
- compression (``deeppot compress``, spec section 6): ``compression_refusal()`` (None, or why not),
  ``enable_compression(min_nbor_dist, table_extrapolate, table_stride_1, table_stride_2, check_frequency)``
  (DeePMD-kit's signature) and ``compressed``.
Exclusions (``exclude_types``) zero the normalised rows of excluded (center type, neighbor type) pairs, looked
up in an ntypes x ntypes table, so they work in both layouts.
"""

from typing import Iterable, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from deeppot.geometry.env_mat import environment_matrix
from deeppot.nn.mlp import NetworkCollection
from deeppot.nn.precision import precision_name, resolve_dtype
from deeppot.nn.type_embedding import TypeEmbedding
from deeppot.tracing import graph_tracing


class Descriptor(nn.Module):
    """Base of every descriptor: cut-offs, the slot layout, statistics, exclusions."""

    type_name = ""  # DeePMD-kit's canonical type name, set by each subclass
    has_rotation_matrix = False
    mixed_types = False  # True: one block of sel[0] slots, neighbors of any type (see the module docstring)
    periodic = True  # False: every frame is an isolated cluster (se_a_mask, no cut-off); the model refuses a cell
    __jit_unused_properties__ = ["dim_emb"]  # Python-side only (model building); TorchScript must not compile it

    def __init__(
        self,
        ntypes: int,
        rcut: float,
        rcut_smth: float,
        sel: List[int],
        env_width: int,
        exclude_types: Optional[List[Tuple[int, int]]] = None,
        env_protection: float = 0.0,
        set_davg_zero: bool = False,
        precision: str = "float64",
        trainable: bool = True,
    ):
        super().__init__()
        if self.mixed_types and len(sel) != 1:
            raise ValueError(f"{self.type_name or 'a mixed-type'} descriptor takes one sel (an int), got {list(sel)}")
        self.ntypes = int(ntypes)
        self.rcut = float(rcut)
        self.rcut_smth = float(rcut_smth)
        self.sel = [int(s) for s in sel]
        self.nnei = int(sum(self.sel))
        self.sel_offsets = [int(x) for x in np.concatenate([[0], np.cumsum(self.sel)[:-1]])]
        self.env_width = int(env_width)
        self.exclude_types = [tuple(int(t) for t in pair) for pair in (exclude_types or [])]
        self.has_exclude = len(self.exclude_types) > 0
        self.env_protection = float(env_protection)
        self.set_davg_zero = bool(set_davg_zero)
        self.trainable = bool(trainable)
        self.compressed = False  # embedding nets replaced by tables (enable_compression)
        self.shared_fitting = bool(self.mixed_types)  # one fitting net for every center type (rows carry the type)
        self.dtype = resolve_dtype(precision)
        self.register_buffer("davg", torch.zeros(self.ntypes, self.nnei, self.env_width, dtype=self.dtype))
        self.register_buffer("dstd", torch.ones(self.ntypes, self.nnei, self.env_width, dtype=self.dtype))
        self.register_buffer("pair_excluded", self._excluded_pairs(), persistent=False)
        starts = torch.tensor(self.sel_offsets, dtype=torch.long)
        self.register_buffer("block_starts", starts, persistent=False)  # first slot of each type block
        self.register_buffer("block_ends", starts + torch.tensor(self.sel), persistent=False)  # one past its last

    @classmethod
    def from_config(cls, config, ntypes: int, type_embedding=None) -> "Descriptor":
        """Build from a validated, resolved ``model/descriptor`` section (its keys are the constructor's
        arguments, its sel numbers); ``type_embedding`` is the model-level section, given only to descriptors
        whose section takes it (``TAKES_TYPE_EMBEDDING``, checked by the config layer)."""
        options = config.model_dump(exclude={"type", "sel", "precision"})
        if type_embedding is not None:
            options["type_embedding"] = TypeEmbedding(
                ntypes, precision=type_embedding.resolved_precision, **type_embedding.model_dump(exclude={"precision"})
            )
        return cls(ntypes=ntypes, sel=config.resolved_sel, precision=config.resolved_precision, **options)

    @property
    def dim_out(self) -> int:
        raise NotImplementedError

    @property
    def dim_emb(self) -> int:
        """M1, the number of rows of the rotation matrix (descriptors with ``has_rotation_matrix``). AttributeError
        otherwise (TorchScript's module scan reads every property and tolerates only that)."""
        raise AttributeError(f"descriptor {self.type_name} has no rotation matrix (tensor fittings need one)")

    def forward_with_rotation(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The descriptor (nf x nloc x dim_out) and the rotation matrix (nf x nloc x M1 x 3) DeePMD-kit's dipole
        and polar fittings rotate their output with; inputs as :meth:`forward`. Only descriptors with
        ``has_rotation_matrix`` implement it."""
        raise NotImplementedError("descriptor " + self.type_name + " has no rotation matrix (tensor fittings need one)")

    # ------------------------------------------------------------ environment
    def _excluded_pairs(self) -> torch.Tensor:
        """ntypes x ntypes: 1 where (center type, neighbor type) is in exclude_types (either order)."""
        return excluded_pair_table(self.ntypes, self.exclude_types).to(self.dtype)

    def _keep_factor(self, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor) -> torch.Tensor:
        """0 for real neighbors of an excluded type pair, else 1: nf x nloc x nnei x 1."""
        excluded = self.pair_excluded[center_type.unsqueeze(-1), nei_type.clamp(min=0)] * nei_mask.to(self.dtype)
        return (1.0 - excluded).unsqueeze(-1)

    def _environment(self, rij: torch.Tensor, nei_mask: torch.Tensor) -> torch.Tensor:
        env = environment_matrix(rij.to(self.dtype), nei_mask, self.rcut_smth, self.rcut, self.env_protection)
        return env if self.env_width == 4 else env[..., : self.env_width]

    def raw_environment(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> torch.Tensor:
        """Unnormalised rows (davg=0, dstd=1), excluded pairs zeroed: nf x nloc x nnei x env_width."""
        return self._environment(rij, nei_mask) * self._keep_factor(nei_mask, center_type, nei_type)

    def normalized_environment(
        self, rij: torch.Tensor, nei_mask: torch.Tensor, center_type: torch.Tensor, nei_type: torch.Tensor
    ) -> torch.Tensor:
        """(row - davg) / dstd of the center's type, excluded pairs zeroed after: nf x nloc x nnei x env_width.
        rij: nf x nloc x nnei x 3 (Angstrom); nei_mask: nf x nloc x nnei; center_type: nf x nloc;
        nei_type: nf x nloc x nnei (-1 where nei_mask is False)."""
        env = (self._environment(rij, nei_mask) - self.davg[center_type]) / self.dstd[center_type]
        if self.has_exclude:
            env = env * self._keep_factor(nei_mask, center_type, nei_type)
        return env

    def padded_rows(self) -> torch.Tensor:
        """The normalised row of a padded slot, -davg/dstd: ntypes x nnei x env_width."""
        return (-self.davg / self.dstd).to(self.dtype)

    def block_fill(self, mask: torch.Tensor) -> Tuple[torch.Tensor, List[int]]:
        """Real neighbors fill each type block from the front (mask: n x nnei). Returns the head width of each
        block, the longest filling over all centers, at least 2 (so that no traced size is 0 or 1) and at most
        sel: as a tensor (ntypes, long) and as a list. Past its head a block holds padding only."""
        filled = torch.nn.functional.pad(torch.cumsum(mask.to(torch.int32), dim=1), (1, 0))  # n x (nnei + 1)
        counts = filled[:, self.block_ends] - filled[:, self.block_starts]  # n x ntypes real neighbors
        fill = torch.zeros(self.ntypes, dtype=torch.long, device=mask.device)
        if mask.shape[0] > 0:
            fill = torch.minimum(counts.max(dim=0).values.clamp(min=2), self.block_ends - self.block_starts)
        widths = torch.jit.annotate(List[int], fill.tolist())
        if not torch.jit.is_scripting() and graph_tracing():  # bounds of the traced data-dependent widths
            for k, sel in enumerate(self.sel):
                if sel > 2:
                    torch.ops.aten.sym_constrain_range_for_size.default(widths[k], min=2, max=sel)
                else:  # a block of 1 or 2 slots has the fixed width sel (torch refuses bounds below 3)
                    widths[k] = sel
        return fill, widths

    # ------------------------------------------------------------ compression
    @torch.jit.unused
    def compression_refusal(self) -> Optional[str]:
        """None if :meth:`enable_compression` can tabulate this descriptor, else why not, in words for the user."""
        return "it has no embedding net of one scalar input to tabulate"

    @torch.jit.unused
    def enable_compression(
        self, min_nbor_dist: float, table_extrapolate: float = 5.0, table_stride_1: float = 0.01,
        table_stride_2: float = 0.1, check_frequency: int = -1,
    ) -> None:
        """Evaluate the embedding nets from tables of quintic pieces from now on (spec section 6): the first table
        covers the inputs the training data reach (min_nbor_dist, Angstrom, the smallest interatomic distance) with
        stride table_stride_1, the second up to table_extrapolate times its upper bound with table_stride_2;
        check_frequency > 0 warns every that many evaluations when inputs leave the tables."""
        raise ValueError(f"descriptor {self.type_name} cannot be compressed: {self.compression_refusal()}")

    # ------------------------------------------------------------- statistics
    @torch.jit.unused
    def compute_input_stats(
        self, samples: Iterable[Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]], protection: float = 0.01
    ) -> None:
        """davg/dstd per center type from (rij, nei_mask, center_type, nei_type) samples (spec 3.4): every slot pooled,
        padding counted as zeros; davg = [avg_r, 0, 0, 0], dstd = [std_r, std_a, std_a, std_a] (radial-only
        descriptors keep column 0); std below ``protection`` becomes ``protection``; an unseen type gets
        avg 0 and std 0.1; ``set_davg_zero`` keeps davg 0. Virtual centers (type -1) are not pooled."""
        sums = np.zeros((self.ntypes, 5))  # per center type: sum r, sum r^2, sum a, sum a^2, number of slots
        with torch.no_grad():
            for rij, nei_mask, center_type, nei_type in samples:
                env = self.raw_environment(rij, nei_mask, center_type.clamp(min=0), nei_type)
                env = env.to(torch.float64).numpy()
                ctype = center_type.numpy()
                for t in range(self.ntypes):
                    rows = env[ctype == t]  # n x nnei x env_width
                    radial, angular = rows[..., 0], rows[..., 1:]
                    sums[t] += [radial.sum(), (radial**2).sum(), angular.sum(), (angular**2).sum(), radial.size]
        davg = np.zeros((self.ntypes, self.nnei, self.env_width))
        dstd = np.ones((self.ntypes, self.nnei, self.env_width))
        for t in range(self.ntypes):
            avg_r, std_r = _mean_std(sums[t, 0], sums[t, 1], sums[t, 4], protection)
            _, std_a = _mean_std(sums[t, 2], sums[t, 3], 3 * sums[t, 4], protection)
            if not self.set_davg_zero:
                davg[t, :, 0] = avg_r
            dstd[t, :, 0] = std_r
            dstd[t, :, 1:] = std_a
        with torch.no_grad():
            self.davg.copy_(torch.from_numpy(davg))
            self.dstd.copy_(torch.from_numpy(dstd))

    # ---------------------------------------------------------- serialization
    @torch.jit.unused
    def serialize(self) -> dict:
        raise NotImplementedError

    @torch.jit.unused
    def _common_dict(self) -> dict:
        """The keys every DeePMD-kit descriptor dict of this family holds (spec section 5)."""
        return {
            "@class": "Descriptor",
            "type": self.type_name,
            "@version": 2,
            "rcut": self.rcut,
            "rcut_smth": self.rcut_smth,
            "sel": list(self.sel),
            "exclude_types": [list(p) for p in self.exclude_types],
            "env_protection": self.env_protection,
            "set_davg_zero": self.set_davg_zero,
            "trainable": self.trainable,
            "precision": precision_name(self.dtype),
            "env_mat": {
                "rcut": self.rcut,
                "rcut_smth": self.rcut_smth,
                "protection": self.env_protection,
                "use_exp_switch": False,
            },
            "@variables": {
                "davg": self.davg.detach().cpu().numpy().copy(),
                "dstd": self.dstd.detach().cpu().numpy().copy(),
            },
            "type_map": None,
        }

    @staticmethod
    @torch.jit.unused
    def _common_arguments(data: dict) -> dict:
        """Constructor arguments every descriptor of this family reads from a DeePMD-kit dict."""
        if data.get("env_mat", {}).get("use_exp_switch", False):
            raise ValueError("the exponential switch is not supported")
        return dict(
            ntypes=np.asarray(data["@variables"]["davg"]).shape[0],
            rcut=data["rcut"],
            rcut_smth=data["rcut_smth"],
            sel=data["sel"],
            exclude_types=data.get("exclude_types", []),
            env_protection=data.get("env_protection", 0.0),
            set_davg_zero=data.get("set_davg_zero", False),
            precision=data["precision"],
            trainable=data.get("trainable", True),
        )

    @torch.jit.unused
    def _load_embeddings(self, data: dict) -> None:
        """The embedding nets (DeePMD-kit's ``embeddings`` collection) and davg/dstd of a descriptor dict."""
        self.embeddings = nn.ModuleList(NetworkCollection.deserialize(data["embeddings"], self.dtype))
        with torch.no_grad():
            self.davg.copy_(torch.as_tensor(np.asarray(data["@variables"]["davg"])))
            self.dstd.copy_(torch.as_tensor(np.asarray(data["@variables"]["dstd"])))


def excluded_pair_table(ntypes: int, pairs: Iterable[Tuple[int, int]]) -> torch.Tensor:
    """ntypes x ntypes bool: True at (a, b) and (b, a) for every (a, b) in ``pairs``."""
    table = torch.zeros(ntypes, ntypes, dtype=torch.bool)
    for ti, tj in pairs:
        table[ti, tj] = True
        table[tj, ti] = True
    return table


def _mean_std(total: float, total_sq: float, count: float, protection: float) -> Tuple[float, float]:
    if count == 0:
        return 0.0, 0.1
    mean = total / count
    std = np.sqrt(max(total_sq / count - mean * mean, 0.0))
    return mean, max(std, protection)
