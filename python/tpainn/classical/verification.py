"""`tpainn classical verify`: stored labels of a classical data file recomputed by an independent instance of its
force field, and the forces (and water's stress) compared with central differences of that force field's energy.

Water (`tpainn classical water`, and its short contacts): LAMMPS is rebuilt from the stored positions and cell
alone (molecules from the O,H,H order, force field from the file's metadata); `run 0` gives the energy, forces
and virial stress to compare with the stored ones; for `fd_atoms` atoms (spread over the frame, O and H) each
force component is compared with −(E(x+h) − E(x−h)) / 2h, h = fd_step Å, and the stress with the central
difference of E under ±fd_strain normal strain.

QM9 (`tpainn classical qm9`): the frame's QM9 molecule (metadata qm9_index) is typed again by mmff_molecule
from its equilibrium geometry, and a fresh MMFF94 force field is built on the stored positions; every force
component is compared with the central difference of the MMFF94 energy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from tpainn.arguments import integer, number
from tpainn.classical.mmff import mmff_force_field, mmff_molecule
from tpainn.classical.qm9_sampling import GENERATOR as QM9_GENERATOR
from tpainn.classical.units import KCAL_MOL_TO_EV
from tpainn.classical.water_lammps import WaterLabeller, evaluate, set_positions, virial_stress
from tpainn.classical.water_sampling import GENERATOR as WATER_GENERATOR
from tpainn.data.hdf5 import H5Frames
from tpainn.data.labels import labels_of, stress_of

WATER_TOLERANCES = {
    # LAMMPS re-evaluating a stored configuration: only summation order and the position wrap differ.
    "energy_max_rel": 1e-8,
    "forces_max_abs_eV_per_A": 1e-6,
    # Central differences of the energy vs the stored forces: limited by PPPM (ik-differentiated forces
    # are not exactly −∇E_PPPM) and by round-off; a kcal/mol-vs-eV or sign error is ~0.1–10 eV/Å.
    "fd_max_abs_eV_per_A": 2e-3,
    # The stored stress against LAMMPS' virial of the rebuilt configuration (summation order only), and
    # against central differences of the energy under ±h normal strain: PPPM's analytic virial is not
    # exactly the strain derivative of its energy (~1e-6 relative); a unit or sign error is ~1e-3 eV/Å³.
    "stress_max_abs_eV_per_A3": 1e-9,
    "fd_stress_max_abs_eV_per_A3": 1e-6,
}


def verify_frames(path: str | os.PathLike, indices: Sequence[int], **options) -> dict:
    """Recompute stored frames of a classical data file (water or QM9) and report the deviations.

    Negative indices count from the end. `options` go to the file's own check (water: fd_atoms, fd_step,
    fd_strain; QM9: fd_step, energy_tol, force_tol, fd_tol). The report's `passed` says whether every
    deviation is within the tolerances (`tolerances`).
    """
    frames = H5Frames(path)
    try:
        generator, n_frames = frames.metadata.get("generator", ""), len(frames)
        bad = [i for i in indices if not -n_frames <= i < n_frames]
        if bad:
            raise ValueError(f"{path}: frame index {bad[0]} out of range ({n_frames} frames)")
        indices = [int(i) % n_frames for i in indices]
        if generator == WATER_GENERATOR:
            return _verify_water(frames, path, indices, **options)
        if generator == QM9_GENERATOR:
            return _verify_qm9(frames, path, indices, **options)
        raise ValueError(f"{path}: not written by `tpainn classical water` or `qm9` (generator {generator!r})")
    finally:
        frames.close()


def central_difference(energy_at: Callable[[float], float], step: float) -> float:
    """dE/dλ at λ = 0 as (E(+step) − E(−step)) / 2·step, E(λ) the energy of the configuration displaced by λ."""
    return (energy_at(step) - energy_at(-step)) / (2.0 * step)


# ---------------------------------------------------------------------------------------------- water


def _verify_water(frames: H5Frames, path, indices: list[int], fd_atoms: int = 2, fd_step: float = 1e-4,
                  fd_strain: float = 1e-5) -> dict:  # fmt: skip
    """Max abs deviations: energy_max_abs_eV, energy_max_rel, forces_max_abs_eV_per_A, fd_max_abs_eV_per_A (over
    fd_components components), stress_max_abs_eV_per_A3, fd_stress_max_abs_eV_per_A3, force_rms_eV_per_A (scale)."""
    fd_settings = (integer("fd_atoms", fd_atoms, 0), number("fd_step", fd_step), number("fd_strain", fd_strain))
    labeller = WaterLabeller(frames.metadata["force_field"])
    result = {"frames": indices, "energy_max_abs_eV": 0.0, "energy_max_rel": 0.0, "forces_max_abs_eV_per_A": 0.0,
              "fd_max_abs_eV_per_A": 0.0, "fd_components": 0, "force_rms_eV_per_A": 0.0,
              "stress_max_abs_eV_per_A3": 0.0, "fd_stress_max_abs_eV_per_A3": 0.0, "seconds": 0.0}  # fmt: skip
    start = time.perf_counter()
    squares, count = 0.0, 0
    try:
        for index in indices:
            atoms, where = frames[index], f"{path} frame {index}"
            energy, forces = labels_of(atoms, where)
            if forces is None:
                raise ValueError(f"{where}: no forces stored")
            lmp_energy, f_abs, fd_abs, n_fd, lmp_stress, fd_stress = _verify_water_frame(atoms, labeller, forces,
                                                                                         fd_settings, where)  # fmt: skip
            e_abs = abs(lmp_energy - energy)
            stress = stress_of(atoms, where)
            if stress is not None:
                _raise(result, "stress_max_abs_eV_per_A3", float(np.abs(lmp_stress - stress).max()))
                _raise(result, "fd_stress_max_abs_eV_per_A3", float(np.abs(fd_stress - np.diag(stress)).max()))
            _raise(result, "energy_max_abs_eV", e_abs)
            _raise(result, "energy_max_rel", e_abs / max(abs(energy), 1e-300))
            _raise(result, "forces_max_abs_eV_per_A", f_abs)
            _raise(result, "fd_max_abs_eV_per_A", fd_abs)
            result["fd_components"] += n_fd
            squares += float((forces**2).sum())
            count += forces.size
    finally:
        labeller.close()
    result["force_rms_eV_per_A"] = math.sqrt(squares / count) if count else 0.0
    result["seconds"] = time.perf_counter() - start
    result["tolerances"] = dict(WATER_TOLERANCES)
    result["passed"] = all(result[key] <= tol for key, tol in WATER_TOLERANCES.items())
    return result


def _raise(result: dict, key: str, value: float) -> None:
    result[key] = max(result[key], value)


def _verify_water_frame(atoms, labeller: WaterLabeller, forces: np.ndarray, fd_settings: tuple, where: str):
    """(LAMMPS energy, max force deviation, max finite-difference force deviation, components compared,
    LAMMPS stress, finite-difference diagonal stress) of one frame."""
    fd_atoms, fd_step, fd_strain = fd_settings
    symbols = atoms.get_chemical_symbols()
    if len(symbols) % 3 or symbols != ["O", "H", "H"] * (len(symbols) // 3):
        raise ValueError(f"{where}: atoms are not O, H, H per molecule")
    cell = atoms.cell.array
    if np.any(np.abs(cell - np.diag(np.diag(cell))) > 0) or not atoms.pbc.all():
        raise ValueError(f"{where}: expected a periodic orthorhombic cell")
    lengths, positions = np.diag(cell).copy(), atoms.positions.copy()
    lmp = labeller.instance(positions, lengths)
    set_positions(lmp, positions)
    energy, lmp_forces = evaluate(lmp)
    lmp_stress = virial_stress(lmp)
    fd_abs, n_fd = 0.0, 0
    chosen = np.unique(np.round(np.linspace(0, len(atoms) - 1, fd_atoms)).astype(int)) if fd_atoms else []
    for a in chosen:
        for c in range(3):
            fd_force = -central_difference(lambda h: _displaced_energy(lmp, positions, a, c, h), fd_step)
            fd_abs = max(fd_abs, abs(fd_force - forces[a, c]))
            n_fd += 1
    set_positions(lmp, positions)
    volume = float(np.prod(lengths))
    fd_stress = np.array([central_difference(lambda e: _strained_energy(lmp, lengths, c, e), fd_strain) / volume
                          for c in range(3)])  # fmt: skip
    return energy, float(np.abs(lmp_forces - forces).max()), fd_abs, n_fd, lmp_stress, fd_stress


def _displaced_energy(lmp, positions: np.ndarray, atom: int, axis: int, h: float) -> float:
    displaced = positions.copy()
    displaced[atom, axis] += h
    set_positions(lmp, displaced)
    return evaluate(lmp)[0]


def _strained_energy(lmp, lengths: np.ndarray, axis: int, strain: float) -> float:
    """The energy (eV) under a normal strain along `axis`: `change_box ... remap` scales the box and every atom
    affinely, as the strain in the stress definition does; the box is restored after."""
    name = "xyz"[axis]
    lmp.command(f"change_box all {name} final 0.0 {lengths[axis] * (1.0 + strain):.17g} remap units box")
    energy = evaluate(lmp)[0]
    lmp.command(f"change_box all {name} final 0.0 {lengths[axis]:.17g} remap units box")
    return energy


# ------------------------------------------------------------------------------------------------ QM9


def _verify_qm9(frames: H5Frames, path, indices: list[int], fd_step: float = 1e-4, energy_tol: float = 1e-6,
                force_tol: float = 1e-6, fd_tol: float = 1e-4) -> dict:  # fmt: skip
    """Per frame and as maxima: |E_stored − E_rdkit| (eV), max |F_stored − F_rdkit| and max |F_rdkit − F_fd|
    (eV/Å); `passed` when each is within energy_tol, force_tol, fd_tol and no frame is periodic."""
    from tpainn.data.formats.qm9 import read_qm9

    fd_step = number("fd_step", fd_step)
    qm9_of_frame = frames.metadata.get("qm9_index")
    if qm9_of_frame is None or len(qm9_of_frame) != len(frames):
        raise ValueError(f"{path}: no per-frame qm9_index in the metadata: not a generate_qm9 file")
    results = []
    for index in indices:
        frame, qm9_index = frames[index], int(qm9_of_frame[index])
        stored_energy, stored_forces = labels_of(frame, f"{path} frame {index}")
        (reference,) = read_qm9([qm9_index])
        if not np.array_equal(reference.numbers, frame.numbers):
            raise ValueError(f"frame {index}: its elements do not match QM9 {qm9_index}")
        energy, forces, fd_forces = _mmff_labels(reference, frame.positions, fd_step)
        results.append({
            "frame": index,
            "qm9_index": qm9_index,
            "energy_error_eV": abs(stored_energy - energy),
            "force_error_eV_per_A": float(np.max(np.abs(stored_forces - forces))),
            "fd_error_eV_per_A": float(np.max(np.abs(forces - fd_forces))),
            "max_force_eV_per_A": float(np.max(np.abs(forces))),
            "periodic": bool(frame.pbc.any() or np.any(frame.cell.array != 0)),
        })  # fmt: skip
    keys = ("energy_error_eV", "force_error_eV_per_A", "fd_error_eV_per_A")
    worst = {key: max((result[key] for result in results), default=0.0) for key in keys}
    tolerances = {"energy_eV": energy_tol, "force_eV_per_A": force_tol, "fd_eV_per_A": fd_tol}
    within = all(worst[key] <= tol for key, tol in zip(keys, tolerances.values()))
    return {
        "frames": results,
        "max_energy_error_eV": worst["energy_error_eV"],
        "max_force_error_eV_per_A": worst["force_error_eV_per_A"],
        "max_fd_error_eV_per_A": worst["fd_error_eV_per_A"],
        "fd_step_A": fd_step,
        "tolerances": tolerances,
        "passed": within and not any(result["periodic"] for result in results),
    }


def _mmff_labels(reference, positions: np.ndarray, fd_step: float) -> tuple[float, np.ndarray, np.ndarray]:
    """MMFF94 energy (eV), forces and central-difference forces (eV/Å) at `positions` of the molecule typed from
    its QM9 geometry `reference`."""
    typed = mmff_molecule(reference)  # imports RDKit, or says how to install it
    from rdkit import Chem
    from rdkit.Geometry import Point3D

    mol = Chem.Mol(typed)
    conformer = mol.GetConformer()
    for i, (x, y, z) in enumerate(positions.tolist()):
        conformer.SetAtomPosition(i, Point3D(x, y, z))
    force_field = mmff_force_field(mol)
    energy = force_field.CalcEnergy() * KCAL_MOL_TO_EV
    forces = -np.asarray(force_field.CalcGrad()).reshape(-1, 3) * KCAL_MOL_TO_EV
    coordinates = positions.ravel()

    def displaced_energy(k: int, h: float) -> float:
        displaced = coordinates.copy()
        displaced[k] += h
        return force_field.CalcEnergy(displaced.tolist()) * KCAL_MOL_TO_EV

    fd_forces = [-central_difference(lambda h: displaced_energy(k, h), fd_step) for k in range(len(coordinates))]
    return energy, forces, np.reshape(fd_forces, (-1, 3))
