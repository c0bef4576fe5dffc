"""HDF5 store for labelled frames, read lazily one frame at a time (datasets larger than memory).

Layout (format "tpainn-frames", version 1); all frames are concatenated along the first axis:

    numbers    (n_atoms_total,)      uint8    atomic numbers
    positions  (n_atoms_total, 3)    float64  Å
    forces     (n_atoms_total, 3)    float64  eV/Å   (only when the frames have forces)
    energy     (n_frames,)           float64  eV
    stress     (n_frames, 3, 3)      float64  eV/Å³  (only when the frames have stress: ASE sign, virial part)
    cell       (n_frames, 3, 3)      float64  Å, rows are the lattice vectors
    pbc        (n_frames, 3)         bool
    offsets    (n_frames + 1,)       int64    frame i is atom rows offsets[i]:offsets[i + 1]

File attributes: format, format_version, energy_unit, length_unit, force_unit, metadata (JSON) and
n_frames; the text ones are fixed-length UTF-8 strings (h5py reads them as bytes; files written before were
variable-length, read as str: readers take both). Files are written in HDF5 1.10's format versions, whose
structure is checksummed, with a Fletcher-32 checksum on every chunk: a damaged file is a DataError naming it.
`n_frames` is the commit marker: readers only see frames below it, and an append writes it
last, so an append that dies part-way leaves the frames stored before it intact and readable (the
next append overwrites the uncommitted rows). HDF5 itself keeps no journal, so this protects against
a process that stops between writes, not against a torn write of the library's own metadata.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms

from tpainn.data.checks import check_frame
from tpainn.data.errors import DataError
from tpainn.data.labels import attach_labels, labels_of, stress_3x3, stress_of

FORMAT_NAME = "tpainn-frames"
FORMAT_VERSION = 1
UNIT_ATTRS = {"energy_unit": "eV", "length_unit": "Angstrom", "force_unit": "eV/Angstrom", "stress_unit": "eV/Angstrom^3"}
H5_SUFFIXES = (".h5", ".hdf5")

# Chunks of ~100 kB: reading one frame touches one or two chunks, and appends grow the file in steps.
_ATOMS_PER_CHUNK = 4096
_FRAMES_PER_CHUNK = 1024
# What h5py raises on a damaged file (a truncated or overwritten block, a broken link or attribute):
# readers turn these into a DataError naming the file.
_DAMAGE_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError)
# Dataset name: (shape of one row, rows are atoms (True) or frames (False)); forces and stress are optional.
_LAYOUT = {
    "numbers": ((), True), "positions": ((3,), True), "forces": ((3,), True), "energy": ((), False),
    "stress": ((3, 3), False), "cell": ((3, 3), False), "pbc": ((3,), False),
}  # fmt: skip


def _damaged(path: Path, err: BaseException) -> DataError:
    """A DataError naming `path` for an error h5py raised while reading it."""
    detail = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    return DataError(f"{path}: the HDF5 file is damaged ({type(err).__name__}{': ' + detail if detail else ''})")


def _stack_rows(arrays: list, row_shape: tuple, dtype) -> np.ndarray:
    """Concatenate per-frame arrays along the first axis; an empty list gives zero rows."""
    if not arrays:
        return np.empty((0, *row_shape), dtype)
    return np.concatenate([np.reshape(array, (-1, *row_shape)) for array in arrays]).astype(dtype)


class _FrameBatch:
    """Frames flattened into the on-disk arrays, checked for labels on the way."""

    def __init__(self, frames: Sequence[Atoms], path: Path):
        frames = list(frames)  # iterated several times below: read an H5Frames source once
        # Nothing non-finite or malformed is stored: a reader would refuse it later, far from its source.
        for i, atoms in enumerate(frames):
            check_frame(atoms, f"{path}: frame {i} of the {len(frames)} to write")
        labels = [labels_of(atoms, f"frame {i} of those to write") for i, atoms in enumerate(frames)]
        stresses = [stress_of(atoms, f"frame {i} of those to write") for i, atoms in enumerate(frames)]
        self.has_forces = _all_or_none([forces for _, forces in labels], "forces")
        self.has_stress = _all_or_none(stresses, "stress")
        self.offsets = np.concatenate([[0], np.cumsum([len(atoms) for atoms in frames], dtype=np.int64)])
        self.numbers = _stack_rows([atoms.numbers for atoms in frames], (), np.uint8)
        self.positions = _stack_rows([atoms.positions for atoms in frames], (3,), np.float64)
        self.forces = _stack_rows([forces for _, forces in labels], (3,), np.float64) if self.has_forces else None
        self.energy = np.array([energy for energy, _ in labels], dtype=np.float64)
        self.stress = _stack_rows(stresses, (3, 3), np.float64) if self.has_stress else None
        self.cell = _stack_rows([atoms.cell.array for atoms in frames], (3, 3), np.float64)
        self.pbc = _stack_rows([atoms.pbc for atoms in frames], (3,), bool)

    def __len__(self) -> int:
        return len(self.energy)


def _all_or_none(labels: list, name: str) -> bool:
    present = {label is not None for label in labels}
    if len(present) > 1:
        raise DataError(f"of the frames to write, some have {name} and some do not")
    return present == {True}


def _create_layout(f: h5py.File) -> None:
    """Empty resizable datasets and the header of a new frame file (forces and stress come with the first frames)."""
    per_atom = {"numbers": ((), np.uint8), "positions": ((3,), np.float64)}
    for name, (row_shape, dtype) in per_atom.items():
        _create_rows(f, name, row_shape, dtype, _ATOMS_PER_CHUNK)
    per_frame = {"energy": ((), np.float64), "cell": ((3, 3), np.float64), "pbc": ((3,), bool)}
    for name, (row_shape, dtype) in per_frame.items():
        _create_rows(f, name, row_shape, dtype, _FRAMES_PER_CHUNK)
    f.create_dataset("offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(_FRAMES_PER_CHUNK,), fletcher32=True)
    for name, text in {"format": FORMAT_NAME, **UNIT_ATTRS, "metadata": "{}"}.items():
        _set_text(f, name, text)
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["n_frames"] = 0


def _set_text(f: h5py.File, name: str, text: str) -> None:
    """A text attribute as a fixed-length UTF-8 string, kept in the checksummed object header: HDF5 keeps
    variable-length strings in its global heap, which has no checksum (a damaged one can hang or crash libhdf5)."""
    data = text.encode("utf-8")
    f.attrs.create(name, np.bytes_(data), dtype=h5py.string_dtype("utf-8", max(len(data), 1)))


def _text(value):
    """A text attribute as str: fixed-length ones read as bytes, variable-length ones (older files) as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _create_rows(f: h5py.File, name: str, row_shape: tuple, dtype, rows_per_chunk: int) -> None:
    f.create_dataset(
        name, (0, *row_shape), dtype, maxshape=(None, *row_shape), chunks=(rows_per_chunk, *row_shape), fletcher32=True
    )


def _match_optional_layout(f: h5py.File, path: Path, n_frames: int, name: str, present: bool, rows: tuple) -> None:
    """Give a file without committed frames the layout of its first frames for the optional label `name`
    (forces, stress); once frames are committed, new frames must agree with them."""
    if present == (name in f):
        return
    if n_frames > 0:
        stored = "has" if name in f else "has no"
        appended = "have" if present else "have no"
        raise DataError(f"{path}: the stored frames {stored} {name} but the new frames {appended}")
    if present:
        row_shape, rows_per_chunk = rows
        _create_rows(f, name, row_shape, np.float64, rows_per_chunk)
    else:
        del f[name]


def _check_frame_file(f: h5py.File, path: Path) -> None:
    if _text(f.attrs.get("format")) != FORMAT_NAME:
        raise DataError(f"{path}: not a tpainn frame file (HDF5 attribute format={_text(f.attrs.get('format'))!r})")
    if f.attrs.get("format_version") != FORMAT_VERSION:
        version = f.attrs.get("format_version")
        raise DataError(f"{path}: tpainn frame format version {version}, expected {FORMAT_VERSION}")


def _open_frame_file(path: Path, mode: str) -> h5py.File:
    """Open an existing frame file, turning 'missing' or 'not HDF5 / not ours' into DataError."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        f = h5py.File(path, mode)
    except OSError as err:
        raise DataError(f"{path}: cannot be opened as an HDF5 file ({err})") from err
    try:
        _check_frame_file(f, path)
    except DataError:
        f.close()
        raise
    except _DAMAGE_ERRORS as err:
        f.close()
        raise _damaged(path, err) from err
    return f


def _write_rows(dataset: h5py.Dataset, start: int, rows: np.ndarray) -> None:
    """Write `rows` at row `start`, growing (or trimming uncommitted rows of) the dataset to fit."""
    dataset.resize(start + len(rows), axis=0)
    dataset[start:] = rows


def _json_metadata(metadata: dict) -> str:
    try:
        return json.dumps(metadata, sort_keys=True)
    except TypeError as err:
        raise DataError(f"metadata must be JSON-serialisable: {err}") from err


def _create_frame_file(path: Path) -> h5py.File:
    if not path.parent.is_dir():
        raise DataError(f"{path.parent}: the output folder does not exist")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an HDF5 file to write")
    try:
        # Format versions of HDF5 1.10 (superblock 3, object headers 2): checksums on all the file's structure, so
        # that a damaged file is an error rather than a hang or a crash inside libhdf5. Every chunk has a Fletcher-32
        # checksum too: a damaged value is an error, not a wrong frame.
        f = h5py.File(path, "w", libver=("v110", "v110"))
    except OSError as err:
        raise DataError(f"{path}: cannot create an HDF5 file ({err})") from err
    _create_layout(f)
    return f


def write_frames(
    path: str | os.PathLike, frames: Sequence[Atoms], metadata: dict | None = None, append: bool = False
) -> int:
    """Store labelled frames (energy in eV, optional forces in eV/Å and stress in eV/Å³) in an HDF5 frame file.

    append=False replaces any existing file; append=True adds the frames to an existing file (or
    creates it), merging `metadata` into the stored metadata. Returns the number of frames now in the
    file. Every frame must have an energy, and either all frames in the file have forces (stress) or none.
    """
    path = Path(path)
    # Check the frames before an existing file is opened, let alone truncated.
    batch = _FrameBatch(frames, path)
    with _open_frame_file(path, "a") if append and path.exists() else _create_frame_file(path) as f:
        n_frames = int(f.attrs["n_frames"])
        stored_metadata = json.loads(f.attrs["metadata"])
        metadata_json = _json_metadata({**stored_metadata, **(metadata or {})})
        if len(batch):
            _match_optional_layout(f, path, n_frames, "forces", batch.has_forces, ((3,), _ATOMS_PER_CHUNK))
            _match_optional_layout(f, path, n_frames, "stress", batch.has_stress, ((3, 3), _FRAMES_PER_CHUNK))
        n_atoms = int(f["offsets"][n_frames])
        _write_rows(f["numbers"], n_atoms, batch.numbers)
        _write_rows(f["positions"], n_atoms, batch.positions)
        if batch.has_forces:
            _write_rows(f["forces"], n_atoms, batch.forces)
        _write_rows(f["energy"], n_frames, batch.energy)
        if batch.has_stress:
            _write_rows(f["stress"], n_frames, batch.stress)
        _write_rows(f["cell"], n_frames, batch.cell)
        _write_rows(f["pbc"], n_frames, batch.pbc)
        _write_rows(f["offsets"], n_frames + 1, n_atoms + batch.offsets[1:])
        # The frame data must reach the file before the commit marker that makes it visible.
        f.flush()
        _set_text(f, "metadata", metadata_json)
        f.attrs["n_frames"] = n_frames + len(batch)
        return n_frames + len(batch)


class H5Frames(Sequence):
    """Read-only, lazy view of a frame file: `frames[i]` reads only frame i's rows from disk.

    The HDF5 handle is opened on first access and re-opened in a new process (after fork or
    unpickling), because h5py handles must not be shared across processes; a torch DataLoader with
    workers can therefore hold an H5Frames. Slicing returns a list of Atoms.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with _open_frame_file(self.path, "r") as f:
            try:
                self._n_frames, self._offsets = self._check_layout(f)
                self.metadata: dict = json.loads(f.attrs["metadata"])
                if not isinstance(self.metadata, dict):
                    raise DataError(f"{self.path}: the metadata attribute is not a JSON object")
                self.has_forces = "forces" in f
                self.has_stress = "stress" in f
            except DataError:
                raise
            except _DAMAGE_ERRORS as err:
                raise _damaged(self.path, err) from err
        self._file: h5py.File | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._file_pid: int | None = None

    def _check_layout(self, f: h5py.File) -> tuple[int, np.ndarray]:
        """(n_frames, offsets) once the datasets' shapes and the offsets agree with the committed frame count, so
        that a frame read cannot run past a dataset or mix up frames; else DataError naming the file."""
        n_frames = f.attrs["n_frames"]
        if np.ndim(n_frames) != 0 or not np.issubdtype(np.asarray(n_frames).dtype, np.integer) or n_frames < 0:
            raise DataError(f"{self.path}: the n_frames attribute is {n_frames!r}, not a frame count")
        n_frames = int(n_frames)
        if "offsets" not in f:
            raise DataError(f"{self.path}: the dataset 'offsets' is missing")
        offsets_rows = f["offsets"].shape
        if len(offsets_rows) != 1 or offsets_rows[0] < n_frames + 1:
            raise DataError(f"{self.path}: offsets has shape {offsets_rows}, expected at least ({n_frames + 1},)")
        # Offsets are 8 bytes per frame: keep them in memory so a frame read is two slice reads.
        offsets = f["offsets"][: n_frames + 1].astype(np.int64)
        if offsets[0] != 0 or (np.diff(offsets) < 0).any():
            raise DataError(f"{self.path}: the frame offsets are damaged (they must start at 0 and never decrease)")
        for name, (row_shape, per_atom) in _LAYOUT.items():
            if name not in f:
                if name in ("forces", "stress"):
                    continue
                raise DataError(f"{self.path}: the dataset {name!r} is missing")
            shape, rows = f[name].shape, int(offsets[-1]) if per_atom else n_frames
            if shape[1:] != row_shape or shape[0] < rows:
                expected = f"{rows} or more rows of shape {row_shape}"
                raise DataError(f"{self.path}: the dataset {name!r} has shape {shape}, expected {expected}")
        return n_frames, offsets

    def _handle(self) -> dict[str, h5py.Dataset]:
        """The file's datasets by name; looked up once per open (a lookup costs as much as a frame read)."""
        if self._file is None or self._file_pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._datasets = {name: self._file[name] for name in self._file}
            self._file_pid = os.getpid()
        return self._datasets

    def close(self) -> None:
        if self._file is not None and self._file_pid == os.getpid():
            self._file.close()
        self._file, self._datasets = None, {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_datasets": {}, "_file_pid": None}

    def __len__(self) -> int:
        return self._n_frames

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._read_frame(i) for i in range(*index.indices(self._n_frames))]
        i = operator.index(index)
        if i < 0:
            i += self._n_frames
        if not 0 <= i < self._n_frames:
            raise IndexError(f"frame {index} out of range for {self.path} ({self._n_frames} frames)")
        return self._read_frame(i)

    def _read_frame(self, i: int) -> Atoms:
        where = f"{self.path}: frame {i}"
        try:
            f = self._handle()
            first, last = self._offsets[i], self._offsets[i + 1]
            atoms = Atoms(
                numbers=f["numbers"][first:last], positions=f["positions"][first:last], cell=f["cell"][i], pbc=f["pbc"][i]
            )
            forces = f["forces"][first:last] if self.has_forces else None
            stress = stress_3x3(f["stress"][i], where) if self.has_stress else None
            energy = f["energy"][i]
        except DataError:
            raise
        except _DAMAGE_ERRORS as err:
            raise _damaged(self.path, err) from err
        return check_frame(attach_labels(atoms, energy, forces, stress), where)

    def __repr__(self) -> str:
        return f"H5Frames({str(self.path)!r}, {self._n_frames} frames)"
