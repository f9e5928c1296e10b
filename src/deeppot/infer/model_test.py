"""``deeppot test``: errors of a frozen model on labeled systems, and ``dp test``-style detail files.

Energy models: energy, force and virial errors (files ``P.e.out``, ``P.f.out``, ...). Dipole and polar models
(:func:`test_tensor_system`): the RMSE of the global tensor (also / sqrt(nsel) and / nsel, nsel = atoms of the
selected types) or, with ``atomic``, of the atomic tensors of the selected atoms, as DeePMD-kit's
``TensorTester``; file ``P.dipole.out`` / ``P.polarizability.out``."""

import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from deeppot import keys
from deeppot.data import DeepmdSystem, expand_systems
from deeppot.infer.deep_pot import DeepEval, DeepPot, DeepTensor

log = logging.getLogger("deeppot")

MODEL_TYPE_MAP_HINT = ("The model cannot evaluate elements it was not trained on: test it on systems of its "
                       "elements only, or use a model trained with them.")

REPORT = (
    ("mae_e", "Energy MAE         : {:e} eV"),
    ("rmse_e", "Energy RMSE        : {:e} eV"),
    ("mae_ea", "Energy MAE/Natoms  : {:e} eV"),
    ("rmse_ea", "Energy RMSE/Natoms : {:e} eV"),
    ("mae_f", "Force  MAE         : {:e} eV/Å"),
    ("rmse_f", "Force  RMSE        : {:e} eV/Å"),
    ("mae_v", "Virial MAE         : {:e} eV"),
    ("rmse_v", "Virial RMSE        : {:e} eV"),
    ("mae_va", "Virial MAE/Natoms  : {:e} eV"),
    ("rmse_va", "Virial RMSE/Natoms : {:e} eV"),
)

# test --plot: quantity (with unit) -> one (reference, predicted) pair of flat arrays per system
Parity = Dict[str, List[Tuple[np.ndarray, np.ndarray]]]
PARITY_ENERGY = "energy per atom (eV/atom)"
PARITY_FORCE = "force components (eV/Å)"
PARITY_VIRIAL = "virial per atom (eV/atom)"

# per tensor model: (label name, detail-file components, report title)
TENSORS = {
    "dipole": (keys.DIPOLE, ("x", "y", "z"), "Dipole"),
    "polar": (keys.POLARIZABILITY, ("pxx", "pxy", "pxz", "pyx", "pyy", "pyz", "pzx", "pzy", "pzz"), "Polarizability"),
}


def _mae_rmse(diff: np.ndarray):
    return float(np.mean(np.abs(diff))), float(np.sqrt(np.mean(diff**2)))


def _save(path: Path, data: np.ndarray, header: str, append: bool) -> None:
    write_header = not (append and path.exists() and path.stat().st_size > 0)
    with path.open("a" if append else "w", encoding="utf-8") as handle:
        np.savetxt(handle, data, header=header if write_header else "")


def test_system(
    dp: DeepPot, system: DeepmdSystem, numb_test: int, rng: Optional[np.random.Generator],
    detail: Optional[str], append: bool, atomic: bool, parity: Optional[Parity] = None,
) -> Dict[str, tuple]:
    """Errors on one system as {name: (value, weight)} and, with ``detail``, the detail files; with ``parity``,
    the labels and predictions are added to it (:func:`add_parity`)."""
    frames = _test_frames(system, numb_test, rng)
    nframes, natoms = len(frames), system.natoms
    coord = system.coord[frames]
    box = None if system.box is None else system.box[frames].reshape(nframes, 9)
    fparam = None if system.fparam is None else system.fparam[frames]
    aparam = None if system.aparam is None else system.aparam[frames]
    out = dp.eval(coord, box, system.frame_types(frames), atomic=atomic, fparam=fparam, aparam=aparam)
    energy, force, virial = out[0].reshape(-1), out[1], out[2]
    errors: Dict[str, tuple] = {}
    if parity is not None:
        add_parity(parity, system, frames, energy, force, virial)
    if system.energy is not None:
        mae, rmse = _mae_rmse(energy - system.energy[frames])
        errors.update(mae_e=(mae, nframes), rmse_e=(rmse, nframes),
                      mae_ea=(mae / natoms, nframes), rmse_ea=(rmse / natoms, nframes))
    if system.force is not None:
        mae, rmse = _mae_rmse(force - system.force[frames])
        errors.update(mae_f=(mae, force.size), rmse_f=(rmse, force.size))
    if system.virial is not None and system.pbc:
        mae, rmse = _mae_rmse(virial - system.virial[frames])
        errors.update(mae_v=(mae, nframes), rmse_v=(rmse, nframes),
                      mae_va=(mae / natoms, nframes), rmse_va=(rmse / natoms, nframes))
    log.info("# number of test data : %d", nframes)
    for key, text in REPORT:
        if key in errors:
            log.info(text.format(errors[key][0]))
    if detail:
        _write_detail(Path(detail), system, frames, energy, force, virial, out, atomic, append)
    return errors


def add_parity(parity: Parity, system: DeepmdSystem, frames, energy, force, virial) -> None:
    """Add one system's labelled (reference, predicted) pairs to ``parity``: energy per atom, force components
    and, for a periodic system with virials, virial per atom; the RMSE of the pooled pairs is ``deeppot test``'s
    weighted average (rmse_ea, rmse_f, rmse_va)."""
    natoms = system.natoms
    if system.energy is not None:
        parity.setdefault(PARITY_ENERGY, []).append((system.energy[frames] / natoms, energy / natoms))
    if system.force is not None:
        parity.setdefault(PARITY_FORCE, []).append((system.force[frames].reshape(-1), force.reshape(-1)))
    if system.virial is not None and system.pbc:
        parity.setdefault(PARITY_VIRIAL, []).append(
            (system.virial[frames].reshape(-1) / natoms, virial.reshape(-1) / natoms))


def _write_detail(prefix: Path, system, frames, energy, force, virial, out, atomic, append):
    """A quantity's detail files only when the system has its labels (a file of zeros would read as data)."""
    name, natoms = system.path, system.natoms
    if system.energy is not None:
        pe = np.stack([system.energy[frames], energy], axis=1)
        _save(prefix.with_suffix(".e.out"), pe, f"{name}: data_e pred_e", append)
        _save(prefix.with_suffix(".e_peratom.out"), pe / natoms, f"{name}: data_e pred_e", append)
    if system.force is not None:
        pf = np.concatenate([system.force[frames].reshape(-1, 3), force.reshape(-1, 3)], axis=1)
        _save(prefix.with_suffix(".f.out"), pf, f"{name}: data_fx data_fy data_fz pred_fx pred_fy pred_fz", append)
    if system.pbc and system.virial is not None:
        pv = np.concatenate([system.virial[frames].reshape(-1, 9), virial.reshape(-1, 9)], axis=1)
        comps = ["xx", "xy", "xz", "yx", "yy", "yz", "zx", "zy", "zz"]
        header = f"{name}: " + " ".join([f"data_v{c}" for c in comps] + [f"pred_v{c}" for c in comps])
        _save(prefix.with_suffix(".v.out"), pv, header, append)
        _save(prefix.with_suffix(".v_peratom.out"), pv / natoms, header, append)
    if atomic:
        _save(prefix.with_suffix(".ae.out"), out[3].reshape(-1, 1), f"{name}: pred_atom_energy", append)


def test_tensor_system(
    dp: DeepTensor, system: DeepmdSystem, numb_test: int, rng: Optional[np.random.Generator],
    detail: Optional[str], append: bool, atomic: bool, parity: Optional[Parity] = None,
) -> Dict[str, tuple]:
    """Errors of a dipole/polar model on one system as {name: (value, weight)}: the global tensor, or with
    ``atomic`` the atomic tensors of the atoms of the selected types (DeePMD-kit's ``dp test -a``); a system
    without that label is skipped with a warning. With ``detail``, ``<detail>.<label>.out``; with ``parity``, the
    tested components and their predictions are added to it."""
    label, components, title = TENSORS[dp.fitting_type]
    label = "atom_" + label if atomic else label
    if label not in system.tensors:
        log.warning("# %s has no %s label (%s); not tested", system.path, label,
                    "atomic_" + label[5:] + ".npy" if atomic else label + ".npy")
        return {}
    frames = _test_frames(system, numb_test, rng)
    nframes = len(frames)
    box = None if system.box is None else system.box[frames].reshape(nframes, 9)
    fparam = None if system.fparam is None else system.fparam[frames]
    aparam = None if system.aparam is None else system.aparam[frames]
    pred = dp.eval(system.coord[frames], box, system.atype, atomic=atomic, fparam=fparam, aparam=aparam)
    selected = np.isin(system.atype, dp.get_sel_type())
    nsel = int(selected.sum())
    data = system.tensors[label][frames]
    if atomic:
        pred, data = pred[:, selected].reshape(nframes, -1), data[:, selected].reshape(nframes, -1)
    rmse = float(np.sqrt(np.mean((pred - data) ** 2)))
    if parity is not None:
        parity.setdefault(f"{'atomic ' if atomic else ''}{title.lower()} components (label unit)", []).append(
            (data.reshape(-1), pred.reshape(-1)))
    errors: Dict[str, tuple] = {"rmse": (rmse, pred.size)}
    if not atomic and nsel:
        errors.update(rmse_sqrtn=(rmse / np.sqrt(nsel), pred.size), rmse_n=(rmse / nsel, pred.size))
    log.info("# number of test data : %d", nframes)
    for key, text in _tensor_report(title):
        if key in errors:
            log.info(text.format(errors[key][0]))
    log.info("The unit of error is the same as the unit of provided label.")
    if detail:
        names = ([f"{c}{k}" for k in range(1, nsel + 1) for c in components] if atomic else list(components))
        header = f"{system.path}: " + " ".join([f"data_{n}" for n in names] + [f"pred_{n}" for n in names])
        _save(Path(detail).with_suffix(f".{TENSORS[dp.fitting_type][0]}.out"),
              np.concatenate([data.reshape(nframes, -1), pred.reshape(nframes, -1)], axis=1), header, append)
    return errors


def _tensor_report(title: str) -> tuple:
    return (("rmse", title + "  RMSE       : {:e}"), ("rmse_sqrtn", title + "  RMSE/sqrtN : {:e}"),
            ("rmse_n", title + "  RMSE/N     : {:e}"))


def _test_frames(system: DeepmdSystem, numb_test: int, rng: Optional[np.random.Generator]) -> np.ndarray:
    """The frames tested: all or the first ``numb_test`` (0 = all), shuffled by ``rng`` if given."""
    frames = np.arange(system.nframes)
    if rng is not None:
        rng.shuffle(frames)
    return frames[:numb_test] if numb_test > 0 else frames


def run_test(model: str, system: str, numb_test: int, rand_seed: Optional[int], shuffle: bool,
             detail: Optional[str], atomic: bool, parity: Optional[Parity] = None) -> Dict[str, float]:
    """Test ``model`` on every system found under ``system``; returns the weighted-average errors. ``parity``:
    filled with the labels and predictions of every system (see :func:`test_system`)."""
    dp = DeepEval.load(model)
    tensor = isinstance(dp, DeepTensor)
    paths = expand_systems(system, option="-s/--system")
    rng = np.random.default_rng(rand_seed) if shuffle else None
    totals: Dict[str, List[tuple]] = {}
    written = False
    for path in paths:
        data = DeepmdSystem.load(path, dp.get_type_map(), numb_fparam=dp.get_dim_fparam(),
                                 numb_aparam=dp.get_dim_aparam(), type_map_hint=MODEL_TYPE_MAP_HINT,
                                 **(dict(tensor_labels=dp.label_names(), sel_type=dp.get_sel_type()) if tensor else {}))
        log.info("# ---------------output of deeppot test---------------")
        log.info("# testing system : %s", path)
        tester = test_tensor_system if tensor else test_system
        errors = tester(dp, data, numb_test, rng, detail, written, atomic, parity)
        written = written or bool(errors)
        for key, value in errors.items():
            if key not in ("rmse_sqrtn", "rmse_n"):  # per system only, as DeePMD-kit
                totals.setdefault(key, []).append(value)
    average = {}
    for key, values in totals.items():
        weights = np.array([w for _, w in values], dtype=float)
        vals = np.array([v for v, _ in values])
        average[key] = float(np.sqrt(np.sum(vals**2 * weights) / weights.sum())) if key.startswith("rmse") \
            else float(np.sum(vals * weights) / weights.sum())
    if len(paths) > 1:
        log.info("# ----------weighted average of errors-----------")
        log.info("# number of systems : %d", len(paths))
        for key, text in (_tensor_report(TENSORS[dp.fitting_type][2]) if tensor else REPORT):
            if key in average:
                log.info(text.format(average[key]))
    return average
