/* A frozen deeppot model as the LAMMPS pair style sees it: load once, then evaluate one frame of local and
   ghost atoms with a neighbor list. All model formats are loaded here (today the TorchScript .pth written by
   `deeppot freeze`), so the pair style does not depend on how the model is stored or run.
   Units are the model's: Angstrom, eV, eV/Angstrom, virial in eV. */
#ifndef DEEPPOT_MODEL_H
#define DEEPPOT_MODEL_H

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace deeppot {

// A problem the user can fix (bad file, bad input); what() says what to do.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One evaluation. Indices: nall = local + ghost atoms, local atoms first.
struct ModelResult {
  double energy = 0.0;               // eV, sum over the local atoms
  std::vector<double> atom_energy;   // nloc, eV
  std::vector<double> force;         // nall x 3, eV/Angstrom, on local and ghost atoms
  double virial[9] = {0};            // eV, row-major [a*3+b], DeePMD-kit's sign (positive = repulsive)
  std::vector<double> atom_virial;   // nall x 9 (only when asked for), eV
};

class Model {
 public:
  explicit Model(const std::string &path);  // throws ModelError
  ~Model();
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;

  const std::string &path() const { return path_; }
  double rcut() const { return rcut_; }  // Angstrom
  const std::vector<std::string> &type_map() const { return type_map_; }
  int dim_fparam() const { return dim_fparam_; }
  int dim_aparam() const { return dim_aparam_; }
  const std::string &backend_name() const { return backend_name_; }  // "TorchScript" or "AOTInductor"

  // coord: nall x 3 (Angstrom); atype: nall model types (-1 = not evaluated); nlist: nloc x nnei indices
  // into the nall atoms, -1 padding, any order, neighbors within rcut plus skin; fparam: dim_fparam;
  // aparam: nloc x dim_aparam. Throws ModelError.
  void compute(const std::vector<double> &coord, const std::vector<std::int64_t> &atype, int nloc,
               const std::vector<std::int64_t> &nlist, int nnei, const std::vector<double> &fparam,
               const std::vector<double> &aparam, bool atomic_virial, ModelResult &result);

 private:
  void store(const at::Tensor &energy, const at::Tensor &atom_energy, const at::Tensor &force,
             const at::Tensor &virial, const at::Tensor *atom_virial, int nloc, std::int64_t nall,
             ModelResult &result);

 private:
  struct Backend;  // the loaded module; kept out of this header so only one file includes torch
  std::unique_ptr<Backend> backend_;
  std::string path_;
  std::string backend_name_;
  double rcut_ = 0.0;
  std::vector<std::string> type_map_;
  int dim_fparam_ = 0;
  int dim_aparam_ = 0;
};

// Threads each rank gives libtorch: DEEPPOT_NUM_THREADS, else OMP_NUM_THREADS, else 1 (one per MPI rank).
int configure_threads();

}  // namespace deeppot
#endif
