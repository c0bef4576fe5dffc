"""Reference datasets: the dataset registry, readers for the file formats, the HDF5 frame store, and
load_frames(), the one way to open frames from any source (registry name, file, HDF5 store).

All frames are ase.Atoms in eV, Å and eV/Å, with the reference energy and forces attached as a
SinglePointCalculator.

The modules form a tree (tests/test_package_structure.py checks it has no import circle): errors, labels and
checks at the leaves; formats/ (one module per file format) and hdf5 (the store) on them; readers (the format
dispatch) on both; registry (what each dataset is) and dataset_files (where its files are); frames (the entry
point, and convert) on all of these; sources (a run's pool and test set) and summary (`tpainn data info`) on top.
"""

from tpainn.data.dataset_files import dataset_path
from tpainn.data.errors import DataError
from tpainn.data.formats.ase_db import read_ase_db
from tpainn.data.formats.deepmd import read_deepmd
from tpainn.data.formats.extxyz import read_extxyz
from tpainn.data.formats.n2p2 import read_n2p2
from tpainn.data.formats.qm9 import read_qm9
from tpainn.data.frames import convert, load_dataset, load_frames
from tpainn.data.hdf5 import H5Frames, write_frames
from tpainn.data.readers import FORMATS, read, read_h5
from tpainn.data.registry import DATASETS, atom_energies, get_dataset, list_table, standard_split
from tpainn.data.summary import info

__all__ = [
    "DATASETS",
    "FORMATS",
    "DataError",
    "H5Frames",
    "atom_energies",
    "atoms_to_graph",
    "collate",
    "convert",
    "dataset_path",
    "get_dataset",
    "info",
    "list_table",
    "load_dataset",
    "load_frames",
    "read",
    "read_ase_db",
    "read_deepmd",
    "read_extxyz",
    "read_h5",
    "read_n2p2",
    "read_qm9",
    "standard_split",
    "write_frames",
]

# Last: the graph module needs torch and the neighbour list, which the rest of tpainn.data does not.
from tpainn.data.graph import atoms_to_graph, collate  # noqa: E402
