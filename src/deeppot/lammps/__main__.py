"""``python -m deeppot.lammps [--rebuild]``: build (or rebuild) the LAMMPS plugin and print its folder."""

import argparse
import sys

from deeppot.lammps.build import PluginBuildError, plugin_dir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deeppot.lammps", description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="compile again even if the cache has a plugin")
    args = parser.parse_args(argv)
    try:
        print(plugin_dir(rebuild=args.rebuild))
    except PluginBuildError as exc:
        print(f"deeppot: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
