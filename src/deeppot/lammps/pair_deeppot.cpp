/* pair_style deeppot (see pair_deeppot.h). */
#include "pair_deeppot.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

using namespace LAMMPS_NS;

namespace {
// Boltzmann constant in eV/K as DeePMD-kit uses it: LAMMPS energy unit = boltz / this eV.
constexpr double BOLTZ_EV = 8.617343e-5;
const char *const KEYWORDS[] = {"out_file", "out_freq", "atomic", "relative", "relative_v", "fparam", "aparam"};

bool is_keyword(const char *word) {
  for (const char *key : KEYWORDS)
    if (std::strcmp(word, key) == 0) return true;
  return false;
}

std::string join(const std::vector<std::string> &words) {
  std::string out;
  for (const auto &w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// LAMMPS's order of the 6 symmetric components (xx yy zz xy xz yz) and the 3 extra centroid ones
// (yx zx zy), as indices into the model's row-major 3x3 virial; the same map as DeePMD-kit's plugin.
constexpr int VIRIAL_INDEX[9] = {0, 4, 8, 3, 6, 7, 1, 2, 5};
}  // namespace

PairDeeppot::PairDeeppot(LAMMPS *lmp) : Pair(lmp) {
  check_units();
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  single_enable = 0;
  no_virial_fdotr_compute = 1;
  centroidstressflag = CENTROID_AVAIL;
}

PairDeeppot::~PairDeeppot() {
  if (devi_fp) fclose(devi_fp);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairDeeppot::check_units() {
  if (std::strcmp(update->unit_style, "lj") == 0) {
    error->all(FLERR,
               "pair_style deeppot does not support units lj: a deeppot model is in physical units; use "
               "'units metal' (the model's own: Angstrom, eV) or another physical style such as 'units real'");
  }
}

void PairDeeppot::allocate() {
  allocated = 1;
  int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  for (int i = 0; i <= n; i++)
    for (int j = 0; j <= n; j++) setflag[i][j] = 0;
}

/* ---------------------------------------------------------------------- settings */

void PairDeeppot::settings(int narg, char **arg) {
  check_units();
  int iarg = 0;
  while (iarg < narg && !is_keyword(arg[iarg])) iarg++;
  if (iarg == 0) {
    error->all(FLERR, "pair_style deeppot needs the frozen model file first, e.g. 'pair_style deeppot model.pth' "
                      "(several files for model deviation)");
  }
  models.clear();
  for (int k = 0; k < iarg; k++) {
    try {
      models.push_back(deeppot::load_model(arg[k]));
    } catch (const std::exception &e) {
      error->all(FLERR, std::string("pair_style deeppot: ") + e.what());
    }
  }
  const deeppot::Model &first = *models[0];
  for (const auto &m : models) {
    if (m->type_map() != first.type_map() || m->rcut() != first.rcut() || m->dim_fparam() != first.dim_fparam() ||
        m->dim_aparam() != first.dim_aparam()) {
      error->all(FLERR, "pair_style deeppot: model '" + m->path() + "' differs from '" + first.path() +
                            "' in type_map, rcut, numb_fparam or numb_aparam; models compared for deviation must "
                            "share them");
    }
  }

  out_file = "model_devi.out";
  out_freq = 100;
  out_atomic = relative_f = relative_v = false;
  eps_f = eps_v = 0.0;
  fparam.clear();
  aparam.clear();
  bool fparam_given = false, aparam_given = false;
  auto values_after = [&](const char *key) {
    std::vector<double> values;
    int k = iarg + 1;
    while (k < narg && !is_keyword(arg[k])) values.push_back(utils::numeric(FLERR, arg[k++], false, lmp));
    if (values.empty()) error->all(FLERR, std::string("pair_style deeppot: keyword ") + key + " needs a value");
    iarg = k;
    return values;
  };
  while (iarg < narg) {
    std::string key = arg[iarg];
    if (key == "atomic") {
      out_atomic = true;
      iarg++;
      continue;
    }
    if (key == "out_file") {
      if (iarg + 1 >= narg || is_keyword(arg[iarg + 1])) error->all(FLERR, "pair_style deeppot: out_file needs a file name");
      out_file = arg[iarg + 1];
      iarg += 2;
      continue;
    }
    std::vector<double> values = values_after(key.c_str());
    bool list_key = key == "fparam" || key == "aparam";
    if (!list_key && values.size() != 1) {
      error->all(FLERR, "pair_style deeppot: keyword " + key + " takes one value, got " +
                            std::to_string(values.size()));
    }
    if (key == "out_freq") {
      out_freq = utils::inumeric(FLERR, arg[iarg - 1], false, lmp);
      if (out_freq < 0) error->all(FLERR, "pair_style deeppot: out_freq must be >= 0 (0 = no model deviation)");
    } else if (key == "relative") {
      relative_f = true;
      eps_f = values[0];
    } else if (key == "relative_v") {
      relative_v = true;
      eps_v = values[0];
    } else if (key == "fparam") {
      fparam = values;
      fparam_given = true;
    } else {
      aparam = values;
      aparam_given = true;
    }
  }
  auto check_params = [&](const char *key, bool given, const std::vector<double> &values, int dim) {
    if (dim == 0 && given) {
      error->all(FLERR, std::string("pair_style deeppot: the model takes no ") + key + "; remove the " + key +
                            " keyword");
    }
    if (dim > 0 && static_cast<int>(values.size()) != dim) {
      error->all(FLERR, std::string("pair_style deeppot: the model needs ") + std::to_string(dim) + " " + key +
                            " value(s) (its numb_" + key + "), got " + std::to_string(values.size()) + "; write '" +
                            key + " v1 ... v" + std::to_string(dim) + "' in pair_style");
    }
  };
  check_params("fparam", fparam_given, fparam, first.dim_fparam());
  check_params("aparam", aparam_given, aparam, first.dim_aparam());

  ener_factor = force->boltz / BOLTZ_EV;
  dist_factor = force->angstrom;
  cutoff = first.rcut() * dist_factor;
  // relative levels are given in LAMMPS units; deviations are computed in the model's
  eps_f *= dist_factor / ener_factor;
  eps_v /= ener_factor;
  comm_reverse = 3 * static_cast<int>(models.size());

  if (devi_fp) {
    fclose(devi_fp);
    devi_fp = nullptr;
  }
  if (comm->me == 0) {
    if (models.size() > 1 && out_freq > 0) {
      devi_fp = fopen(out_file.c_str(), "w");
      if (!devi_fp) error->one(FLERR, "pair_style deeppot: cannot open out_file '" + out_file + "' for writing");
      fprintf(devi_fp, "#%11s %18s %18s %18s %18s %18s %18s%s\n", "step", "max_devi_v", "min_devi_v", "avg_devi_v",
              "max_devi_f", "min_devi_f", "avg_devi_f", out_atomic ? " atm_devi_f(N)" : "");
      fflush(devi_fp);
    }
    for (const auto &m : models) {
      if (m->long_range().empty()) continue;
      error->warning(FLERR, "pair_style deeppot: " + m->path() + " is a DPLR model (modifier " + m->long_range() +
                                "): only its short-range part is applied here, its long-range part (the Wannier "
                                "centroids of its dipole model in a reciprocal-space Ewald sum) is not. In LAMMPS "
                                "that part needs virtual atoms for the centroids (atom_style full, bonded to their "
                                "ions), fix dplr and kspace_style pppm/dplr, which deeppot does not provide; for "
                                "the full DPLR energy and forces use deeppot.calculator.DP (ASE) or DeepPot");
    }
    std::vector<std::string> paths;
    for (const auto &m : models) paths.push_back(m->path() + " (" + m->backend_name() + ")");
    utils::logmesg(lmp, "deeppot: " + std::to_string(models.size()) + " model(s): " + join(paths) + "\n" +
                            "deeppot: type_map " + join(first.type_map()) + ", rcut " +
                            std::to_string(first.rcut()) + " Angstrom, " + std::to_string(first.threads()) +
                            " libtorch thread(s) per rank (DP_INTRA_OP_PARALLELISM_THREADS or OMP_NUM_THREADS)\n");
  }
}

/* ---------------------------------------------------------------------- coeff */

void PairDeeppot::coeff(int narg, char **arg) {
  if (models.empty()) error->all(FLERR, "pair_coeff for deeppot comes after 'pair_style deeppot model.pth'");
  if (!allocated) allocate();
  int n = atom->ntypes;
  if (narg < 2 || std::strcmp(arg[0], "*") != 0 || std::strcmp(arg[1], "*") != 0) {
    error->all(FLERR, "pair_style deeppot takes one 'pair_coeff * * [element per LAMMPS type ...]', e.g. "
                      "'pair_coeff * * O H'");
  }
  const std::vector<std::string> &type_map = models[0]->type_map();
  int nnames = narg - 2;
  if (nnames > n) {
    error->all(FLERR, "pair_coeff * * names " + std::to_string(nnames) + " elements but LAMMPS has " +
                          std::to_string(n) + " atom types; give one element (or NULL) per type");
  }
  type_to_model.assign(n, -1);
  if (nnames == 0) {
    if (n > static_cast<int>(type_map.size())) {
      error->all(FLERR, "LAMMPS has " + std::to_string(n) + " atom types but the model knows " +
                            std::to_string(type_map.size()) + " (" + join(type_map) +
                            "); name the element of each type, e.g. 'pair_coeff * * " + type_map[0] + " ...'");
    }
    for (int t = 0; t < n; t++) type_to_model[t] = t;
  } else {
    for (int t = 0; t < nnames; t++) {
      std::string name = arg[2 + t];
      if (name == "NULL") continue;
      auto found = std::find(type_map.begin(), type_map.end(), name);
      if (found == type_map.end()) {
        error->all(FLERR, "pair_coeff: element '" + name + "' (LAMMPS type " + std::to_string(t + 1) +
                              ") is not in the model's type_map (" + join(type_map) +
                              "); use one of these names, or NULL for atoms this model should not see");
      }
      type_to_model[t] = static_cast<int>(found - type_map.begin());
    }
    if (nnames < n && comm->me == 0) {
      error->warning(FLERR, "pair_coeff * * names " + std::to_string(nnames) + " of " + std::to_string(n) +
                                " atom types; the others are treated as NULL (not seen by the model)");
    }
  }
  for (int i = 1; i <= n; i++)
    for (int j = i; j <= n; j++) setflag[i][j] = 1;
}

/* ---------------------------------------------------------------------- init */

void PairDeeppot::init_style() {
  check_units();
  if (force->newton_pair == 0) {
    error->all(FLERR, "pair_style deeppot needs newton_pair on (LAMMPS's default): ghost-atom forces are sent back "
                      "to their owners; remove 'newton off' from the input");
  }
  if (out_atomic && atom->tag_enable == 0) {
    error->all(FLERR, "pair_style deeppot keyword atomic needs atom IDs (atom_modify id yes)");
  }
  neighbor->add_request(this, NeighConst::REQ_FULL);
  checked_ghost_cutoff = false;
}

double PairDeeppot::init_one(int, int) {
  // LAMMPS adds the skin and builds neighbor lists and ghost atoms out to this cutoff
  return cutoff;
}

/* ---------------------------------------------------------------------- compute */

int PairDeeppot::prepare_frame() {
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  double **x = atom->x;
  int *type = atom->type;
  coord.resize(3 * static_cast<size_t>(nall));
  atype.resize(nall);
  for (int i = 0; i < nall; i++) {
    for (int d = 0; d < 3; d++) coord[3 * i + d] = x[i][d] / dist_factor;
    atype[i] = type_to_model[type[i] - 1];
  }
  // local atoms missing from the list (hybrid styles with skip lists) are not evaluated either
  std::vector<char> listed(nlocal, 0);
  int nnei = 1;
  for (int ii = 0; ii < list->inum; ii++) {
    listed[list->ilist[ii]] = 1;
    nnei = std::max(nnei, list->numneigh[list->ilist[ii]]);
  }
  for (int i = 0; i < nlocal; i++)
    if (!listed[i]) atype[i] = -1;
  // LAMMPS's full list as it is (rcut + skin, unsorted), padded with -1 to the widest row; the model
  // formats it. Atoms the model does not see (NULL types) are left out.
  nlist.assign(static_cast<size_t>(nlocal) * nnei, -1);
  for (int ii = 0; ii < list->inum; ii++) {
    const int i = list->ilist[ii];
    if (atype[i] < 0) continue;
    const int *jlist = list->firstneigh[i];
    std::int64_t *row = &nlist[static_cast<size_t>(i) * nnei];
    int k = 0;
    for (int jj = 0; jj < list->numneigh[i]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      if (atype[j] >= 0) row[k++] = j;
    }
  }
  const int dim_aparam = models[0]->dim_aparam();
  frame_aparam.resize(static_cast<size_t>(nlocal) * dim_aparam);
  for (int i = 0; i < nlocal; i++)
    for (int d = 0; d < dim_aparam; d++) frame_aparam[i * dim_aparam + d] = aparam[d];
  return nnei;
}

void PairDeeppot::evaluate(deeppot::Model &model, int nnei, bool atomic_virial, deeppot::ModelResult &out) {
  const int nlocal = atom->nlocal;
  const size_t nall = atype.size();
  if (nlocal == 0) {  // a rank without atoms
    out.energy = 0.0;
    out.atom_energy.clear();
    out.force.assign(3 * nall, 0.0);
    std::fill(out.virial, out.virial + 9, 0.0);
    out.atom_virial.assign(atomic_virial ? 9 * nall : 0, 0.0);
    return;
  }
  try {
    model.compute(coord, atype, nlocal, nlist, nnei, fparam, frame_aparam, atomic_virial, out);
  } catch (const std::exception &e) {
    error->one(FLERR, std::string("pair_style deeppot: ") + e.what());
  }
}

void PairDeeppot::tally(const deeppot::ModelResult &r) {
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const double force_factor = ener_factor / dist_factor;
  double **f = atom->f;
  for (int i = 0; i < nall; i++)
    for (int d = 0; d < 3; d++) f[i][d] += r.force[3 * i + d] * force_factor;
  if (eflag_global) eng_vdwl += r.energy * ener_factor;
  if (eflag_atom)
    for (int i = 0; i < nlocal; i++) eatom[i] += r.atom_energy[i] * ener_factor;
  if (vflag_global)
    for (int c = 0; c < 6; c++) virial[c] += r.virial[VIRIAL_INDEX[c]] * ener_factor;
  if (vflag_atom)
    for (int i = 0; i < nall; i++)
      for (int c = 0; c < 6; c++) vatom[i][c] += r.atom_virial[9 * i + VIRIAL_INDEX[c]] * ener_factor;
  if (cvflag_atom)
    for (int i = 0; i < nall; i++)
      for (int c = 0; c < 9; c++) cvatom[i][c] += r.atom_virial[9 * i + VIRIAL_INDEX[c]] * ener_factor;
}

void PairDeeppot::compute(int eflag, int vflag) {
  ev_init(eflag, vflag);
  if (!checked_ghost_cutoff) {
    checked_ghost_cutoff = true;
    if (neighbor->cutneighmax < cutoff) {
      error->all(FLERR, "pair_style deeppot: LAMMPS's neighbor cutoff " + std::to_string(neighbor->cutneighmax) +
                            " is shorter than the model's rcut " + std::to_string(cutoff) +
                            " (LAMMPS length units); do not lower the pair cutoff below the model's rcut");
    }
  }
  const int nnei = prepare_frame();
  evaluate(*models[0], nnei, vflag_atom || cvflag_atom, result);
  tally(result);
  if (models.size() > 1 && out_freq > 0 && update->ntimestep % out_freq == 0) write_model_deviation(nnei);
}

/* ---------------------------------------------------------------------- model deviation */

void PairDeeppot::write_model_deviation(int nnei) {
  const int nmodels = static_cast<int>(models.size());
  const int nlocal = atom->nlocal;
  const double natoms = static_cast<double>(atom->natoms);
  devi_force.resize(nmodels);
  std::vector<double> virial_per_atom(9 * nmodels), virial_sum(9 * nmodels, 0.0);
  deeppot::ModelResult other;
  for (int k = 0; k < nmodels; k++) {
    if (k > 0) evaluate(*models[k], nnei, false, other);
    const deeppot::ModelResult &r = k == 0 ? result : other;  // model 0 was evaluated for the dynamics
    devi_force[k] = r.force;
    for (int c = 0; c < 9; c++) virial_per_atom[9 * k + c] = r.virial[c] / natoms;
  }
  comm->reverse_comm(this);  // ghost-atom forces of every model onto their owners

  // force deviation of each local atom: sqrt(mean_k |F_k - <F>|^2), eV/Angstrom
  std::vector<double> devi_f(nlocal);
  double local_max = 0.0, local_min = std::numeric_limits<double>::max(), local_sum = 0.0;
  for (int i = 0; i < nlocal; i++) {
    double mean[3] = {0, 0, 0}, sq = 0.0;
    for (int k = 0; k < nmodels; k++)
      for (int d = 0; d < 3; d++) mean[d] += devi_force[k][3 * i + d] / nmodels;
    for (int k = 0; k < nmodels; k++)
      for (int d = 0; d < 3; d++) sq += std::pow(devi_force[k][3 * i + d] - mean[d], 2);
    double devi = std::sqrt(sq / nmodels);
    if (relative_f) devi /= std::sqrt(mean[0] * mean[0] + mean[1] * mean[1] + mean[2] * mean[2]) + eps_f;
    devi_f[i] = devi;
    local_max = std::max(local_max, devi);
    local_min = std::min(local_min, devi);
    local_sum += devi;
  }
  double max_f = 0, min_f = 0, sum_f = 0;
  MPI_Reduce(&local_max, &max_f, 1, MPI_DOUBLE, MPI_MAX, 0, world);
  MPI_Reduce(&local_min, &min_f, 1, MPI_DOUBLE, MPI_MIN, 0, world);
  MPI_Reduce(&local_sum, &sum_f, 1, MPI_DOUBLE, MPI_SUM, 0, world);
  MPI_Reduce(virial_per_atom.data(), virial_sum.data(), 9 * nmodels, MPI_DOUBLE, MPI_SUM, 0, world);

  std::vector<std::pair<tagint, double>> per_atom;
  if (out_atomic) {  // gather (atom ID, deviation) on rank 0
    std::vector<tagint> tags(atom->tag, atom->tag + nlocal);
    std::vector<int> counts(comm->nprocs), offsets(comm->nprocs, 0);
    MPI_Gather(&nlocal, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world);
    for (int p = 1; p < comm->nprocs; p++) offsets[p] = offsets[p - 1] + counts[p - 1];
    const int total = comm->me == 0 ? offsets.back() + counts.back() : 0;
    std::vector<tagint> all_tags(total);
    std::vector<double> all_devi(total);
    MPI_Gatherv(tags.data(), nlocal, MPI_LMP_TAGINT, all_tags.data(), counts.data(), offsets.data(), MPI_LMP_TAGINT,
                0, world);
    MPI_Gatherv(devi_f.data(), nlocal, MPI_DOUBLE, all_devi.data(), counts.data(), offsets.data(), MPI_DOUBLE, 0,
                world);
    for (int a = 0; a < total; a++) per_atom.emplace_back(all_tags[a], all_devi[a]);
    std::sort(per_atom.begin(), per_atom.end());
  }
  if (comm->me != 0 || !devi_fp) return;

  // virial deviation per component of virial/natoms, eV
  double max_v = 0.0, min_v = std::numeric_limits<double>::max(), sq_v = 0.0;
  for (int c = 0; c < 9; c++) {
    double mean = 0.0, sq = 0.0;
    for (int k = 0; k < nmodels; k++) mean += virial_sum[9 * k + c] / nmodels;
    for (int k = 0; k < nmodels; k++) sq += std::pow(virial_sum[9 * k + c] - mean, 2);
    double devi = std::sqrt(sq / nmodels);
    if (relative_v) devi /= std::fabs(mean) + eps_v;
    max_v = std::max(max_v, devi);
    min_v = std::min(min_v, devi);
    sq_v += devi * devi;
  }
  // back to LAMMPS units (relative deviations have none)
  const double v_factor = relative_v ? 1.0 : ener_factor;
  const double f_factor = relative_f ? 1.0 : ener_factor / dist_factor;
  fprintf(devi_fp, "%12ld %18.10e %18.10e %18.10e %18.10e %18.10e %18.10e", static_cast<long>(update->ntimestep),
          max_v * v_factor, min_v * v_factor, std::sqrt(sq_v / 9) * v_factor, max_f * f_factor, min_f * f_factor,
          sum_f / natoms * f_factor);
  for (const auto &entry : per_atom) fprintf(devi_fp, " %18.10e", entry.second * f_factor);
  fprintf(devi_fp, "\n");
  fflush(devi_fp);
}

int PairDeeppot::pack_reverse_comm(int n, int first, double *buf) {
  int m = 0;
  for (int i = first; i < first + n; i++)
    for (const auto &f : devi_force)
      for (int d = 0; d < 3; d++) buf[m++] = f[3 * i + d];
  return m;
}

void PairDeeppot::unpack_reverse_comm(int n, int *list_, double *buf) {
  int m = 0;
  for (int i = 0; i < n; i++) {
    const int j = list_[i];
    for (auto &f : devi_force)
      for (int d = 0; d < 3; d++) f[3 * j + d] += buf[m++];
  }
}
