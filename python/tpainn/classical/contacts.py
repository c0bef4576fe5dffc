"""Short-contact frames: classical water frames in which a few molecules are turned, rigidly about their
oxygen, until one of their hydrogens sits 1.0–1.6 Å from a hydrogen of another molecule.

Why: liquid water has no intermolecular H–H pair closer than ≈ 1.5 Å, and neither has any frame
sampled from it (SPC/Fw 1.53 Å, q-TIP4P/F 1.59 Å, the revPBE0-D3 set 1.51 Å). A network trained on
such frames has never seen the region, and MD finds the hole it leaves: PaiNN models trained on either
source formed cyclic "double-donor" dimers (O–O 2.5–2.7 Å, each molecule donating to the other, H–H
1.06–1.15 Å) for most molecules of the box. These frames show the classical force field's answer
there (the H⁺–H⁺ Coulomb repulsion of the two molecules' sites), labelled by the same LAMMPS
set-up as the sampled frames, so that pretraining — and replay during autotuning — teaches the wall.

`add_short_contacts()` copies a file written by `generate_water()` (water_sampling) and replaces a chosen fraction
of its frames by their turned variants: frame i stays a frame of the same state (T, ρ), so `frame_states()`
and `verify_frames()` (verification) work on the output as on the source. Which frames were replaced, the distance
window and the seed are stored in the metadata (`short_contacts`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
from ase import Atoms

from tpainn.arguments import integer
from tpainn.classical.frame_store import require_generator, write_complete
from tpainn.classical.water_lammps import WaterLabeller
from tpainn.classical.water_model import minimum_image, random_rotation, wrap
from tpainn.classical.water_sampling import GENERATOR
from tpainn.data.errors import DataError
from tpainn.data.hdf5 import H5Frames
from tpainn.data.labels import attach_labels
from tpainn.data.dataset_files import sha256_of

HH_WINDOW_A = (1.0, 1.6)  # the intermolecular H–H distance a turned molecule is given
MIN_OH_A = 1.4  # no intermolecular O–H closer than this in a turned frame (a proton transfer is no contact)
TOLERANCE_A = 0.05  # a target distance d is met within ±TOLERANCE_A
TURN_TRIES = 20_000


def turn_molecule(positions: np.ndarray, lengths: np.ndarray, molecule: int, target: float, rng) -> np.ndarray | None:
    """Positions with `molecule` (O, H, H rows 3m..3m+2) rotated about its O so that its closest
    intermolecular H–H distance is `target` ± TOLERANCE_A and no intermolecular O–H is below MIN_OH_A;
    None if no random rotation in TURN_TRIES does it."""
    n_molecules = len(positions) // 3
    own = slice(3 * molecule, 3 * molecule + 3)
    oxygen = positions[3 * molecule]
    arms = minimum_image(positions[own] - oxygen, lengths)  # O at 0, the H's unwrapped around it
    others = np.delete(np.arange(3 * n_molecules), np.arange(3 * molecule, 3 * molecule + 3))
    other_o = others[others % 3 == 0]
    other_h = others[others % 3 != 0]
    to_o = minimum_image(positions[other_o] - oxygen, lengths)
    to_h = minimum_image(positions[other_h] - oxygen, lengths)
    if np.linalg.norm(to_h, axis=1).min() < MIN_OH_A:  # the unturned O already has a close H
        return None
    for _ in range(TURN_TRIES):
        hydrogens = arms[1:] @ random_rotation(rng).T
        hh = np.linalg.norm(hydrogens[:, None, :] - to_h[None, :, :], axis=-1).min()
        oh = np.linalg.norm(hydrogens[:, None, :] - to_o[None, :, :], axis=-1).min()
        if abs(hh - target) <= TOLERANCE_A and oh >= MIN_OH_A:
            turned = positions.copy()
            turned[3 * molecule + 1 : 3 * molecule + 3] = oxygen + hydrogens
            return wrap(turned, lengths)
    return None


def short_contact_positions(atoms: Atoms, n_contacts: int, rng, window=HH_WINDOW_A) -> tuple[np.ndarray, list[float]]:
    """Positions of `atoms` (water, O,H,H per molecule, orthorhombic cell) with `n_contacts` different
    molecules turned, each to a target H–H distance drawn uniformly from `window` (Å); the targets met."""
    lengths = np.diag(atoms.cell.array).copy()
    positions = atoms.positions.copy()
    candidates = list(rng.permutation(len(atoms) // 3))
    met: list[float] = []
    while len(met) < n_contacts and candidates:
        target = float(rng.uniform(*window))
        turned = turn_molecule(positions, lengths, int(candidates.pop()), target, rng)
        if turned is not None:
            positions = turned
            met.append(target)
    if len(met) < n_contacts:
        raise RuntimeError(f"could turn only {len(met)} of {n_contacts} molecules into short contacts")
    return positions, met


def add_short_contacts(source, output, fraction: float = 0.25, contacts_per_frame: int = 4, seed: int = 0,
                       window=HH_WINDOW_A, progress: bool = True) -> dict:  # fmt: skip
    """Write `output`: the frames of `source` (a `tpainn classical water` file), a `fraction` of them
    (chosen with `seed`) replaced by variants with `contacts_per_frame` turned molecules, relabelled.
    Returns the `short_contacts` metadata record. The file appears only when complete; an existing
    `output` made from the same source with the same settings is kept (ValueError if made otherwise)."""
    source, output = Path(source), Path(output)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction: {fraction} is not in (0, 1]")
    integer("contacts_per_frame", contacts_per_frame, 1)
    if not window[0] < window[1]:
        raise ValueError(f"window: {window} is not (shortest, longest) in Å")
    if output.resolve() == source.resolve():
        raise ValueError(f"output: {output} is the source file; write to another file")
    frames = H5Frames(source)
    metadata = copy.deepcopy(frames.metadata)
    require_generator(source, metadata, GENERATOR, "classical water")
    if "short_contacts" in metadata:
        raise ValueError(f"{source}: already holds short-contact frames")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5C]))
    chosen = np.sort(rng.choice(len(frames), size=max(1, round(fraction * len(frames))), replace=False))
    record = {
        "source": str(source),
        "source_sha256": sha256_of(source),
        "frames": [int(i) for i in chosen],
        "fraction": fraction,
        "contacts_per_frame": contacts_per_frame,
        "hh_window_A": list(window),
        "min_intermolecular_OH_A": MIN_OH_A,
        "seed": seed,
        "method": "molecules turned rigidly about their O by uniform random rotations until the closest "
        f"intermolecular H–H distance meets a target drawn uniformly from the window (±{TOLERANCE_A} Å); "
        "energy, forces and stress relabelled by LAMMPS with the source's force field",
    }
    if output.exists():
        frames.close()
        return _existing(output, record)
    labeller = WaterLabeller(metadata["force_field"])
    out, turned = [], set(record["frames"])
    from tqdm.auto import tqdm

    try:
        for index in tqdm(range(len(frames)), desc="short contacts", unit="frame", disable=not progress):
            atoms = frames[index]
            if index in turned:
                frame_rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5C, int(index)]))
                atoms = _turned(atoms, contacts_per_frame, frame_rng, window, labeller, f"{source} frame {index}")
            out.append(atoms)
    finally:
        labeller.close()
        frames.close()
    metadata["short_contacts"] = record
    write_complete(output, out, metadata)
    return record


def _turned(atoms: Atoms, contacts_per_frame: int, rng, window, labeller: WaterLabeller, where: str) -> Atoms:
    """The frame with `contacts_per_frame` molecules turned into short contacts, relabelled."""
    try:
        positions, _ = short_contact_positions(atoms, contacts_per_frame, rng, window)
    except RuntimeError as err:
        raise ValueError(f"{where}: {err}") from err
    labels = labeller(positions, np.diag(atoms.cell.array).copy())
    return attach_labels(Atoms(atoms.symbols, positions=positions, cell=atoms.cell, pbc=True), *labels)


def _existing(output: Path, record: dict) -> dict:
    """The record of an existing output if it was made with exactly these settings."""
    try:
        stored = H5Frames(output).metadata.get("short_contacts")
    except DataError as err:
        raise ValueError(f"output: {err}") from err
    if stored != json.loads(json.dumps(record)):
        raise ValueError(f"output: {output} exists and was not made from this source with these settings; "
                         "remove it or write to another file")  # fmt: skip
    return stored
