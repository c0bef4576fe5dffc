"""Write "the user's file" of the walk-through: DFT water frames in extended XYZ with the user's own label keys.

The frames come from the DeePMD-kit water example (the `water-deepmd` registry dataset, read from
$TPAINN_DATA_DIR or downloaded and checksum-verified): its training systems data_0-2 become the user's pool
(`water.xyz`) and data_3 their separate test file (`water-test.xyz`). The labels are written under the keys
`dft_energy` (eV) and `dft_forces` (eV/Å), as another code might name them, so that the walk-through shows
--energy-key / --forces-key. Nothing here is committed: the script writes the files wherever it is told.

    python examples/own-data/make_user_file.py -o my-data [--n-pool 320] [--n-test 80]
"""

import argparse
from pathlib import Path

import ase.io
from ase import Atoms

from tpainn.data import load_dataset, standard_split


def user_frame(atoms: Atoms) -> Atoms:
    """The frame as the user's code wrote it: no calculator, labels under its own keys."""
    copy = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    copy.info["dft_energy"] = float(atoms.get_potential_energy())
    copy.arrays["dft_forces"] = atoms.get_forces().copy()
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", "-o", type=Path, required=True, help="folder for water.xyz and water-test.xyz")
    parser.add_argument("--n-pool", type=int, default=320, help="frames of the pool file (the first of data_0-2)")
    parser.add_argument("--n-test", type=int, default=80, help="frames of the test file (the first of data_3)")
    args = parser.parse_args()
    frames = load_dataset("water-deepmd")
    pool, test = standard_split("water-deepmd", len(frames))
    if not (1 <= args.n_pool <= len(pool) and 1 <= args.n_test <= len(test)):
        parser.error(f"--n-pool must lie in 1..{len(pool)} and --n-test in 1..{len(test)}")
    args.output.mkdir(parents=True, exist_ok=True)
    for name, indices in (("water.xyz", pool[: args.n_pool]), ("water-test.xyz", test[: args.n_test])):
        ase.io.write(args.output / name, [user_frame(frames[int(i)]) for i in indices], format="extxyz")
        print(f"{args.output / name}: {len(indices)} frames")


if __name__ == "__main__":
    main()
