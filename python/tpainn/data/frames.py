"""Frames from any frame source, the one way in: a registry name, a file of any supported format (read
whole) or an HDF5 frame store (read lazily); and convert() from any of them to the HDF5 store.

All frames are ase.Atoms in eV, Å, eV/Å and eV/Å³, with the labels attached as a SinglePointCalculator.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ase import Atoms

from tpainn.data.dataset_files import dataset_path
from tpainn.data.errors import DataError
from tpainn.data.formats.qm9 import read_qm9
from tpainn.data.hdf5 import H5_SUFFIXES, H5Frames, write_frames
from tpainn.data.readers import KEYED_FORMATS, detect_format, read
from tpainn.data.registry import DATASETS, get_dataset, provenance

# convert() streams frames through memory in batches of this many.
_CONVERT_BATCH_FRAMES = 1024


def load_dataset(name: str) -> list[Atoms]:
    """All frames of a registered dataset in load order (the order standard_split refers to); eV, Å, eV/Å."""
    dataset = get_dataset(name)
    if dataset.format == "qm9pack":
        return read_qm9()
    return read(dataset_path(name), format=dataset.format)


def load_frames(spec: str | os.PathLike, format: str | None = None, **keys: str | None) -> Sequence[Atoms]:
    """The frames of a frame source: a list (registry names, files), or a lazy H5Frames for an HDF5 store.

    `format` names a file's format where its name does not tell; `keys` (energy_key, forces_key, stress_key)
    name the label keys of the formats that let the user choose them (KEYED_FORMATS) and are ignored by others.
    """
    spec = str(spec)
    if spec in DATASETS:
        if format is not None:
            raise DataError(f"{spec}: a registry dataset is read in its own format ({get_dataset(spec).format}), not {format}")
        return load_dataset(spec)
    path = Path(spec)
    if not path.exists():
        raise no_such_source(spec)
    format = format or detect_format(path)
    if format == "h5":
        return H5Frames(path)
    return read(path, format, **(keys if format in KEYED_FORMATS else {}))


def no_such_source(spec: str) -> DataError:
    """The error for a source that is neither: a bare name reads as a dataset name, anything else as a path."""
    if "/" not in spec and not Path(spec).suffix:
        return DataError(f"unknown dataset {spec!r} (and no file or folder of that name); known datasets: {', '.join(DATASETS)}")
    return DataError(f"{spec}: no such file or folder")


def convert(src: str | os.PathLike, dst: str | os.PathLike, format: str | None = None) -> int:
    """Write every frame of `src` (any frame source) to the HDF5 file `dst`.

    Returns the number of frames written. Frames go through memory in batches, so an HDF5 source
    larger than memory can be re-written too.
    """
    dst = Path(dst)
    if dst.suffix.lower() not in H5_SUFFIXES:
        raise DataError(f"{dst}: the destination must be an HDF5 file ending in {' or '.join(H5_SUFFIXES)}")
    if Path(src).exists() and dst.exists() and dst.samefile(src):
        raise DataError(f"{dst}: the destination is the source; write to another file")
    frames = load_frames(src, format)
    metadata = {"converted_from": str(src), **provenance(str(src))}
    write_frames(dst, frames[:_CONVERT_BATCH_FRAMES], metadata=metadata)
    for start in range(_CONVERT_BATCH_FRAMES, len(frames), _CONVERT_BATCH_FRAMES):
        write_frames(dst, frames[start : start + _CONVERT_BATCH_FRAMES], append=True)
    return len(frames)
