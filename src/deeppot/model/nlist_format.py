"""An MD engine's neighbor list, checked and formatted for the lower entry point (spec 3.2).

The engine (LAMMPS) gives, for each local atom, indices into the extended (local + ghost) atoms: any
order, any width, -1 padding anywhere, neighbors out to rcut + skin. DeePMD-kit's ``format_nlist``
and ``nlist_distinguish_types`` turn such a list into the model's layout; here the same rule is
:func:`deeppot.geometry.neighbors.select_slots`, the one the Python entry point uses on vesin's pairs.
Input the model cannot treat right raises :class:`EngineInputError` instead of giving a number.

TorchScript-scriptable. The formatting is sort/gather/scatter on fixed shapes; the checks end in one
data-dependent branch (one ``bool(tensor)``); traced by make_fx it is a run-time assertion instead.
"""

from typing import List, Optional

import torch

from deeppot.errors import DeeppotError
from deeppot.geometry.neighbors import select_slots
from deeppot.tracing import graph_tracing


class EngineInputError(DeeppotError):
    """Input to the MD-engine entry point (extended atoms, neighbor list, mapping, fparam/aparam) that the
    model cannot treat right: wrong shapes, indices outside the extended atoms, unknown types."""


def _shape(t: torch.Tensor) -> str:
    return str(list(t.shape))


def check_engine_shapes(
    extended_coord: torch.Tensor, extended_atype: torch.Tensor, nlist: torch.Tensor, mapping: Optional[torch.Tensor]
) -> None:
    """Shapes and dtypes only (no data read): coord nf x nall x 3, atype nf x nall (integer),
    nlist nf x nloc x nnei_any (integer) with nloc <= nall, mapping nf x nall (integer) if given."""
    if extended_coord.dim() != 3 or extended_coord.shape[2] != 3:
        raise EngineInputError("extended_coord must be nf x nall x 3 (Angstrom), got shape " + _shape(extended_coord))
    nf, nall = extended_coord.shape[0], extended_coord.shape[1]
    if extended_atype.shape != extended_coord.shape[:2] or extended_atype.is_floating_point():
        raise EngineInputError(
            "extended_atype must be an integer tensor nf x nall = " + _shape(extended_coord[:, :, 0])
            + " (one type per extended atom), got shape " + _shape(extended_atype) + " " + str(extended_atype.dtype)
        )
    if nlist.dim() != 3 or nlist.shape[0] != nf or nlist.shape[1] > nall or nlist.is_floating_point():
        raise EngineInputError(
            "nlist must be an integer tensor nf x nloc x nnei with nf = " + str(nf) + " and nloc <= nall = "
            + str(nall) + " (local atoms come first among the extended atoms), got shape " + _shape(nlist)
            + " " + str(nlist.dtype)
        )
    if mapping is not None:
        if mapping.shape != extended_atype.shape or mapping.is_floating_point():
            raise EngineInputError(
                "mapping must be an integer tensor nf x nall = " + _shape(extended_atype)
                + " (the local atom of each extended atom), got shape " + _shape(mapping) + " " + str(mapping.dtype)
            )


def format_engine_nlist(
    extended_coord: torch.Tensor,
    extended_atype: torch.Tensor,
    nlist: torch.Tensor,
    mapping: Optional[torch.Tensor],
    rcut: float,
    sel: List[int],
    ntypes: int,
    mixed_types: bool = False,
) -> torch.Tensor:
    """The model's list (nf x nloc x sum(sel), indices into the extended atoms, -1 padding), type-blocked or,
    with ``mixed_types`` (sel = [nsel]), the nsel nearest of any type.

    extended_coord: nf x nall x 3 (Angstrom, local atoms first); extended_atype: nf x nall (-1: virtual
    atom, no one's neighbor and without neighbors); nlist: nf x nloc x nnei_any; mapping: nf x nall or
    None. Dropped: padding, the center itself, virtual atoms, distances >= rcut. Kept: the sum(sel)
    nearest, then the sel[t] nearest of each type t (mixed: the nsel nearest); equal distances are ordered by (mapping[j], j), or
    by j without mapping, so the result does not depend on the order of the input list.
    """
    check_engine_shapes(extended_coord, extended_atype, nlist, mapping)
    # one padding column more: a list of width 0 needs no branch
    nlist = torch.nn.functional.pad(nlist.to(torch.int64), (0, 1), value=-1.0)
    nf, nall, nloc, ncand = extended_coord.shape[0], extended_coord.shape[1], nlist.shape[1], nlist.shape[2]
    atype = extended_atype.to(torch.int64)
    inside = (nlist >= 0) & (nlist < nall)
    safe = torch.where(inside, nlist, 0)  # nf x nloc x ncand, bad indices read atom 0 until the checks below
    flat = safe.reshape(nf, nloc * ncand)
    neighbor_coord = extended_coord.gather(1, flat.unsqueeze(-1).expand(-1, -1, 3)).reshape(nf, nloc, ncand, 3)
    dist = torch.linalg.vector_norm(neighbor_coord - extended_coord[:, :nloc].unsqueeze(2), dim=-1)
    centers = torch.arange(nloc, dtype=torch.int64, device=nlist.device).reshape(1, nloc, 1)
    usable = inside & (nlist != centers) & (atype[:, :nloc] >= 0).unsqueeze(-1)
    nei_type = torch.where(usable, atype.gather(1, flat).reshape(nf, nloc, ncand), -1)
    listed = nlist
    if torch.jit.is_scripting() or not graph_tracing():  # eager, TorchScript: sort only candidates within rcut
        keep = _columns_within(dist, nei_type, rcut)
        dist, nei_type, safe, listed = dist.gather(2, keep), nei_type.gather(2, keep), safe.gather(2, keep), \
            nlist.gather(2, keep)
    tiebreak = safe
    if mapping is not None:
        tiebreak = mapping.to(torch.int64).gather(1, safe.reshape(nf, -1)).reshape(safe.shape) * nall + safe
    slots = select_slots(dist, nei_type, tiebreak, rcut, sel, mixed_types)  # nf x nloc x nnei columns of listed
    filled = slots >= 0
    columns = slots.clamp(min=0)
    formatted = torch.where(filled, listed.gather(2, columns), -1)
    # what cannot be treated right; one data-dependent branch for all checks
    duplicate = (formatted[:, :, 1:] == formatted[:, :, :-1]) & (formatted[:, :, 1:] >= 0)
    coincident = filled & (dist.gather(2, columns) == 0.0)
    bad_mapping = torch.zeros((), dtype=torch.bool, device=nlist.device)
    if mapping is not None:
        bad_mapping = ((mapping < 0) | (mapping >= nloc)).any()
    problems = torch.stack([
        (~inside & (nlist != -1)).any(), (atype >= ntypes).any(), ~torch.isfinite(extended_coord).all(),
        bad_mapping, duplicate.any(), coincident.any(),
    ])
    if not torch.jit.is_scripting() and graph_tracing():  # exported graph (export/aoti.py): assert at run time
        torch._assert_async(~problems.any(), "deeppot: the MD engine's input cannot be treated right (an nlist "
                            "index outside 0..nall-1, a type >= ntypes, a non-finite coordinate, a duplicate "
                            "neighbor or two atoms at distance 0)")
    elif bool(problems.any()):
        _raise_engine_input_error(extended_coord, atype, nlist, mapping, formatted, duplicate, coincident, ntypes)
    return formatted


def _columns_within(dist: torch.Tensor, nei_type: torch.Tensor, rcut: float) -> torch.Tensor:
    """Columns (nf x nloc x (kmax + 1)) that hold the candidates within rcut of each row first, in input
    order, kmax being the most of any row; the rest of a row repeats the last column, padding by
    construction. An MD engine's list carries a skin: this halves what the sort sees for water."""
    nf, nloc, ncand = dist.shape
    real = (nei_type >= 0) & (dist < rcut)
    position = torch.cumsum(real.to(torch.int64), dim=-1) - 1
    kmax = int(position[:, :, -1].max()) + 1 if nloc > 0 else 0  # the one data-dependent shape
    target = torch.where(real, position, kmax)
    columns = torch.arange(ncand, dtype=torch.int64, device=dist.device).expand(nf, nloc, ncand)
    keep = torch.full([nf, nloc, kmax + 1], ncand - 1, dtype=torch.int64, device=dist.device)
    return keep.scatter(2, target, columns)


def _where_first(mask: torch.Tensor) -> List[int]:
    return [int(v) for v in torch.nonzero(mask)[0]]


def _raise_engine_input_error(
    extended_coord: torch.Tensor,
    atype: torch.Tensor,
    nlist: torch.Tensor,
    mapping: Optional[torch.Tensor],
    formatted: torch.Tensor,
    duplicate: torch.Tensor,
    coincident: torch.Tensor,
    ntypes: int,
) -> None:
    """Name the first problem found by :func:`format_engine_nlist` (only called when there is one)."""
    nall, nloc = extended_coord.shape[1], nlist.shape[1]
    bad_index = ((nlist < 0) | (nlist >= nall)) & (nlist != -1)
    if bool(bad_index.any()):
        f, i, k = _where_first(bad_index)
        raise EngineInputError(
            "nlist[" + str(f) + ", " + str(i) + ", " + str(k) + "] = " + str(int(nlist[f, i, k]))
            + " is not an extended atom: indices run from 0 to nall - 1 = " + str(nall - 1) + ", -1 marks padding"
        )
    if bool((atype >= ntypes).any()):
        f, j = _where_first(atype >= ntypes)
        raise EngineInputError(
            "extended_atype[" + str(f) + ", " + str(j) + "] = " + str(int(atype[f, j])) + " but the model has "
            + str(ntypes) + " types (0.." + str(ntypes - 1) + "; -1 for a virtual atom)"
        )
    if not bool(torch.isfinite(extended_coord).all()):
        f, j, _ = _where_first(~torch.isfinite(extended_coord))
        raise EngineInputError("extended_coord[" + str(f) + ", " + str(j) + "] is not finite (nan or inf)")
    if mapping is not None and bool(((mapping < 0) | (mapping >= nloc)).any()):
        f, j = _where_first((mapping < 0) | (mapping >= nloc))
        raise EngineInputError(
            "mapping[" + str(f) + ", " + str(j) + "] = " + str(int(mapping[f, j]))
            + " is not a local atom (0.." + str(nloc - 1) + ")"
        )
    if bool(duplicate.any()):
        f, i, k = _where_first(duplicate)
        raise EngineInputError(
            "nlist lists extended atom " + str(int(formatted[f, i, k])) + " twice as a neighbor of local atom "
            + str(i) + " (frame " + str(f) + "); each neighbor must appear once"
        )
    f, i, k = _where_first(coincident)
    raise EngineInputError(
        "extended atom " + str(int(formatted[f, i, k])) + " sits at the position of local atom " + str(i)
        + " (frame " + str(f) + "): two atoms at distance 0"
    )
