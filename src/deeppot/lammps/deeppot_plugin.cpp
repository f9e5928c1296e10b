/* Registers pair_style deeppot with LAMMPS when the plugin is loaded (LAMMPS_PLUGIN_PATH or 'plugin load'). */
#include "lammps.h"
#include "lammpsplugin.h"
#include "pair_deeppot.h"

using namespace LAMMPS_NS;

static Pair *create_pair_deeppot(LAMMPS *lmp) { return new PairDeeppot(lmp); }

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc) {
  lammpsplugin_t plugin;
  // built against the installed LAMMPS by deeppot.lammps.build, so its version is the running one
  plugin.version = static_cast<LAMMPS *>(lmp)->version;
  plugin.style = "pair";
  plugin.name = "deeppot";
  plugin.info = "deeppot pair style: Deep Potential models frozen by deeppot";
  plugin.author = "deeppot developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *)&create_pair_deeppot;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc)regfunc)(&plugin, lmp);
}
