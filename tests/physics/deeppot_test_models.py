"""Shared factory of small, fast models (any registered descriptor; energy, dipole or polar fitting) and random
test frames (float64).

Used by tests/physics and tests/reference (the latter puts this directory on sys.path in its conftest).
Normalisation statistics and biases are set to random, non-trivial values so that every term of the
model (davg/dstd, padded slots, fitting bias, out_bias, fparam/aparam statistics) is exercised.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from deeppot.descriptor import Descriptor, descriptor_class
from deeppot.nn.type_embedding import TypeEmbedding
from deeppot.fitting import FITTINGS
from deeppot.model import MODELS
from deeppot.model.energy_model import EnergyModel

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def make_model(
    descriptor: Union[str, List[Dict]] = "se_e2_a",
    ntypes: int = 2,
    rcut: float = 4.0,
    rcut_smth: float = 1.0,
    sel: Sequence[int] = (24, 24),
    neuron: Sequence[int] = (4, 8, 16),
    axis_neuron: int = 4,
    fitting_neuron: Sequence[int] = (16, 16),
    type_one_side: bool = True,
    resnet_dt: bool = False,
    fitting_resnet_dt: bool = True,
    exclude_types: Optional[List[List[int]]] = None,
    atom_exclude_types: Optional[List[int]] = None,
    pair_exclude_types: Optional[List[List[int]]] = None,
    activation_function: str = "tanh",
    env_protection: float = 0.0,
    numb_fparam: int = 0,
    numb_aparam: int = 0,
    type_map: Optional[List[str]] = None,
    fitting_input_scale: float = 1.0,
    seed: int = 1,
    fitting: str = "ener",
    fitting_options: Optional[Dict] = None,
    type_embedding: Optional[Sequence[int]] = None,
    descriptor_options: Optional[Dict] = None,
) -> EnergyModel:
    """A float64 EnergyModel with descriptor type ``descriptor`` (a DeePMD-kit name), random weights, random
    (rotation-invariant) davg/dstd and random biases. Descriptor options the type does not take (e.g.
    axis_neuron for se_e2_r) are not passed to it. A list of dicts makes a hybrid descriptor: each dict is
    {"descriptor": name, option: value, ...}, options overriding this function's. ``fitting_input_scale`` multiplies the first fitting
    layer's weights, so that a descriptor whose rows vary little (se_e2_r's 1/(5 nnei) sum) still gives
    forces large enough for non-vacuous checks.

    davg is [avg_r, 0, 0, 0] and dstd [std_r, std_a, std_a, std_a] per center type, constant over slots,
    as DeePMD-kit's statistics produce: anything else would break rotation invariance.

    ``fitting`` "dipole" or "polar" makes a tensor model (``fitting_options`` e.g. fit_diag, scale, shift_diag);
    its embedding width is the descriptor's M1 and its fitting's exclude_types are ``atom_exclude_types``.

    ``type_embedding`` (the neuron of a model-level type embedding, se_e2_a only) makes one embedding net and one
    fitting net serve every type (DeePMD-kit TF's type embedding).

    ``descriptor_options``: further keyword arguments of the descriptor (e.g. se_atten's tebd_input_mode). A
    descriptor with ``set_davg_zero`` keeps davg = 0 (se_atten's default).
    """
    options = dict(
        ntypes=ntypes,
        rcut=rcut,
        rcut_smth=rcut_smth,
        sel=list(sel),
        neuron=list(neuron),
        axis_neuron=axis_neuron,
        activation_function=activation_function,
        resnet_dt=resnet_dt,
        type_one_side=type_one_side,
        exclude_types=exclude_types,
        env_protection=env_protection,
        precision="float64",
        seed=seed,
        **(descriptor_options or {}),
    )
    if type_embedding is not None:
        options["type_embedding"] = TypeEmbedding(ntypes, list(type_embedding), activation_function,
                                                  precision="float64", seed=seed + 3000)
    if isinstance(descriptor, str):
        descriptor = _make_descriptor(descriptor, options)
    else:
        members = [_make_descriptor(m["descriptor"], {**options, **m}) for m in descriptor]
        descriptor = descriptor_class("hybrid")(members)
    fit_options = dict(fitting_options or {})
    if descriptor.shared_fitting:
        fit_options["mixed_types"] = True
    if fitting != "ener":
        fit_options.update(embedding_width=descriptor.dim_emb, exclude_types=atom_exclude_types)
    fitting_net = FITTINGS[fitting](
        ntypes=ntypes,
        dim_descrpt=descriptor.dim_out,
        neuron=list(fitting_neuron),
        resnet_dt=fitting_resnet_dt,
        numb_fparam=numb_fparam,
        numb_aparam=numb_aparam,
        activation_function=activation_function,
        precision="float64",
        seed=seed + 1000,
        **fit_options,
    )
    if type_map is None:
        type_map = ["O", "H", "C", "N"][:ntypes] if ntypes <= 4 else [f"T{k}" for k in range(ntypes)]
    model = MODELS[fitting](
        descriptor,
        fitting_net,
        type_map,
        atom_exclude_types=atom_exclude_types,
        pair_exclude_types=pair_exclude_types,
    )
    gen = torch.Generator().manual_seed(seed + 2000)

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)

    with torch.no_grad():
        for module in descriptor.modules():  # the descriptor, or each member of a hybrid
            if isinstance(module, Descriptor) and module.davg.dim() == 2:  # per-column statistics (loc_frame)
                module.davg.copy_(uniform(module.davg.shape, -0.2, 0.2))
                module.dstd.copy_(uniform(module.dstd.shape, 0.5, 1.5))
            elif isinstance(module, Descriptor) and module.env_width > 0:
                davg = torch.zeros_like(module.davg)  # ntypes x nnei x env_width (4, or 1 for radial-only)
                if not module.set_davg_zero:
                    davg[:, :, 0] = uniform((ntypes, 1), 0.05, 0.3)
                dstd = torch.ones_like(module.dstd)
                dstd[:, :, 0] = uniform((ntypes, 1), 0.1, 0.5)
                dstd[:, :, 1:] = uniform((ntypes, 1, 1), 0.05, 0.3)
                module.davg.copy_(davg)
                module.dstd.copy_(dstd)
        model.out_bias.copy_(uniform(model.out_bias.shape, -3.0, 3.0))
        fitting_net.bias_atom_e.copy_(uniform(fitting_net.bias_atom_e.shape, -0.5, 0.5))
        if hasattr(fitting_net, "constant_matrix"):
            fitting_net.constant_matrix.copy_(uniform(fitting_net.constant_matrix.shape, 0.5, 2.0))
        for net in fitting_net.nets:
            net.layers[0].w.mul_(fitting_input_scale)
        if numb_fparam:
            fitting_net.fparam_avg.copy_(uniform((numb_fparam,), -1.0, 1.0))
            fitting_net.fparam_inv_std.copy_(uniform((numb_fparam,), 0.5, 2.0))
        if numb_aparam:
            fitting_net.aparam_avg.copy_(uniform((numb_aparam,), -1.0, 1.0))
            fitting_net.aparam_inv_std.copy_(uniform((numb_aparam,), 0.5, 2.0))
    model.eval()
    return model


def _make_descriptor(name: str, options: Dict) -> Descriptor:
    cls = descriptor_class(name)
    accepted = dict(inspect.signature(cls).parameters)
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in accepted.values()):  # a subclass passing **options on
        accepted.update(inspect.signature(cls.__mro__[1]).parameters)
    options = dict(options, sel=list(options["sel"]), neuron=list(options["neuron"]))
    return cls(**{key: value for key, value in options.items() if key in accepted})


# --------------------------------------------------------------------------- frames
def random_positions(n: int, low: np.ndarray, high: np.ndarray, min_dist: float, rng, box=None) -> np.ndarray:
    """n points uniform in [low, high) with pairwise (minimum-image, if box) distance >= min_dist."""
    pts: List[np.ndarray] = []
    inv = None if box is None else np.linalg.inv(box)
    for _ in range(100000):
        p = low + (high - low) * rng.random(3)
        ok = True
        for q in pts:
            d = p - q
            if box is not None:
                s = d @ inv
                d = (s - np.round(s)) @ box
            if np.linalg.norm(d) < min_dist:
                ok = False
                break
        if ok:
            pts.append(p)
            if len(pts) == n:
                return np.array(pts)
    raise RuntimeError("could not place atoms")


def triclinic_box(lengths=(9.0, 8.6, 9.3), tilt=(0.6, -0.4, 0.3)) -> np.ndarray:
    """Rows a, b, c of a slightly skewed cell (Angstrom)."""
    a, b, c = lengths
    return np.array([[a, 0.0, 0.0], [tilt[0], b, 0.0], [tilt[1], tilt[2], c]])


def periodic_frame(natoms: int = 16, seed: int = 0, box: Optional[np.ndarray] = None, min_dist: float = 1.0):
    """(coord N x 3, atype N, box 3 x 3) with atoms anywhere in the (possibly small) triclinic cell."""
    rng = np.random.default_rng(seed)
    box = triclinic_box() if box is None else np.asarray(box, dtype=np.float64)
    inv = np.linalg.inv(box)
    pts: List[np.ndarray] = []
    while len(pts) < natoms:  # rejection with the minimum-image distance
        p = rng.random(3) @ box
        ok = True
        for q in pts:
            s = (p - q) @ inv
            if np.linalg.norm((s - np.round(s)) @ box) < min_dist:
                ok = False
                break
        if ok:
            pts.append(p)
    coord = np.array(pts)
    atype = np.array([k % 2 for k in range(natoms)], dtype=np.int64)
    rng.shuffle(atype)
    return coord, atype, box


def cluster_frame(natoms: int = 12, seed: int = 0, size: float = 5.0, min_dist: float = 1.0):
    """(coord N x 3, atype N) of a compact non-periodic cluster."""
    rng = np.random.default_rng(seed)
    coord = random_positions(natoms, np.zeros(3), np.full(3, size), min_dist, rng)
    atype = np.array([k % 2 for k in range(natoms)], dtype=np.int64)
    rng.shuffle(atype)
    return coord, atype


def load_water(nframes: int = 2):
    """First frames of water/data_0: coord nf x 192 x 3, atype 192, box nf x 3 x 3."""
    root = DATA_DIR / "water" / "data_0"
    atype = np.loadtxt(root / "type.raw", dtype=np.int64).reshape(-1)
    coord = np.load(root / "set.000" / "coord.npy")[:nframes].reshape(nframes, -1, 3)
    box = np.load(root / "set.000" / "box.npy")[:nframes].reshape(nframes, 3, 3)
    return coord, atype, box


def load_nopbc(system: str = "C3H3O4", nframes: int = 2):
    """First frames of a nopbc_cho molecule: coord nf x N x 3, atype N, type_map."""
    root = DATA_DIR / "nopbc_cho" / system
    assert (root / "nopbc").exists()
    atype = np.loadtxt(root / "type.raw", dtype=np.int64).reshape(-1)
    type_map = (root / "type_map.raw").read_text().split()
    coord = np.load(root / "set.000" / "coord.npy")[:nframes].reshape(nframes, -1, 3)
    return coord, atype, type_map


def evaluate(model: EnergyModel, coord, atype, box=None, fparam=None, aparam=None, atomic_virial=False):
    """Run model.forward on one frame (N x 3) or several (nf x N x 3); returns numpy arrays."""
    coord = np.asarray(coord, dtype=np.float64)
    single = coord.ndim == 2
    if single:
        coord = coord[None]
        box = None if box is None else np.asarray(box)[None]
    nf = coord.shape[0]
    out = model(
        torch.from_numpy(coord),
        torch.as_tensor(np.asarray(atype), dtype=torch.int64),
        None if box is None else torch.from_numpy(np.asarray(box, dtype=np.float64).reshape(nf, 3, 3)),
        fparam=None if fparam is None else torch.as_tensor(fparam, dtype=torch.float64),
        aparam=None if aparam is None else torch.as_tensor(aparam, dtype=torch.float64),
        do_atomic_virial=atomic_virial,
    )
    res = {k: v.detach().cpu().numpy() for k, v in out.items()}
    if single:
        res = {k: v[0] for k, v in res.items()}
    return res
