"""The dataset registry: what each reference dataset is, where its files come from, and its standard split.

No data ships with tpainn: tpainn.data.dataset_files finds (or downloads) a dataset's files, and
tpainn.data.frames reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.units import Hartree

from tpainn.data.errors import DataError
from tpainn.data.formats.qm9 import QM9_ATOM_U0_HARTREE


@dataclass(frozen=True)
class DatasetFile:
    path: str  # relative to the dataset's folder
    url: str
    sha256: str


@dataclass(frozen=True)
class Source:
    repository: str
    revision: str  # the commit, or the package version, the files are pinned to


@dataclass(frozen=True)
class LastFramesSplit:
    """Test set = the last `n_test` frames in load order; the rest is the train/validation pool."""

    n_test: int

    def test_indices(self, n_frames: int, seed: int) -> np.ndarray:
        return np.arange(n_frames - self.n_test, n_frames)

    def describe(self, n_frames: int) -> str:
        return f"frames {n_frames - self.n_test}-{n_frames - 1} (the last {self.n_test} in load order); seed unused"


@dataclass(frozen=True)
class SeededPermutationSplit:
    """Test set = the first round(test_fraction * n) of numpy.random.default_rng(seed).permutation(n)."""

    test_fraction: float

    def test_indices(self, n_frames: int, seed: int) -> np.ndarray:
        n_test = round(self.test_fraction * n_frames)
        return np.sort(np.random.default_rng(seed).permutation(n_frames)[:n_test])

    def describe(self, n_frames: int) -> str:
        n_test = round(self.test_fraction * n_frames)
        return (
            f"{n_test} frames: the first {self.test_fraction:.0%} of numpy.random.default_rng(seed).permutation"
            f"({n_frames}) over load order (seed 0 is the standard); keep them out of pretraining too"
        )


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    format: str  # a tpainn.data.readers format, or "qm9pack"
    original_units: str
    n_frames: int
    licence: str
    citation: str
    source: Source
    files: tuple[DatasetFile, ...]
    read_from: str  # the path, relative to the dataset folder, that the reader is given
    test_split: LastFramesSplit | SeededPermutationSplit
    # Free-atom energies (eV) at the dataset's level of theory, where the dataset defines them: the prior
    # reference energy of an element that a small training subset happens not to contain.
    atom_energies_eV: dict[str, float] | None = None
    # The D3 dispersion the labels include, as a tpainn.dispersion spec ("d3(zero):revpbe0:30"), where the
    # source documents it: `model.dispersion` must then name the same damping and functional.
    dispersion: str | None = None


_MARSALEK_COMMIT = "35eca4a1e98fa7e6b7c3afc66ebf791f52255301"
_DEEPMD_COMMIT = "bc902daf747d93c5d7314338d287fd2dd0a7e32c"
_DEEPMD_URL = f"https://raw.githubusercontent.com/deepmodeling/deepmd-kit/{_DEEPMD_COMMIT}/examples/water/data"

# sha256 of each file of the four DeePMD water systems, computed from the files at _DEEPMD_COMMIT.
_DEEPMD_SHA256 = {
    "data_0/set.000/box.npy": "88376dc931e272a3569cabcab0f1ee4320168c73ee183ae60f7086b473fc719d",
    "data_0/set.000/coord.npy": "58554d0ef240b54a242a8163e112d673872f5be5198c86c4eb8d5f39602ff645",
    "data_0/set.000/energy.npy": "920c4628018c12a4d38c22aef7f41ca483a02747319a42dd4e4f703e2a9f70c8",
    "data_0/set.000/force.npy": "fae9be94125902c089720416a4cea521380a415709ead1f9134b7f64f46f1e58",
    "data_0/type.raw": "c0287bfae960bdddafa96841b59c29ac9b7548ddac0b5bebd30fb502563d0507",
    "data_0/type_map.raw": "2af2202bdb95741681b308b05c1dae7837141fe32b10d14db2a4c0ea9103e55b",
    "data_1/set.000/box.npy": "88376dc931e272a3569cabcab0f1ee4320168c73ee183ae60f7086b473fc719d",
    "data_1/set.000/coord.npy": "b9cf07c179a0f975a3b8607f439602e9a78b9bec3b02aa8afe812d716563f380",
    "data_1/set.000/energy.npy": "d3b407e3b67f953fe496a62e1f7dc84d07a8bfcfb748bfaafbca435809012b93",
    "data_1/set.000/force.npy": "7a3099c380a57379574e5b854f43589e736b785d6f747c68d093a45b3f85b542",
    "data_1/set.001/box.npy": "88376dc931e272a3569cabcab0f1ee4320168c73ee183ae60f7086b473fc719d",
    "data_1/set.001/coord.npy": "f4581f0f4aedb910b8580157a9dca622c5cd3b71428f5924bdeed0192ab50dd2",
    "data_1/set.001/energy.npy": "d4634357a81940e5aca110cd5285b3b72503f4ae13bbfffbe5791c145748a4bf",
    "data_1/set.001/force.npy": "19313e524e1900eaf721ec7be9f2a48b854301aefc884f6ca4815824aa4b6a77",
    "data_1/type.raw": "c0287bfae960bdddafa96841b59c29ac9b7548ddac0b5bebd30fb502563d0507",
    "data_1/type_map.raw": "2af2202bdb95741681b308b05c1dae7837141fe32b10d14db2a4c0ea9103e55b",
    "data_2/set.000/box.npy": "88376dc931e272a3569cabcab0f1ee4320168c73ee183ae60f7086b473fc719d",
    "data_2/set.000/coord.npy": "c9fd13c05992f98efe1d78ae0b70f0565820aceeaf0d25f17b02a0f29a0b84c8",
    "data_2/set.000/energy.npy": "a38b8cd8e897ded6ac3a6d88559358c634575bede2ae930bc2557b1047059b49",
    "data_2/set.000/force.npy": "fda708ae95c73edca449709c2adfdf494acc6379323d92f865b1698c3830634f",
    "data_2/type.raw": "c0287bfae960bdddafa96841b59c29ac9b7548ddac0b5bebd30fb502563d0507",
    "data_2/type_map.raw": "2af2202bdb95741681b308b05c1dae7837141fe32b10d14db2a4c0ea9103e55b",
    "data_3/set.000/box.npy": "88376dc931e272a3569cabcab0f1ee4320168c73ee183ae60f7086b473fc719d",
    "data_3/set.000/coord.npy": "f9169bb378e0a4641c65171ccedd47d7b3ac115bc8e1ac8c72be1ce81959e793",
    "data_3/set.000/energy.npy": "8e7289bd03566f737f998e26fcdc3e838482e7bb80356939567b3a920d23f1c8",
    "data_3/set.000/force.npy": "7abe876297cd5c989289760435c2258c3ad7be94bb6ed40640efbefb55b76a68",
    "data_3/type.raw": "c0287bfae960bdddafa96841b59c29ac9b7548ddac0b5bebd30fb502563d0507",
    "data_3/type_map.raw": "2af2202bdb95741681b308b05c1dae7837141fe32b10d14db2a4c0ea9103e55b",
}

DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        Dataset(
            name="water-revpbe0-d3",
            description=(
                "Liquid water, 64 H2O in a 12.42 Å cubic box, revPBE0-D3 (CP2K); positions unwrapped. "
                "The main DFT set for autotuning."
            ),
            format="n2p2",
            original_units="bohr, Hartree, Hartree/bohr",
            n_frames=111,
            licence="CC-BY-SA-4.0",
            citation=(
                "C. Schran, K. Brezina, O. Marsalek, Committee neural network potentials control generalization "
                "errors and enable active learning, J. Chem. Phys. 153, 104105 (2020), doi:10.1063/5.0016004"
            ),
            source=Source("https://github.com/MarsalekGroup/paper-c-nnp", _MARSALEK_COMMIT),
            files=(
                DatasetFile(
                    "input.data",
                    "https://raw.githubusercontent.com/MarsalekGroup/paper-c-nnp/"
                    f"{_MARSALEK_COMMIT}/generation-1/training-set/input.data",
                    "8f5bded8fdd5b9e321b71f8da52a733df0e5d197326e053bdddb2be7012616fc",
                ),
            ),
            read_from="input.data",
            test_split=LastFramesSplit(n_test=21),
            # The set's CP2K input (revPBE0-D3.cp2k.inp): &VDW_POTENTIAL / &PAIR_POTENTIAL, TYPE DFTD3
            # (zero damping), REFERENCE_FUNCTIONAL revPBE0 (s6 1, sr6 0.949, s8 0.792), R_CUTOFF 15, LONG_RANGE_CORRECTION
            # TRUE, no three-body term (CALCULATE_C9_TERM defaults to false). CP2K sums pairs within 2 × R_CUTOFF = 30 Å
            # (its manual: 'The cutoff will be 2 times this value'; qs_dispersion_pairpot.F: rcut = 2*rc_disp), switched
            # off over the last bohr, and adds a mean-field energy and isotropic virial for the rest (no forces).
            dispersion="d3(zero):revpbe0:30",
        ),
        Dataset(
            name="water-deepmd",
            description=(
                "Liquid water, 64 H2O in a 12.4447 Å cubic box, from the DeePMD-kit water example. The DFT "
                "functional is not documented upstream: benchmark it separately, never mix it with "
                "water-revpbe0-d3 in one training run."
            ),
            format="deepmd",
            original_units="eV, Angstrom, eV/Angstrom (float32)",
            n_frames=400,
            licence="LGPL-3.0 (the deepmd-kit repository's licence)",
            citation=(
                "H. Wang, L. Zhang, J. Han, W. E, DeePMD-kit: A deep learning package for many-body potential "
                "energy representation and molecular dynamics, Comput. Phys. Commun. 228, 178 (2018), "
                "doi:10.1016/j.cpc.2018.03.016"
            ),
            source=Source("https://github.com/deepmodeling/deepmd-kit", _DEEPMD_COMMIT),
            files=tuple(
                DatasetFile(path, f"{_DEEPMD_URL}/{path}", sha256) for path, sha256 in _DEEPMD_SHA256.items()
            ),
            read_from=".",
            # data_3 is read last, so its 80 frames are the last 80 in load order.
            test_split=LastFramesSplit(n_test=80),
        ),
        Dataset(
            name="qm9",
            description=(
                "130,831 small organic molecules (C, H, N, O, F; up to 29 atoms), B3LYP/6-31G(2df,p) "
                "equilibrium geometries labelled with U0; no forces. Installed with the qm9pack package."
            ),
            format="qm9pack",
            original_units="Angstrom, Hartree",
            n_frames=130_831,
            licence="data CC0 1.0 (figshare), article CC-BY 4.0; qm9pack package MIT",
            citation=(
                "R. Ramakrishnan, P. O. Dral, M. Rupp, O. A. von Lilienfeld, Quantum chemistry structures and "
                "properties of 134 kilo molecules, Sci. Data 1, 140022 (2014), doi:10.1038/sdata.2014.22"
            ),
            source=Source("https://pypi.org/project/qm9pack/", "qm9pack>=1.0.3"),
            files=(),
            read_from="",
            test_split=SeededPermutationSplit(test_fraction=0.1),
            atom_energies_eV={symbol: u0 * Hartree for symbol, u0 in QM9_ATOM_U0_HARTREE.items()},
        ),
    )
}


def get_dataset(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}") from None


def provenance(spec: str) -> dict:
    """Where a registry dataset comes from, for the metadata of files derived from it; {} for other specs."""
    if spec not in DATASETS:
        return {}
    dataset = DATASETS[spec]
    return {
        "dataset": dataset.name,
        "source_repository": dataset.source.repository,
        "source_revision": dataset.source.revision,
        "licence": dataset.licence,
        "citation": dataset.citation,
        "original_units": dataset.original_units,
    }


def atom_energies(spec: str) -> dict[str, float]:
    """The free-atom energies (eV) a registry dataset defines; {} for other specs and datasets."""
    dataset = DATASETS.get(spec) if isinstance(spec, str) else None
    return dict(dataset.atom_energies_eV or {}) if dataset else {}


def standard_split(name: str, n_frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pool_indices, test_indices) of the standard test split, as sorted int64 frame indices in load order.

    Report every comparison on this test set; train and validate on the pool. The split is defined
    for the whole dataset, so `n_frames` must be its full size (a check that the frames were loaded
    completely); to use a subset, draw it from the pool.
    """
    dataset = get_dataset(name)
    if n_frames != dataset.n_frames:
        raise DataError(
            f"the standard split of {name!r} is defined for all its {dataset.n_frames} frames, got n_frames={n_frames}"
        )
    test = dataset.test_split.test_indices(n_frames, seed).astype(np.int64)
    pool = np.setdiff1d(np.arange(n_frames, dtype=np.int64), test)
    return pool, test


# -------------------------------------------------------------------------------------------- text


def list_table() -> str:
    """A table of the registered datasets, for `tpainn data list`."""
    header = ("name", "format", "frames", "original units", "licence")
    rows = [
        (d.name, d.format, f"{d.n_frames:,}", d.original_units, d.licence.split(" (")[0]) for d in DATASETS.values()
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows))
    return "\n".join(lines)
