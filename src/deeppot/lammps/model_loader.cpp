/* load_model(): open deeppot_model_backend.so (beside this plugin) with RTLD_DEEPBIND, see deeppot_model.h. */
#include <dlfcn.h>

#include <mutex>

#include "deeppot_model.h"

namespace deeppot {

namespace {
std::string folder_of_this_library() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&folder_of_this_library), &info) == 0 || !info.dli_fname) return ".";
  std::string file = info.dli_fname;
  auto slash = file.rfind('/');
  return slash == std::string::npos ? "." : file.substr(0, slash);
}

create_model_function backend_factory() {
  static create_model_function factory = nullptr;
  static std::string failure;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string path = folder_of_this_library() + "/" + DEEPPOT_BACKEND_FILE;
    void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
      const char *why = dlerror();
      failure = "cannot load " + path + " (" + (why ? why : "unknown reason") +
                "); rebuild the plugin with 'python -m deeppot.lammps --rebuild'";
      return;
    }
    factory = reinterpret_cast<create_model_function>(dlsym(handle, DEEPPOT_BACKEND_FACTORY));
    if (!factory) failure = path + " has no " DEEPPOT_BACKEND_FACTORY "; rebuild: python -m deeppot.lammps --rebuild";
  });
  if (!factory) throw ModelError(failure);
  return factory;
}
}  // namespace

std::unique_ptr<Model> load_model(const std::string &path) {
  std::string error;
  Model *model = backend_factory()(path.c_str(), &error);
  if (!model) throw ModelError(error);
  return std::unique_ptr<Model>(model);
}

}  // namespace deeppot
