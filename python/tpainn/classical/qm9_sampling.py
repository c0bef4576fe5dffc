"""MMFF94 conformers of QM9 molecules for pretraining (`tpainn classical qm9`), with the force field of
tpainn.classical.mmff.

Sampling. Around each equilibrium geometry, Langevin MD (ase.md.langevin.Langevin) with MMFF94:
Maxwell-Boltzmann velocities at twice `temperature` (zero total momentum; equipartition halves
it), `WARMUP_STEPS` steps of warm-up, then one frame every `SAMPLE_INTERVAL_STEPS` steps. The
random numbers of molecule q come from numpy.random.default_rng([seed, q]), so a molecule's
frames do not depend on the order, the chunking or the worker that produced them (resumption and
`workers` give bit-identical files).

Molecules whose bonds cannot be determined or that MMFF94 cannot type are skipped and counted by
reason (mmff.SKIP_REASONS), never dropped silently.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
from ase import Atoms, units
from tqdm.auto import tqdm

from tpainn.arguments import integer, number
from tpainn.classical.frame_store import check_output, check_settings, create, stored_run
from tpainn.classical.mmff import (
    NONBONDED_THRESHOLD_A,
    SKIP_REASONS,
    MMFF94Calculator,
    MMFFSetupError,
    mmff_molecule,
    rdkit_version,
)
from tpainn.classical.units import KCAL_MOL_TO_EV
from tpainn.data.hdf5 import write_frames
from tpainn.data.labels import attach_labels

# Sampling protocol (stored in the metadata; a file written with another protocol is not resumed).
TIMESTEP_FS = 0.5
FRICTION_PER_FS = 0.01
WARMUP_STEPS = 200  # 100 fs = one friction time
# The MD starts at rest in the QM9 geometry, with no potential energy to speak of: momenta drawn
# at twice the temperature put the molecule near the target temperature within the warm-up
# (measured on 40 molecules at 500 K: ~530 K after the warm-up, ~505 K later; starting at 1× it
# is ~440 K after the warm-up and needs ~200 fs more).
INITIAL_TEMPERATURE_FACTOR = 2.0
SAMPLE_INTERVAL_STEPS = 40  # 20 fs between frames
# Molecules per HDF5 append: a killed run loses at most this many molecules' work (~40 s). Each
# append rewrites the metadata (with its per-frame qm9_index list) and HDF5 does not reuse the
# old copy's space: 1000 keeps that waste to ~7 MB (<10 %) for 20,000 molecules × 5 frames.
CHUNK_MOLECULES = 1000

# The name every QM9 file carries as its generator (that of the module it was first written by).
GENERATOR = "tpainn.classical.mmff.generate_qm9"


# ---------------------------------------------------------------------------------------- sampling


def sample_conformers(
    atoms: Atoms, conformers_per_molecule: int, temperature: float, seed: int, molecule=None
) -> list[Atoms]:
    """Langevin MD frames around `atoms` (an equilibrium geometry), labelled with MMFF94 energy/forces.

    The random numbers come from numpy.random.default_rng([seed, atoms.info["qm9_index"]]) (index
    0 when there is none). Raises MMFFSetupError when the molecule cannot be typed or the MD
    produces a non-finite value.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary

    qm9_index = int(atoms.info.get("qm9_index", 0))
    where = f"QM9 {qm9_index}" if "qm9_index" in atoms.info else atoms.get_chemical_formula()
    molecule = molecule if molecule is not None else mmff_molecule(atoms)
    rng = np.random.default_rng([seed, qm9_index])
    system = Atoms(numbers=atoms.numbers, positions=atoms.positions, pbc=False)
    system.calc = MMFF94Calculator(molecule)
    # Maxwell-Boltzmann momenta at INITIAL_TEMPERATURE_FACTOR × temperature, total momentum zero:
    # half the kinetic energy flows into the potential within a few vibrations (equipartition).
    masses = system.get_masses()[:, None]
    width = np.sqrt(masses * units.kB * INITIAL_TEMPERATURE_FACTOR * temperature)
    system.set_momenta(width * rng.standard_normal((len(system), 3)))
    Stationary(system)
    dynamics = Langevin(
        system,
        timestep=TIMESTEP_FS * units.fs,
        temperature_K=temperature,
        friction=FRICTION_PER_FS / units.fs,
        # fixcm=True (deprecated) biases the NVT sampling of small systems; the centre of mass is
        # left free instead: it drifts by a fraction of an Å over a trajectory, which no label sees.
        fixcm=False,
        rng=rng,
    )
    frames = []
    dynamics.run(WARMUP_STEPS)
    for _ in range(conformers_per_molecule):
        dynamics.run(SAMPLE_INTERVAL_STEPS)
        energy = system.get_potential_energy()
        forces = system.get_forces()
        if not (math.isfinite(energy) and np.all(np.isfinite(forces)) and np.all(np.isfinite(system.positions))):
            raise MMFFSetupError("md_nonfinite", f"{where}: the MD reached a non-finite energy, force or position")
        frame = Atoms(numbers=system.numbers, positions=system.positions.copy(), pbc=False)
        frame.info["qm9_index"] = qm9_index
        frames.append(attach_labels(frame, energy, forces.copy()))
    return frames


def _sample_task(task):
    """Worker entry: (qm9_index, frames) or (qm9_index, skip reason string)."""
    atoms, conformers_per_molecule, temperature, seed = task
    try:
        return atoms.info["qm9_index"], sample_conformers(atoms, conformers_per_molecule, temperature, seed)
    except MMFFSetupError as err:
        return atoms.info["qm9_index"], err.reason


# -------------------------------------------------------------------------------------- selection


def _qm9_ids() -> np.ndarray:
    """All QM9 ids in load order (ascending): the order standard_split's frame indices refer to."""
    from tpainn.data.formats.qm9 import qm9_table

    return qm9_table().index.to_numpy(dtype=np.int64)


def qm9_test_ids() -> np.ndarray:
    """QM9 ids of the standard test split (standard_split('qm9', 130831, seed=0)), sorted."""
    from tpainn.data.registry import standard_split

    ids = _qm9_ids()
    _, test = standard_split("qm9", len(ids), seed=0)
    return ids[test]


def select_qm9(n_molecules: int, seed: int = 0, exclude_test: bool = True) -> np.ndarray:
    """The QM9 ids generate_qm9 uses, in processing order.

    The first n_molecules of numpy.random.default_rng(seed).permutation over the candidates (QM9
    ids ascending, less the standard test split when exclude_test): a larger n extends a smaller one.
    """
    from tpainn.data.registry import standard_split

    ids = _qm9_ids()
    candidates = ids[standard_split("qm9", len(ids), seed=0)[0]] if exclude_test else ids
    if n_molecules > len(candidates):
        raise ValueError(
            f"n_molecules={n_molecules} exceeds the {len(candidates)} QM9 molecules available"
            + (" outside the standard test split" if exclude_test else "")
        )
    return candidates[np.random.default_rng(seed).permutation(len(candidates))[:n_molecules]]



# ------------------------------------------------------------------------------------- generation


def _settings(n_molecules, conformers_per_molecule, temperature, seed, exclude_test) -> dict:
    return {
        "generator": GENERATOR,
        "n_molecules": n_molecules,
        "conformers_per_molecule": conformers_per_molecule,
        "temperature_K": temperature,
        "seed": seed,
        "exclude_test": exclude_test,
        "timestep_fs": TIMESTEP_FS,
        "friction_per_fs": FRICTION_PER_FS,
        "warmup_steps": WARMUP_STEPS,
        "sample_interval_steps": SAMPLE_INTERVAL_STEPS,
        "initial_temperature_factor": INITIAL_TEMPERATURE_FACTOR,
        "bond_perception": "rdDetermineBonds.DetermineBonds(charge=0, useHueckel=True), checked against the QM9 SMILES",
        "force_field": "MMFF94",
        "rdkit_version": rdkit_version(),
        "nonbonded_threshold_A": NONBONDED_THRESHOLD_A,
    }


def _description() -> dict:
    """Metadata that documents the run but is not compared on resumption."""
    from tpainn.data.registry import provenance

    return {
        "force_field_software": f"RDKit {rdkit_version()} (rdForceFieldHelpers, mmffVariant='MMFF94', "
        "constant dielectric 1, no cutoff)",
        "thermostat": "ase.md.langevin.Langevin (fixcm=False) from the QM9 geometry; Maxwell-Boltzmann "
        "momenta at initial_temperature_factor × temperature_K, zero total momentum",
        "rng": "numpy.random.default_rng([seed, qm9_index]) per molecule",
        "selection": "first n_molecules of numpy.random.default_rng(seed).permutation over QM9 ids ascending, "
        "less the test ids of standard_split('qm9', 130831, seed=0) when exclude_test",
        "units": {
            "energy": "eV",
            "forces": "eV/Angstrom",
            "positions": "Angstrom",
            "temperature": "K",
            "timestep": "fs",
            "friction": "1/fs",
            "kcal_per_mol_in_eV": KCAL_MOL_TO_EV,
        },
        "energy_note": "MMFF94 steric energy, zero of energy per molecule is arbitrary (not comparable to U0)",
        "skip_reasons": SKIP_REASONS,
        "source": provenance("qm9"),
    }


def _check_arguments(output, n_molecules, conformers_per_molecule, temperature, seed, workers) -> Path:
    for name, value in (("n_molecules", n_molecules), ("conformers_per_molecule", conformers_per_molecule)):
        integer(name, value, 1)
    integer("seed", seed, 0)
    integer("workers", workers, 1)
    number("temperature", temperature)
    return check_output(output)


def _existing_run(output: Path, settings: dict) -> dict | None:
    """The metadata of a resumable file at `output`, None when there is no file; refuses a foreign one."""
    stored = stored_run(output, GENERATOR)
    if stored is None:
        return None
    metadata, n_frames = stored
    # n_molecules may grow: the selection is a prefix of one seeded permutation, so a larger run extends the file.
    if metadata.get("molecules_done", 0) > settings["n_molecules"]:
        raise ValueError(
            f"output {output}: already holds {metadata['molecules_done']} molecules, more than this run's "
            f"n_molecules={settings['n_molecules']}; a file can be extended to more molecules, not cut"
        )
    check_settings(output, metadata, {key: value for key, value in settings.items() if key != "n_molecules"})
    if len(metadata.get("qm9_index", [])) != n_frames:
        raise ValueError(
            f"output {output}: inconsistent metadata (qm9_index lists {len(metadata.get('qm9_index', []))} "
            f"frames, the file holds {n_frames})"
        )
    return metadata


@contextlib.contextmanager
def _mapper(workers: int):
    """An ordered map over sampling tasks: in this process, or in a pool of `workers` processes."""
    if workers == 1:
        yield lambda tasks: map(_sample_task, tasks)
        return
    # fork is cheap and needs no re-import; elsewhere (macOS, Windows) spawn re-imports tpainn.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers) as pool:
        yield lambda tasks: pool.imap(_sample_task, tasks, chunksize=2)


def generate_qm9(
    output: str | os.PathLike,
    n_molecules: int = 20000,
    conformers_per_molecule: int = 5,
    temperature: float = 500.0,
    seed: int = 0,
    exclude_test: bool = True,
    progress: bool = True,
    workers: int = 1,
) -> dict:
    """MMFF94 conformers of QM9 molecules written to the HDF5 frame file `output`; returns a report.

    Selects n_molecules QM9 molecules (select_qm9: seeded, outside the standard test split when
    exclude_test), runs Langevin MD at `temperature` (K) with MMFF94 around each equilibrium
    geometry and stores conformers_per_molecule frames per molecule (positions Å, energy eV,
    forces eV/Å; no cell, pbc False). Frames are appended every CHUNK_MOLECULES molecules; an
    existing file written with the same settings is continued after the molecules it holds (or
    extended, when n_molecules is larger than before), one with other settings is refused. `workers` > 1 samples in that many processes (same frames).

    The report (also in the file's metadata) counts the molecules done, used and skipped by reason
    (SKIP_REASONS), with the skipped QM9 ids. Bad arguments raise ValueError naming them.
    """
    output = _check_arguments(output, n_molecules, conformers_per_molecule, temperature, seed, workers)
    n_molecules, conformers_per_molecule, seed = int(n_molecules), int(conformers_per_molecule), int(seed)
    temperature, exclude_test = float(temperature), bool(exclude_test)
    selection = select_qm9(n_molecules, seed, exclude_test)
    settings = _settings(n_molecules, conformers_per_molecule, temperature, seed, exclude_test)

    metadata = _existing_run(output, settings)
    if metadata is None:
        metadata = {**settings, **_description(), "molecules_done": 0, "molecules_used": 0, "qm9_index": [],
                    "skipped": {}, "skip_counts": {}, "complete": False}  # fmt: skip
        create(output, metadata)
    metadata["n_molecules"] = n_molecules
    metadata["complete"] = metadata["molecules_done"] == n_molecules
    done_before = int(metadata["molecules_done"])
    frames_before = len(metadata["qm9_index"])
    start = time.perf_counter()
    _sample_molecules(output, selection, metadata, (conformers_per_molecule, temperature, seed), workers, progress)
    seconds = time.perf_counter() - start
    done_now = int(metadata["molecules_done"]) - done_before
    return {
        "output": str(output),
        "molecules_selected": n_molecules,
        "molecules_done": int(metadata["molecules_done"]),
        "molecules_used": int(metadata["molecules_used"]),
        "molecules_skipped": sum(metadata["skip_counts"].values()),
        "skipped": dict(metadata["skip_counts"]),
        "skipped_qm9_index": {reason: list(ids) for reason, ids in metadata["skipped"].items()},
        "frames": len(metadata["qm9_index"]),
        "frames_written_this_run": len(metadata["qm9_index"]) - frames_before,
        "resumed_after_molecules": done_before,
        "complete": bool(metadata["complete"]),
        "seconds": seconds,
        "seconds_per_molecule": seconds / done_now if done_now else None,
        "workers": workers,
    }


def _sample_molecules(output: Path, selection: np.ndarray, metadata: dict, sampling: tuple, workers: int,
                      progress: bool) -> None:  # fmt: skip
    """Samples the selected molecules after the metadata's molecules_done, appending every CHUNK_MOLECULES
    molecules' frames with the metadata updated; `sampling` is (conformers_per_molecule, temperature, seed)."""
    from tpainn.data.formats.qm9 import read_qm9

    n_molecules = len(selection)
    done_before = int(metadata["molecules_done"])
    with _mapper(workers) as sample_all, tqdm(
        total=n_molecules, initial=done_before, disable=not progress, unit="mol", desc="MMFF94 QM9", smoothing=0.05
    ) as bar:
        for chunk_start in range(done_before, n_molecules, CHUNK_MOLECULES):
            chunk_ids = selection[chunk_start : chunk_start + CHUNK_MOLECULES]
            tasks = [(atoms, *sampling) for atoms in read_qm9(chunk_ids)]
            frames = []
            for qm9_index, result in sample_all(tasks):
                if isinstance(result, str):
                    metadata["skipped"].setdefault(result, []).append(int(qm9_index))
                    metadata["skip_counts"][result] = len(metadata["skipped"][result])
                else:
                    frames += result
                    metadata["qm9_index"] += [int(qm9_index)] * len(result)
                    metadata["molecules_used"] += 1
                bar.update(1)
                bar.set_postfix(skipped=sum(metadata["skip_counts"].values()), refresh=False)
            metadata["molecules_done"] = chunk_start + len(chunk_ids)
            metadata["complete"] = metadata["molecules_done"] == n_molecules
            write_frames(output, frames, metadata=metadata, append=True)


def report_json(report: dict) -> str:
    """A report as indented JSON (for the CLI)."""
    return json.dumps(report, indent=2, sort_keys=True)
