"""`tpainn data info`: what the registry knows about a dataset (info), and what a frame source holds, in
tpainn's units, and what tpainn will refuse of it (describe_source).

A source is read exactly as training reads it (tpainn.data.frames.load_frames), so a frame the readers refuse
is reported as the readers' one-line error; everything below is what the readable frames look like.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence

import ase.units
import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from tpainn.data.graph import elements_in
from tpainn.data.labels import stress_of
from tpainn.data.dataset_files import location
from tpainn.data.frames import load_frames
from tpainn.data.readers import detect_format
from tpainn.data.registry import DATASETS, get_dataset
from tpainn.data.sources import source_record

KBAR = 1e8 * ase.units.Pascal  # eV/Å³


def _range(values: np.ndarray, unit: str, digits: int = 4) -> str:
    return f"{values.min():.{digits}g} to {values.max():.{digits}g} {unit}"


def _formula(counts: dict[str, int]) -> str:
    return "".join(f"{symbol}{n if n > 1 else ''}" for symbol, n in sorted(counts.items(), key=lambda kv: chemical_symbols.index(kv[0])))


def _cell_kind(atoms: Atoms) -> str:
    if not atoms.pbc.any():
        return "no periodicity"
    cell = atoms.cell.array
    lengths = np.linalg.norm(cell, axis=1)
    periodic = "".join("xyz"[i] for i in np.flatnonzero(atoms.pbc))
    if not np.allclose(cell - np.diag(np.diag(cell)), 0, atol=1e-8):
        shape = "triclinic"
    elif np.allclose(lengths, lengths[0], rtol=1e-6):
        shape = "cubic"
    else:
        shape = "orthorhombic"
    return f"periodic in {periodic}, {shape}" if periodic != "xyz" else shape


def _lines_of_labels(frames: Sequence[Atoms], numbers_of_atoms: np.ndarray) -> tuple[list[str], list[str]]:
    """Energy, force and stress ranges; and what of them will be refused or left out."""
    energies = np.array([float(atoms.calc.results["energy"]) for atoms in frames])
    forces = [atoms.calc.results.get("forces") for atoms in frames]
    stresses = [stress_of(atoms, f"frame {i}") for i, atoms in enumerate(frames)]
    lines = [f"energy:          {_range(energies, 'eV', 8)}; per atom {_range(energies / numbers_of_atoms, 'eV/atom', 6)}"]
    notes = []
    with_forces = [f for f in forces if f is not None]
    if with_forces:
        components = np.concatenate(with_forces).ravel()
        norms = np.linalg.norm(np.concatenate(with_forces), axis=1)
        lines.append(f"forces:          {len(with_forces)} of {len(frames)} frames; components {_range(components, 'eV/Å')}, "
                     f"largest |F| {norms.max():.4g} eV/Å")  # fmt: skip
    else:
        lines.append("forces:          none (training fits energies only)")
    if 0 < len(with_forces) < len(frames):
        notes.append(f"{len(frames) - len(with_forces)} frames have no forces: a batch holding one of them is trained on "
                     "energies only, and `tpainn data convert` (HDF5) refuses the file")  # fmt: skip
    with_stress = np.array([s for s in stresses if s is not None])
    if len(with_stress):
        lines.append(f"stress:          {len(with_stress)} of {len(frames)} frames; components "
                     f"{_range(with_stress.ravel(), 'eV/Å³')} ({_range(with_stress.ravel() / KBAR, 'kbar')}, ASE sign)")  # fmt: skip
        if len(with_stress) < len(frames):
            notes.append(f"{len(frames) - len(with_stress)} frames have no stress: they add nothing to the stress loss, "
                         "and `tpainn data convert` (HDF5) refuses the file")  # fmt: skip
    else:
        lines.append("stress:          none")
    return lines, notes


def _lines_of_compositions(frames: Sequence[Atoms], species: list[str], energies: np.ndarray) -> list[str]:
    """Compositions, and whether the least-squares reference energies separate the elements."""
    compositions = Counter(_formula(Counter(atoms.get_chemical_symbols())) for atoms in frames)
    shown = ", ".join(f"{formula} ×{n}" for formula, n in compositions.most_common(5))
    more = f" and {len(compositions) - 5} more" if len(compositions) > 5 else ""
    counts = np.array([[np.count_nonzero(atoms.numbers == chemical_symbols.index(s)) for s in species] for atoms in frames])
    rank = np.linalg.matrix_rank(counts)
    lines = [f"compositions:    {len(compositions)} ({shown}{more})"]
    if rank == len(species):
        references, *_ = np.linalg.lstsq(counts, energies, rcond=None)
        residual = (energies - counts @ references) / counts.sum(axis=1)
        refs = ", ".join(f"{s} {e:.4f}" for s, e in zip(species, references))
        lines.append(f"reference fit:   separates the elements (eV/atom: {refs}); per-atom residual std "
                     f"{1e3 * residual.std():.3g} meV/atom, largest {1e3 * np.abs(residual).max():.3g} meV/atom "
                     f"(frame {int(np.abs(residual).argmax())})")  # fmt: skip
    else:
        lines.append(f"reference fit:   the compositions do not separate the {len(species)} elements (rank {rank}): the "
                     "energy per formula unit is fitted, split between elements by their counts")  # fmt: skip
    return lines


def describe_source(spec: str | os.PathLike, format: str | None = None, model: str | None = None,
                    **keys: str | None) -> str:  # fmt: skip
    """A report of a frame source (a file, folder or registry name) for `tpainn data info`."""
    spec = str(spec)
    frames = load_frames(spec, format, **keys)
    frames = frames if isinstance(frames, list) else list(frames)
    record = source_record(spec)
    numbers_of_atoms = np.array([len(atoms) for atoms in frames])
    species = elements_in(frames)
    totals = Counter(symbol for atoms in frames for symbol in atoms.get_chemical_symbols())
    kind = "registry dataset" if spec in DATASETS else (format or detect_format(spec))
    lines = [
        f"source:          {record['source']} ({kind})",
        f"sha256:          {record['sha256']}" + (" (of the sha256sum listing of its files)" if record["kind"] == "folder" else ""),
        f"frames:          {len(frames)}",
        f"species:         {', '.join(species)} (atoms in all frames: {', '.join(f'{s} {totals[s]}' for s in species)})",
        f"atoms per frame: {numbers_of_atoms.min()}" + (f" to {numbers_of_atoms.max()}" if np.ptp(numbers_of_atoms) else ""),
    ]
    energies = np.array([float(atoms.calc.results["energy"]) for atoms in frames])
    lines += _lines_of_compositions(frames, species, energies)
    cells = Counter(_cell_kind(atoms) for atoms in frames)
    lines.append("cells:           " + ", ".join(f"{kind} ×{n}" for kind, n in cells.most_common()))
    periodic = [atoms for atoms in frames if atoms.pbc.all()]
    if periodic:
        volumes = np.array([atoms.get_volume() for atoms in periodic])
        lengths = np.array([np.linalg.norm(atoms.cell.array, axis=1) for atoms in periodic])
        lines.append(f"                 3D-periodic cell lengths {_range(lengths.ravel(), 'Å')}, volumes {_range(volumes, 'Å³')}")
    label_lines, notes = _lines_of_labels(frames, numbers_of_atoms)
    lines += label_lines
    refused = []
    singular = [i for i, atoms in enumerate(frames) if atoms.pbc.any() and abs(np.linalg.det(atoms.cell.array)) < 1e-9]
    if singular:
        refused.append(f"{len(singular)} frames (first: {singular[0]}) are periodic in some directions but their cell is "
                       "singular: the neighbour list needs a full-rank cell (give the non-periodic vector a length)")  # fmt: skip
    if spec not in DATASETS:
        refused.append("data.test=standard (a file has no standard split): give a test file or a fraction (data.test=0.2)")
    if model is not None:
        from tpainn.train.checkpoint import load_trained

        known = load_trained(model).species
        missing = [s for s in species if s not in known]
        if missing:
            refused.append(f"autotuning from {model}: it does not know {', '.join(missing)} (its species: {', '.join(known)})")
        else:
            notes.append(f"autotuning from {model}: its species ({', '.join(known)}) cover these frames")
    lines.append("units:           eV, Å, eV/Å, eV/Å³ (converted from the file's own units by the reader)")
    lines += [f"refused:         {text}" for text in refused] or ["refused:         nothing"]
    lines += [f"note:            {text}" for text in notes]
    return "\n".join(lines)


def info(name: str) -> str:
    """Everything the registry knows about one dataset, for `tpainn data info NAME`."""
    dataset = get_dataset(name)
    lines = [
        f"name:            {dataset.name}",
        f"description:     {dataset.description}",
        f"format:          {dataset.format}",
        f"original units:  {dataset.original_units} (loaded as eV, Angstrom, eV/Angstrom)",
        f"frames:          {dataset.n_frames:,}",
        f"test split:      {dataset.test_split.describe(dataset.n_frames)}",
        f"licence:         {dataset.licence}",
        f"citation:        {dataset.citation}",
        f"source:          {dataset.source.repository} @ {dataset.source.revision}",
        f"location:        {location(dataset)}",
    ]
    if dataset.dispersion:
        lines.append(f"dispersion:      {dataset.dispersion} (in the labels; subtract with model.dispersion)")
    if dataset.files:
        lines.append(f"files ({len(dataset.files)}):")
        lines += [f"  {file.path}  sha256 {file.sha256}\n    {file.url}" for file in dataset.files]
    return "\n".join(lines)
