"""DeePMD-kit 3.2's numpy model (deepmd.dpmodel) as an oracle, run with torch arrays for exact derivatives.

deepmd.dpmodel is written against the array API; after converting its stored numpy parameters to torch
tensors, calling it with torch inputs gives energies whose autograd derivatives are the reference
forces and virials (strain derivative). Test-only: deepmd-kit is never imported by deeppot itself.
"""

import numpy as np
import torch


def _to_torch(obj, seen):
    if id(obj) in seen or not hasattr(obj, "__dict__"):
        return
    seen.add(id(obj))
    for name, value in list(vars(obj).items()):
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            setattr(obj, name, torch.from_numpy(value.copy()))
        elif isinstance(value, list) and value and all(isinstance(item, np.ndarray) for item in value):
            # e.g. the hybrid descriptor's per-member slot indices (nlist_cut_idx)
            setattr(obj, name, [torch.from_numpy(item.copy()) for item in value])
        elif isinstance(value, (list, tuple)):
            for item in value:
                _to_torch(item, seen)
        elif type(value).__module__.startswith("deepmd"):
            _to_torch(value, seen)


def reference_model(serialized: dict):
    """Build DeePMD-kit's dpmodel EnergyModel from our serialized dict, parameters as torch tensors."""
    from deepmd.dpmodel.model.base_model import BaseModel

    model = BaseModel.deserialize(serialized)
    _to_torch(model, set())
    return model


def reference_evaluate(model, coord: np.ndarray, atype: np.ndarray, box, fparam=None, aparam=None):
    """Energy (nf), forces (nf x N x 3) and virial (nf x 9, W = -dE/d strain, [a*3+b] = F[a] r[b]).

    fparam (nf x numb_fparam) and aparam (nf x N x numb_aparam) are passed to dpmodel's ``call``."""
    nf = coord.shape[0]
    coord_t = torch.tensor(coord, dtype=torch.float64, requires_grad=True)
    strain = torch.zeros(nf, 3, 3, dtype=torch.float64, requires_grad=True)
    deform = torch.eye(3, dtype=torch.float64) + strain
    strained = torch.matmul(coord_t, deform)
    box_t = None if box is None else torch.matmul(torch.tensor(box, dtype=torch.float64).reshape(nf, 3, 3), deform)
    extra = {}
    if fparam is not None:
        extra["fparam"] = torch.as_tensor(np.asarray(fparam), dtype=torch.float64).reshape(nf, -1)
    if aparam is not None:
        extra["aparam"] = torch.as_tensor(np.asarray(aparam), dtype=torch.float64).reshape(nf, coord.shape[1], -1)
    # dpmodel creates some constants with xp.asarray(python float) (e.g. sqrt(2/pi) in gelu): under torch
    # these take the default dtype, so make it float64 while the reference runs
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        out = model.call(strained, torch.tensor(atype), None if box_t is None else box_t.reshape(nf, 9), **extra)
    finally:
        torch.set_default_dtype(previous)
    energy = out["energy"].reshape(nf)
    grad_coord, grad_strain = torch.autograd.grad(energy.sum(), [coord_t, strain])
    virial = -grad_strain.transpose(1, 2).reshape(nf, 9)
    return energy.detach().numpy(), -grad_coord.numpy(), virial.numpy(), out["atom_energy"].detach().numpy()[..., 0]


def reference_tensor(model, coord: np.ndarray, atype: np.ndarray, box, fparam=None, aparam=None):
    """A dpmodel DipoleModel / PolarModel's outputs in float64 numpy: {name: nf x N x ncomp, "global_" + name:
    nf x ncomp} with DeePMD-kit's names ("dipole" or "polar")."""
    nf = coord.shape[0]
    extra = {}
    if fparam is not None:
        extra["fparam"] = torch.as_tensor(np.asarray(fparam), dtype=torch.float64).reshape(nf, -1)
    if aparam is not None:
        extra["aparam"] = torch.as_tensor(np.asarray(aparam), dtype=torch.float64).reshape(nf, coord.shape[1], -1)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        out = model.call(torch.tensor(coord, dtype=torch.float64), torch.tensor(atype),
                         None if box is None else torch.tensor(box, dtype=torch.float64).reshape(nf, 9), **extra)
    finally:
        torch.set_default_dtype(previous)
    return {k: v.detach().numpy().reshape(nf, *([coord.shape[1]] if not k.startswith("global") else []), -1)
            for k, v in out.items() if k != "mask"}
