"""The model section's ``sel`` from the training data: neighbor statistics once per distinct cut-off, every
"auto" resolved (each hybrid member at its own rcut), the statistics logged and a too-small sel warned about."""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

from deeppot.config import ModelConfig
from deeppot.geometry.neighbor_stat import neighbor_stat

log = logging.getLogger("deeppot")


class NeighborStatistics:
    """``stat(rcut)``: the largest number of neighbors of each type within rcut (Angstrom) around any atom of
    ``systems`` (:data:`deeppot.config.model.NeighborStat`); ``stat(rcut, mixed_types=True)``: [the largest number
    of neighbors of any type] (mixed-type descriptors); one search per distinct (rcut, mixed_types), on first use."""

    def __init__(self, systems: Sequence, ntypes: int):
        self.systems = systems
        self.ntypes = ntypes
        # (rcut, mixed_types) -> (max neighbors per type or of any type, min distance)
        self.searched: Dict[Tuple[float, bool], Tuple[List[int], float]] = {}

    def __call__(self, rcut: float, mixed_types: bool = False) -> List[int]:
        key = (float(rcut), bool(mixed_types))
        if key not in self.searched:
            max_nbor, min_dist = neighbor_stat(self.systems, key[0], self.ntypes, key[1])
            self.searched[key] = ([int(n) for n in max_nbor], float(min_dist))
        return list(self.searched[key][0])

    @property
    def min_nbor_dist(self) -> float:
        """The smallest neighbor distance seen by any search so far (Angstrom); -1 before the first."""
        return min((dist for _, dist in self.searched.values()), default=-1.0)


def resolve_model_section(config: ModelConfig, stat: NeighborStatistics, previous: Optional[Dict] = None
                          ) -> ModelConfig:
    """``config`` with every sel resolved (:meth:`ModelConfig.resolve_sel`). Without ``previous`` (a fresh
    training), each descriptor's neighbor statistics are logged with its sel, and a sel smaller than the
    data's neighbor count is warned about."""
    resolved = config.resolve_sel(stat, previous)
    if previous is not None:
        return resolved
    for path, section in resolved.descriptor.leaf_sections():
        name = "model/" + "/".join(str(part) for part in path)
        counts = section.neighbor_counts(stat)
        log.info("%s: neighbor statistics at rcut %g: max_nbor_size %s, min_nbor_dist %.6f; sel %s",
                 name, section.rcut, counts, stat.min_nbor_dist, section.sel)
        names = config.type_map if len(counts) == len(config.type_map) else ["any type"] * len(counts)
        for t, (have, need) in enumerate(zip(section.sel, counts)):
            if need > have:
                log.warning("%s/sel[%d] = %d is smaller than the %d neighbors of type %s found in the data "
                            "within rcut %g", name, t, have, need, names[t], section.rcut)
    return resolved
