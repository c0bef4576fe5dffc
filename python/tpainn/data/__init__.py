"""Reference datasets: readers for the file formats, the dataset registry and the HDF5 frame store.

All frames are ase.Atoms in eV, Å and eV/Å, with the reference energy and forces attached as a
SinglePointCalculator.
"""

from tpainn.data.ase_db import read_ase_db
from tpainn.data.errors import DataError
from tpainn.data.hdf5 import H5Frames, convert, write_frames
from tpainn.data.readers import FORMATS, read, read_deepmd, read_extxyz, read_h5, read_n2p2, read_qm9
from tpainn.data.registry import (
    DATASETS,
    atom_energies,
    dataset_path,
    get_dataset,
    info,
    list_table,
    load_dataset,
    load_frames,
    standard_split,
)

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
