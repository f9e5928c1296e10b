"""Names of the arrays that flow between data, model, loss and output files.

Shapes use nf = frames, N = atoms per frame. Units: Angstrom, eV, eV/Angstrom; the virial
is in eV with W = sum_j F_j (x) r_j, flattened row-major (xx xy xz yx yy yz zx zy zz).
"""

COORD = "coord"  # nf x N x 3, Angstrom
BOX = "box"  # nf x 3 x 3 (rows are cell vectors a, b, c), Angstrom; None without PBC
ATYPE = "atype"  # nf x N, int64 model types (index into type_map)
ENERGY = "energy"  # nf, eV
FORCE = "force"  # nf x N x 3, eV/Angstrom
VIRIAL = "virial"  # nf x 9, eV
ATOM_ENERGY = "atom_energy"  # nf x N, eV
ATOM_VIRIAL = "atom_virial"  # nf x N x 9, eV
FPARAM = "fparam"  # nf x numb_fparam
APARAM = "aparam"  # nf x N x numb_aparam

LABELS = (ENERGY, FORCE, VIRIAL)

# tensor labels (units of the data); files ``<name>.npy``, atomic ones also ``atomic_<...>.npy`` (spec section 4).
# Model outputs keep DeePMD-kit's names: "dipole"/"polar" per atom, "global_dipole"/"global_polar" per frame.
DIPOLE = "dipole"  # nf x 3
ATOM_DIPOLE = "atom_dipole"  # nf x N x 3
POLARIZABILITY = "polarizability"  # nf x 9, row-major 3 x 3
ATOM_POLARIZABILITY = "atom_polarizability"  # nf x N x 9
TENSOR_LABELS = {DIPOLE: (3, False), ATOM_DIPOLE: (3, True), POLARIZABILITY: (9, False), ATOM_POLARIZABILITY: (9, True)}
"""label -> (components per frame or per atom, per atom?)"""


def find_key(label: str) -> str:
    """Name of the 0/1 flag telling whether a batch carries ``label`` (DeePMD's ``find_*``)."""
    return "find_" + label
