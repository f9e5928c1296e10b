/* pair_style deeppot: a frozen deeppot model in LAMMPS (see the README's "LAMMPS" section).

   pair_style deeppot model.pth [m2.pth ...] [out_file F] [out_freq N] [atomic] [relative v] [relative_v v]
                      [fparam v1 ...] [aparam v1 ...]
   pair_coeff * * O H        (LAMMPS type k -> model element by name; NULL = not evaluated)

   Uses LAMMPS's full neighbor list with newton_pair on: forces go on local and ghost atoms and LAMMPS's
   reverse communication adds the ghost forces to their owners. Energy, per-atom energy, global virial and
   per-atom virial (two-body and centroid) are tallied. With several models the first drives the dynamics and
   every out_freq steps all are evaluated to write DeePMD-kit's model-deviation columns. */
#ifndef DEEPPOT_PAIR_DEEPPOT_H
#define DEEPPOT_PAIR_DEEPPOT_H

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "deeppot_model.h"
#include "pair.h"

namespace LAMMPS_NS {

class PairDeeppot : public Pair {
 public:
  explicit PairDeeppot(class LAMMPS *);
  ~PairDeeppot() override;
  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;

 private:
  std::vector<std::unique_ptr<deeppot::Model>> models;
  std::vector<int> type_to_model;  // LAMMPS type - 1 -> model type, -1 for NULL
  double cutoff = 0.0;             // model rcut in LAMMPS length units
  double ener_factor = 1.0;        // eV -> LAMMPS energy
  double dist_factor = 1.0;        // Angstrom -> LAMMPS length
  std::vector<double> fparam, aparam;

  // model deviation
  std::string out_file = "model_devi.out";
  int out_freq = 100;
  bool out_atomic = false;
  bool relative_f = false, relative_v = false;
  double eps_f = 0.0, eps_v = 0.0;  // in eV (and eV/Angstrom) after conversion, as DeePMD-kit
  FILE *devi_fp = nullptr;
  std::vector<std::vector<double>> devi_force;  // per model, nall x 3, reverse-communicated
  bool checked_ghost_cutoff = false;

  // one frame in the model's units, rebuilt every step
  std::vector<double> coord;
  std::vector<std::int64_t> atype;
  std::vector<std::int64_t> nlist;
  std::vector<double> frame_aparam;
  deeppot::ModelResult result;

  void allocate();
  int prepare_frame();  // fills coord, atype, nlist; returns nnei
  void evaluate(deeppot::Model &, int nnei, bool atomic_virial, deeppot::ModelResult &);
  void tally(const deeppot::ModelResult &);
  void write_model_deviation(int nnei);
  void check_units();
};

}  // namespace LAMMPS_NS
#endif
