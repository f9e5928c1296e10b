"""DP/ZBL: a DP energy model blended with a tabulated short-range pair potential (DeePMD-kit 3.2's
``DPZBLModel``, built from the ``use_srtab`` keys of the ``model`` section).

Per atom i, with the table's atomic energy E_i^tab (:class:`PairTableEnergy`) and DeePMD-kit's soft-min switch
s_i (:func:`softmin_switch`, between sw_rmin and sw_rmax)::

    E_i = (1 - s_i) E_i^DP + s_i E_i^tab + out_bias[t_i]

where E_i^DP is the fitting network's output without the model's output bias: one bias, fitted to the
labels, is added to the blend (DeePMD-kit's linear model; it equals TF's ``srtab_add_bias: true``).
The table, the switch and the DP part read the same neighbor slots, so both entry points (``forward`` and the
MD engines' ``forward_lower``) and every exporter of :class:`EnergyModel` carry the pair term.
"""

from typing import List, Optional, Tuple

import numpy as np
import torch

from deeppot.descriptor import Descriptor, deserialize_descriptor
from deeppot.errors import ModelFileError
from deeppot.fitting.energy import EnergyFitting
from deeppot.model.energy_model import EnergyModel
from deeppot.model.pair_table import PairTableEnergy, pair_distance, softmin_switch


class DPZBLModel(EnergyModel):
    """Energy model with a tabulated pair term switched in at short range. Lengths in Angstrom, energies in eV."""

    def __init__(
        self,
        descriptor: Descriptor,
        fitting: EnergyFitting,
        type_map: List[str],
        pair_table: PairTableEnergy,
        sw_rmin: float,
        sw_rmax: float,
        smin_alpha: float = 0.1,
        atom_exclude_types: Optional[List[int]] = None,
        pair_exclude_types: Optional[List[Tuple[int, int]]] = None,
        preset_out_bias=None,
    ):
        super().__init__(descriptor, fitting, type_map, atom_exclude_types, pair_exclude_types, preset_out_bias)
        if not sw_rmin < sw_rmax:
            raise ValueError(f"sw_rmin ({sw_rmin}) must be smaller than sw_rmax ({sw_rmax})")
        if pair_table.ntypes != self.ntypes:
            raise ValueError(f"the pair table has {pair_table.ntypes} types, the model {self.ntypes}")
        self.pair_table = pair_table
        self.sw_rmin = float(sw_rmin)
        self.sw_rmax = float(sw_rmax)
        self.smin_alpha = float(smin_alpha)

    def atomic_energy(
        self,
        rij: torch.Tensor,
        nei_mask: torch.Tensor,
        atype: torch.Tensor,
        nei_type: torch.Tensor,
        fparam: Optional[torch.Tensor] = None,
        aparam: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Blended atomic energies nf x nloc (eV); arguments as :meth:`EnergyModel.atomic_energy`."""
        nei_mask, nei_type, atype, real = self.slot_mask(nei_mask, atype, nei_type)
        descriptor = self.descriptor(rij, nei_mask, atype, nei_type)
        dp_energy = self.fitting(descriptor, atype, fparam, aparam).to(torch.float64)
        r = pair_distance(rij.to(torch.float64), nei_mask)  # nf x nloc x nnei
        table_energy = self.pair_table(r, nei_mask, atype, nei_type)
        switch = softmin_switch(r, nei_mask, self.smin_alpha, self.sw_rmin, self.sw_rmax)  # nf x nloc
        energy = (1.0 - switch) * dp_energy + switch * table_energy + self.out_bias[0, :, 0][atype]
        return energy * self.atom_keep[atype] * real.to(torch.float64)

    # ---------------------------------------------------------- serialization
    @torch.jit.unused
    def serialize(self) -> dict:
        """DeePMD-kit's ``zbl`` model dict: ``models`` = [the DP atomic model (no bias or exclusions of its
        own), the ``pairtab`` model]; bias and exclusions at the top, as DeePMD-kit's linear model holds them."""
        dp = super().serialize()
        zeros = np.zeros_like(dp["@variables"]["out_bias"])
        top = {key: dp[key] for key in ("type_map", "atom_exclude_types", "pair_exclude_types", "rcond",
                                        "preset_out_bias", "@variables")}
        dp.update(atom_exclude_types=[], pair_exclude_types=[], preset_out_bias=None,
                  **{"@variables": {"out_bias": zeros, "out_std": np.ones_like(zeros)}})
        top.update({
            "@class": "Model", "@version": 2, "type": "zbl", "weights": "mean",
            "sw_rmin": self.sw_rmin, "sw_rmax": self.sw_rmax, "smin_alpha": self.smin_alpha,
            "models": [dp, self.pair_table.serialize(self.type_map)],
        })
        return top

    @classmethod
    @torch.jit.unused
    def deserialize(cls, data: dict) -> "DPZBLModel":
        """From DeePMD-kit's ``zbl`` dict; the pair table must share the DP part's rcut and neighbor count
        (what DeePMD-kit builds from ``use_srtab``)."""
        if len(data.get("models", [])) != 2 or data["models"][1].get("type") != "pairtab":
            raise ModelFileError("a 'zbl' model dict needs models = [a DP model, a 'pairtab' model]")
        dp_dict, table_dict = data["models"]
        if dp_dict["fitting"].get("type", "ener") != "ener":
            raise ModelFileError(f"a 'zbl' model needs an energy fitting, not {dp_dict['fitting'].get('type')!r}")
        descriptor = deserialize_descriptor(dp_dict["descriptor"])
        table = PairTableEnergy.deserialize(table_dict)
        if abs(table.rcut - descriptor.rcut) > 1e-12 or table.sel != sum(descriptor.sel):
            raise ModelFileError(
                f"the pair table's rcut {table.rcut} / sel {table.sel} differ from the DP part's rcut "
                f"{descriptor.rcut} / sel sum {sum(descriptor.sel)}; deeppot evaluates both on one neighbor list "
                "and takes only the tables DeePMD-kit builds from use_srtab (same rcut and sel)")
        model = cls(
            descriptor, EnergyFitting.deserialize(dp_dict["fitting"]), data["type_map"], table,
            data["sw_rmin"], data["sw_rmax"], data.get("smin_alpha", 0.1) or 0.1,
            data.get("atom_exclude_types", []), data.get("pair_exclude_types", []), data.get("preset_out_bias"),
        )
        with torch.no_grad():
            for name in ("out_bias", "out_std"):
                value = torch.as_tensor(np.asarray(data["@variables"][name]))
                getattr(model, name).copy_(value.reshape(getattr(model, name).shape))
        return model
