/* Model loading and evaluation through libtorch. The frozen file is a TorchScript archive (`deeppot freeze`);
   when it also holds an AOTInductor package (extra file deeppot/model.pt2, see deeppot/export/aoti.py for
   the contract) that compiled graph is run instead, unless DEEPPOT_MODEL_BACKEND=torchscript. */
#include "deeppot_model.h"

#include <ATen/Parallel.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>

namespace deeppot {

namespace {
const char *const METADATA_ENTRY = "deeppot/model.json";  // extra file of every frozen deeppot model
const char *const AOTI_ENTRY = "deeppot/model.pt2";       // optional AOTInductor package of the lower entry
const char *const FREEZE_HINT = "make one with 'deeppot freeze -o model.pth' from a training folder or checkpoint";

int env_threads(const char *name) {
  const char *value = std::getenv(name);
  if (!value || !*value) return 0;
  int n = std::atoi(value);
  return n > 0 ? n : 0;
}
}  // namespace

// Threads each rank gives libtorch: DP_INTRA_OP_PARALLELISM_THREADS (as DeePMD-kit), else OMP_NUM_THREADS, else 1 (one per MPI rank).
int configure_threads() {
  static int threads = 0;
  static std::once_flag once;
  std::call_once(once, [] {
    threads = env_threads("DP_INTRA_OP_PARALLELISM_THREADS");
    if (threads == 0) threads = env_threads("OMP_NUM_THREADS");
    if (threads == 0) threads = 1;
    at::set_num_threads(threads);
    // TorchScript's simple executor: the profiling one re-specialises the graph whenever the number of
    // atoms or the neighbor-list width changes, which in MD is at every neighbor-list rebuild, and ran the
    // water model about 1.5x slower here (DEEPPOT_TORCHSCRIPT_PROFILING=1 restores it)
    const char *profiling = std::getenv("DEEPPOT_TORCHSCRIPT_PROFILING");
    if (!(profiling && std::strcmp(profiling, "1") == 0)) {
      torch::jit::getExecutorMode() = false;
      torch::jit::getProfilingMode() = false;
    }
    try {
      at::set_num_interop_threads(1);
    } catch (const c10::Error &) {
      // already set by an earlier model in this process
    }
  });
  return threads;
}

class TorchModel : public Model {
 public:
  explicit TorchModel(const std::string &path);
  const std::string &path() const override { return path_; }
  double rcut() const override { return rcut_; }
  const std::vector<std::string> &type_map() const override { return type_map_; }
  int dim_fparam() const override { return dim_fparam_; }
  int dim_aparam() const override { return dim_aparam_; }
  const std::string &backend_name() const override { return backend_name_; }
  int threads() const override { return configure_threads(); }
  const std::string &long_range() const override { return long_range_; }
  void compute(const std::vector<double> &coord, const std::vector<std::int64_t> &atype, int nloc,
               const std::vector<std::int64_t> &nlist, int nnei, const std::vector<double> &fparam,
               const std::vector<double> &aparam, bool atomic_virial, ModelResult &result) override;

 private:
  void load_aoti(const std::string &bytes);
  static void store(const at::Tensor &energy, const at::Tensor &atom_energy, const at::Tensor &force,
                    const at::Tensor &virial, const at::Tensor *atom_virial, int nloc, std::int64_t nall,
                    ModelResult &result);

  torch::jit::Module module;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> aoti;  // set when the file has a .pt2 package

  std::string path_, backend_name_, long_range_;
  double rcut_ = 0.0;
  std::vector<std::string> type_map_;
  int dim_fparam_ = 0, dim_aparam_ = 0;
};

// The loader reads a file: write the package bytes to a private temporary file, load, delete it.
void TorchModel::load_aoti(const std::string &bytes) {
  std::string name = (std::filesystem::temp_directory_path() / "deeppot-model-XXXXXX.pt2").string();
  std::vector<char> buffer(name.begin(), name.end());
  buffer.push_back('\0');
  int fd = mkstemps(buffer.data(), 4);
  if (fd < 0) throw ModelError("cannot write a temporary file for the compiled model of '" + path_ + "'");
  name = buffer.data();
  bool written = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  ::close(fd);
  try {
    if (!written) throw std::runtime_error("short write");
    aoti = std::make_unique<torch::inductor::AOTIModelPackageLoader>(name, "model");
  } catch (const std::exception &e) {
    std::remove(name.c_str());
    std::string reason = e.what();
    throw ModelError("the compiled (AOTInductor) model in '" + path_ + "' cannot be loaded (" +
                     reason.substr(0, reason.find('\n')) +
                     "); set DEEPPOT_MODEL_BACKEND=torchscript to run its TorchScript module instead");
  }
  std::remove(name.c_str());
}

TorchModel::TorchModel(const std::string &path) : path_(path) {
  if (!std::ifstream(path).good()) {
    throw ModelError("deeppot model file '" + path + "' not found or not readable; give the path of a frozen model (" +
                     FREEZE_HINT + ")");
  }
  configure_threads();
  torch::jit::ExtraFilesMap extra{{METADATA_ENTRY, ""}, {AOTI_ENTRY, ""}};
  try {
    module = torch::jit::load(path, torch::kCPU, extra);
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
  module.eval();
  const char *choice = std::getenv("DEEPPOT_MODEL_BACKEND");
  bool use_aoti = !extra[AOTI_ENTRY].empty() && !(choice && std::strcmp(choice, "torchscript") == 0);
  if (use_aoti) load_aoti(extra[AOTI_ENTRY]);
  backend_name_ = use_aoti ? "AOTInductor" : "TorchScript";
  if (auto output_type = module.find_method("model_output_type")) {  // absent in files frozen before tensor models
    auto kinds = (*output_type)(std::vector<torch::IValue>{}).toListRef();
    std::string kind = kinds.empty() ? "nothing" : kinds[0].toStringRef();
    if (kind != "energy") {
      throw ModelError("'" + path + "' is a " + kind + " model; pair_style deeppot needs an energy model (one "
                       "trained with fitting_net type \"ener\"); evaluate " + kind +
                       " models in Python (deeppot.infer)");
    }
  }
  const std::string modifier_key = "\"modifier_type\": \"";  // written by deeppot.export.model_file (json.dumps)
  auto at = metadata.find(modifier_key);
  if (at != std::string::npos) {
    at += modifier_key.size();
    long_range_ = metadata.substr(at, metadata.find('"', at) - at);
  }
  rcut_ = module.run_method("get_rcut").toDouble();
  for (const auto &name : module.run_method("get_type_map").toListRef()) type_map_.push_back(name.toStringRef());
  dim_fparam_ = static_cast<int>(module.run_method("get_dim_fparam").toInt());
  dim_aparam_ = static_cast<int>(module.run_method("get_dim_aparam").toInt());
}

void TorchModel::compute(const std::vector<double> &coord, const std::vector<std::int64_t> &atype, int nloc,
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
  if (aoti) {
    std::vector<at::Tensor> inputs{coord_t, atype_t, nlist_t};
    if (dim_fparam_ > 0) inputs.push_back(fparam_v.toTensor());
    if (dim_aparam_ > 0) inputs.push_back(aparam_v.toTensor());
    std::vector<at::Tensor> outputs;
    try {
      outputs = aoti->run(inputs);
    } catch (const std::exception &e) {
      throw ModelError("deeppot model '" + path_ + "' failed: " + std::string(e.what()));
    }
    // energy, atom_energy, extended_force, virial, extended_virial
    store(outputs[0], outputs[1], outputs[2], outputs[3], atomic_virial ? &outputs[4] : nullptr, nloc, nall, result);
    return;
  }
  torch::IValue output;
  try {
    output = module.forward({coord_t, atype_t, nlist_t, torch::IValue(), fparam_v, aparam_v, atomic_virial});
  } catch (const std::exception &e) {
    throw ModelError("deeppot model '" + path_ + "' failed: " + std::string(e.what()));
  }
  const auto out = output.toGenericDict();
  auto get = [&out](const char *key) { return out.at(key).toTensor(); };
  at::Tensor atom_virial = atomic_virial ? get("extended_virial") : at::Tensor();
  store(get("energy"), get("atom_energy"), get("extended_force"), get("virial"), atomic_virial ? &atom_virial : nullptr,
        nloc, nall, result);
}

void TorchModel::store(const at::Tensor &energy, const at::Tensor &atom_energy, const at::Tensor &force,
                  const at::Tensor &virial, const at::Tensor *atom_virial, int nloc, std::int64_t nall,
                  ModelResult &result) {
  auto flat = [](const at::Tensor &t) { return t.contiguous().to(torch::kFloat64); };
  result.energy = flat(energy).item<double>();
  auto e = flat(atom_energy), f = flat(force), v = flat(virial);
  result.atom_energy.assign(e.data_ptr<double>(), e.data_ptr<double>() + nloc);
  result.force.assign(f.data_ptr<double>(), f.data_ptr<double>() + nall * 3);
  std::copy(v.data_ptr<double>(), v.data_ptr<double>() + 9, result.virial);
  if (atom_virial) {
    auto av = flat(*atom_virial);
    result.atom_virial.assign(av.data_ptr<double>(), av.data_ptr<double>() + nall * 9);
  } else {
    result.atom_virial.clear();
  }
}

}  // namespace deeppot

extern "C" deeppot::Model *deeppot_create_model(const char *path, std::string *error) {
  try {
    return new deeppot::TorchModel(path);
  } catch (const std::exception &e) {
    *error = e.what();
    return nullptr;
  }
}
