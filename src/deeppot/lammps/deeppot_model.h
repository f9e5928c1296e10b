/* A frozen deeppot model as the LAMMPS pair style sees it: load once, then evaluate one frame of local and
   ghost atoms with a neighbor list. Units are the model's: Angstrom, eV, eV/Angstrom, virial in eV.

   The implementation (deeppot_model.cpp, libtorch) is a separate library, deeppot_model_backend.so, that
   load_model() opens with RTLD_DEEPBIND: liblammps exports its own reference BLAS (dgemm_, ...) and, loaded
   first, would otherwise take the place of libtorch's optimised BLAS inside libtorch (2.5-3x slower float64
   matrix products, measured). All model formats are handled in that one file. */
#ifndef DEEPPOT_MODEL_H
#define DEEPPOT_MODEL_H

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

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
  virtual ~Model() = default;
  virtual const std::string &path() const = 0;
  virtual double rcut() const = 0;  // Angstrom
  virtual const std::vector<std::string> &type_map() const = 0;
  virtual int dim_fparam() const = 0;
  virtual int dim_aparam() const = 0;
  virtual const std::string &backend_name() const = 0;  // "TorchScript" or "AOTInductor"
  virtual int threads() const = 0;  // libtorch threads of this process
  // the modifier the file carries beside the model (DPLR: "dipole_charge"), which this plugin does not apply;
  // "" for none
  virtual const std::string &long_range() const = 0;

  // coord: nall x 3 (Angstrom); atype: nall model types (-1 = not evaluated); nlist: nloc x nnei indices
  // into the nall atoms, -1 padding, any order, neighbors within rcut plus skin; fparam: dim_fparam;
  // aparam: nloc x dim_aparam. Throws std::exception with a message for the user.
  virtual void compute(const std::vector<double> &coord, const std::vector<std::int64_t> &atype, int nloc,
                       const std::vector<std::int64_t> &nlist, int nnei, const std::vector<double> &fparam,
                       const std::vector<double> &aparam, bool atomic_virial, ModelResult &result) = 0;
};

// Opens the backend library beside the plugin (once) and loads the model file; throws ModelError.
std::unique_ptr<Model> load_model(const std::string &path);

// The backend library's one exported function: a new model, or nullptr with *error set.
extern "C" typedef Model *(*create_model_function)(const char *path, std::string *error);
#define DEEPPOT_BACKEND_FILE "deeppot_model_backend.so"
#define DEEPPOT_BACKEND_FACTORY "deeppot_create_model"

}  // namespace deeppot
#endif
