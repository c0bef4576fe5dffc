"""T-PaiNN: PaiNN potentials pretrained on classical force fields and autotuned on small DFT sets.

The public names are imported on first use (PEP 562): `import tpainn` stays cheap and cannot fail, which
matters because LAMMPS imports `tpainn.lammps_plugin` (the `lammps.plugins` entry point) in every `lmp`
and `import lammps`, where neither torch nor the C++ extension is needed.
"""

import importlib

__version__ = "0.1.0"

# name -> module that defines it (tpainn.train.load_trained loads training outputs, load_exported exported files).
_PUBLIC = {
    "PaiNN": "tpainn.model",
    "TPaiNNCalculator": "tpainn.calculator",
    "export_model": "tpainn.export",
    "load_exported": "tpainn.export",
    "neighbor_list": "tpainn.neighbors",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'tpainn' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
