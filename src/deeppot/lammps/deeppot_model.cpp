/* Model loading and evaluation through libtorch (TorchScript archive from `deeppot freeze`). */
#include "deeppot_model.h"

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <cstdlib>
#include <fstream>
#include <mutex>

namespace deeppot {

namespace {
const char *const METADATA_ENTRY = "deeppot/model.json";  // extra file of every frozen deeppot model
const char *const FREEZE_HINT = "make one with 'deeppot freeze -o model.pth' from a training folder or checkpoint";

int env_threads(const char *name) {
  const char *value = std::getenv(name);
  if (!value || !*value) return 0;
  int n = std::atoi(value);
  return n > 0 ? n : 0;
}
}  // namespace

int configure_threads() {
  static int threads = 0;
  static std::once_flag once;
  std::call_once(once, [] {
    threads = env_threads("DEEPPOT_NUM_THREADS");
    if (threads == 0) threads = env_threads("OMP_NUM_THREADS");
    if (threads == 0) threads = 1;
    at::set_num_threads(threads);
    try {
      at::set_num_interop_threads(1);
    } catch (const c10::Error &) {
      // already set by an earlier model in this process
    }
  });
  return threads;
}

struct Model::Backend {
  torch::jit::Module module;
};

Model::Model(const std::string &path) : path_(path) {
  if (!std::ifstream(path).good()) {
    throw ModelError("deeppot model file '" + path + "' not found or not readable; give the path of a frozen model (" +
                     FREEZE_HINT + ")");
  }
  configure_threads();
  torch::jit::ExtraFilesMap extra{{METADATA_ENTRY, ""}};
  backend_ = std::make_unique<Backend>();
  try {
    backend_->module = torch::jit::load(path, torch::kCPU, extra);
  } catch (const std::exception &e) {
    std::string reason = e.what();
    reason = reason.substr(0, reason.find('\n'));
    throw ModelError("'" + path + "' is not a deeppot model file (libtorch could not read it: " + reason + "); " +
                     FREEZE_HINT);
  }
  const std::string &metadata = extra[METADATA_ENTRY];
  if (metadata.find("deeppot-frozen-model") == std::string::npos) {
    throw ModelError("'" + path + "' is a TorchScript file but not a deeppot model (no " + METADATA_ENTRY +
                     " inside; a DeePMD-kit .pth needs 'deeppot convert' first); " + FREEZE_HINT);
  }
  backend_->module.eval();
  auto &module = backend_->module;
  rcut_ = module.run_method("get_rcut").toDouble();
  for (const auto &name : module.run_method("get_type_map").toListRef()) type_map_.push_back(name.toStringRef());
  dim_fparam_ = static_cast<int>(module.run_method("get_dim_fparam").toInt());
  dim_aparam_ = static_cast<int>(module.run_method("get_dim_aparam").toInt());
}

Model::~Model() = default;

void Model::compute(const std::vector<double> &coord, const std::vector<std::int64_t> &atype, int nloc,
                    const std::vector<std::int64_t> &nlist, int nnei, const std::vector<double> &fparam,
                    const std::vector<double> &aparam, bool atomic_virial, ModelResult &result) {
  const std::int64_t nall = static_cast<std::int64_t>(atype.size());
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  // from_blob does not copy: the vectors outlive the call
  auto coord_t = torch::from_blob(const_cast<double *>(coord.data()), {1, nall, 3}, f64);
  auto atype_t = torch::from_blob(const_cast<std::int64_t *>(atype.data()), {1, nall}, i64);
  auto nlist_t = torch::from_blob(const_cast<std::int64_t *>(nlist.data()), {1, nloc, nnei}, i64);
  torch::IValue fparam_v, aparam_v;  // None unless the model takes them
  if (dim_fparam_ > 0) {
    fparam_v = torch::from_blob(const_cast<double *>(fparam.data()), {1, dim_fparam_}, f64);
  }
  if (dim_aparam_ > 0) {
    aparam_v = torch::from_blob(const_cast<double *>(aparam.data()), {1, nloc, dim_aparam_}, f64);
  }
  torch::IValue output;
  try {
    output = backend_->module.forward({coord_t, atype_t, nlist_t, torch::IValue(), fparam_v, aparam_v, atomic_virial});
  } catch (const std::exception &e) {
    throw ModelError("deeppot model '" + path_ + "' failed: " + std::string(e.what()));
  }
  const auto out = output.toGenericDict();
  auto get = [&out](const char *key) { return out.at(key).toTensor().contiguous().to(torch::kFloat64); };
  result.energy = get("energy").item<double>();
  auto atom_energy = get("atom_energy");
  result.atom_energy.assign(atom_energy.data_ptr<double>(), atom_energy.data_ptr<double>() + nloc);
  auto force = get("extended_force");
  result.force.assign(force.data_ptr<double>(), force.data_ptr<double>() + nall * 3);
  auto virial = get("virial");
  std::copy(virial.data_ptr<double>(), virial.data_ptr<double>() + 9, result.virial);
  if (atomic_virial) {
    auto atom_virial = get("extended_virial");
    result.atom_virial.assign(atom_virial.data_ptr<double>(), atom_virial.data_ptr<double>() + nall * 9);
  } else {
    result.atom_virial.clear();
  }
}

}  // namespace deeppot
