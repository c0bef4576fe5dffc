"""Stress labels from the readers: extended XYZ (ASE's `stress` key, a `virial` key) and DeePMD (virial.npy),
in eV/Å³ with ASE's sign (σ = (1/V) ∂E/∂ε, positive under tension), and clear errors for bad stress input.

The reference is a real stress: ASE's Lennard-Jones calculator on a strained argon crystal, written the way each
format's own tools write it (ASE's extxyz writer; dpdata's virial = −stress × volume for DeePMD and for the
`virial` key of GAP/MACE-style files)."""

from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import GPa

from tpainn.data import DataError, read, read_deepmd, read_extxyz
from tpainn.data.labels import stress_of


def argon_frames(n: int = 3) -> list:
    """Strained, rattled fcc argon with LJ energy, forces and stress (eV/Å³, ASE sign) as SinglePointCalculators."""
    frames = []
    for k in range(n):
        atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
        strain = np.eye(3) + 0.02 * np.array([[k - 1, 0.3, 0], [0.3, -k, 0.1], [0, 0.1, 0.5 * k]])
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.rattle(0.05, seed=k)
        atoms.calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=8.0, smooth=True)
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def reference_stress(atoms) -> np.ndarray:
    return atoms.get_stress(voigt=False)


def write_xyz_with_virial(path: Path, frames, key: str = "virial", also_stress: bool = False, scale: float = 1.0) -> Path:
    """Extended XYZ whose comment lines carry `key`="9 numbers" = −stress × volume (eV), as GAP/MACE tools write."""
    def text(values) -> str:
        return " ".join(f"{float(x):.17g}" for x in np.ravel(values))

    lines = []
    for atoms in frames:
        virial = -reference_stress(atoms) * atoms.get_volume() * scale
        comment = (f'Lattice="{text(atoms.cell.array)}" Properties=species:S:1:pos:R:3:forces:R:3 '
                   f'energy={atoms.get_potential_energy():.17g} {key}="{text(virial)}" pbc="T T T"')  # fmt: skip
        if also_stress:
            comment += f' stress="{text(reference_stress(atoms))}"'
        lines += [str(len(atoms)), comment]
        for symbol, r, f in zip(atoms.get_chemical_symbols(), atoms.positions, atoms.get_forces()):
            lines.append(f"{symbol} {text(r)} {text(f)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_deepmd(root: Path, frames, virial_scale: float = 1.0, virial=None) -> Path:
    """A DeePMD system of `frames` with virial.npy = −stress × volume (eV), as dpdata writes it."""
    set_dir = root / "set.000"
    set_dir.mkdir(parents=True)
    symbols = frames[0].get_chemical_symbols()
    type_map = sorted(set(symbols))
    (root / "type_map.raw").write_text("\n".join(type_map) + "\n")
    (root / "type.raw").write_text("\n".join(str(type_map.index(s)) for s in symbols) + "\n")
    np.save(set_dir / "coord.npy", np.array([a.positions.ravel() for a in frames]))
    np.save(set_dir / "box.npy", np.array([a.cell.array.ravel() for a in frames]))
    np.save(set_dir / "energy.npy", np.array([a.get_potential_energy() for a in frames]))
    np.save(set_dir / "force.npy", np.array([a.get_forces().ravel() for a in frames]))
    if virial is None:
        virial = np.array([(-reference_stress(a) * a.get_volume()).ravel() for a in frames]) * virial_scale
    np.save(set_dir / "virial.npy", virial)
    return root


# ------------------------------------------------------------------------------------------ units and sign


def test_extxyz_stress_key_as_ase_writes_it(tmp_path):
    frames = argon_frames()
    path = tmp_path / "argon.xyz"
    ase.io.write(path, frames, format="extxyz")
    assert "stress=" in path.read_text().splitlines()[1]
    for original, loaded in zip(frames, read_extxyz(path)):
        np.testing.assert_allclose(stress_of(loaded, "test"), reference_stress(original), rtol=1e-10, atol=1e-14)
        # The label is where ASE looks for it, in ASE's convention.
        np.testing.assert_allclose(loaded.get_stress(voigt=False), reference_stress(original), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("key", ["virial", "Virial"])
def test_extxyz_virial_key_becomes_minus_virial_over_volume(tmp_path, key):
    frames = argon_frames()
    loaded = read_extxyz(write_xyz_with_virial(tmp_path / "argon.xyz", frames, key=key))
    for original, atoms in zip(frames, loaded):
        np.testing.assert_allclose(stress_of(atoms, "test"), reference_stress(original), rtol=1e-10, atol=1e-14)
        assert not any(k.lower() == "virial" for k in atoms.info)  # the virial is a label now, not info


def test_extxyz_stress_and_virial_must_agree(tmp_path):
    frames = argon_frames(2)
    assert len(read_extxyz(write_xyz_with_virial(tmp_path / "ok.xyz", frames, also_stress=True))) == 2
    with pytest.raises(DataError, match=r"bad.xyz:1: frame 0: stress and virial disagree"):
        read_extxyz(write_xyz_with_virial(tmp_path / "bad.xyz", frames, also_stress=True, scale=2.0))


def test_deepmd_virial_npy_becomes_stress_in_eV_per_A3(tmp_path):
    frames = argon_frames()
    loaded = read_deepmd(write_deepmd(tmp_path / "argon", frames))
    assert len(loaded) == len(frames)
    for original, atoms in zip(frames, loaded):
        np.testing.assert_allclose(stress_of(atoms, "test"), reference_stress(original), rtol=1e-10, atol=1e-14)
    assert len(read(tmp_path / "argon")) == len(frames)


def test_deepmd_virial_sign_and_units_of_a_compressed_box(tmp_path):
    """A box at +1 GPa (compressed: it pushes outward) has DeePMD virial W = P V (eV), ASE stress −P, so the pressure
    −tr(σ)/3 read back is +1 GPa = 6.2415e-3 eV/Å³."""
    atoms = argon_frames(1)[0]
    pressure = 1.0 * GPa
    virial = (pressure * atoms.get_volume() * np.eye(3)).reshape(1, 9)
    loaded = read_deepmd(write_deepmd(tmp_path / "p", [atoms], virial=virial))[0]
    stress = stress_of(loaded, "test")
    np.testing.assert_allclose(stress, -pressure * np.eye(3), rtol=1e-12)
    assert -np.trace(stress) / 3 / GPa == pytest.approx(1.0, rel=1e-12)
    assert -np.trace(stress) / 3 == pytest.approx(6.2415e-3, rel=1e-4)


def test_frames_without_stress_have_none(tmp_path):
    frames = argon_frames(1)
    frames[0].calc = SinglePointCalculator(frames[0], energy=-1.0, forces=np.zeros((len(frames[0]), 3)))
    ase.io.write(tmp_path / "plain.xyz", frames, format="extxyz")
    assert stress_of(read_extxyz(tmp_path / "plain.xyz")[0], "test") is None


# --------------------------------------------------------------------------------------- bad stress input


def test_extxyz_stress_of_wrong_length_names_file_and_frame(tmp_path):
    path = write_xyz_with_virial(tmp_path / "six.xyz", argon_frames(2))
    lines = path.read_text().splitlines()
    n = int(lines[0])
    comment = lines[n + 3]  # the second frame
    start = comment.index('virial="')
    lines[n + 3] = comment[:start] + 'virial="1 2 3 4 5 6"' + comment[comment.index('"', start + 8) + 1 :]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"six.xyz:{n + 3}: frame 1: .*virial.*9"):
        read_extxyz(path)


def test_extxyz_non_finite_stress_names_file_and_frame(tmp_path):
    frames = argon_frames(2)
    frames[1].calc.results["stress"] = frames[1].calc.results["stress"].copy()
    frames[1].calc.results["stress"][2] = np.nan
    ase.io.write(tmp_path / "nan.xyz", frames, format="extxyz")
    with pytest.raises(DataError, match=r"nan.xyz:\d+: frame 1: stress is not finite"):
        read_extxyz(tmp_path / "nan.xyz")


def test_extxyz_stress_needs_a_periodic_cell(tmp_path):
    atoms = argon_frames(1)[0]
    atoms.pbc = False
    ase.io.write(tmp_path / "molecule.xyz", atoms, format="extxyz")
    with pytest.raises(DataError, match="molecule.xyz:1: frame 0: stress or virial given for a frame that is not periodic"):
        read_extxyz(tmp_path / "molecule.xyz")


def test_deepmd_virial_of_wrong_shape_names_the_file(tmp_path):
    frames = argon_frames(2)
    root = write_deepmd(tmp_path / "argon", frames, virial=np.zeros((2, 6)))
    with pytest.raises(DataError, match=r"set.000/virial.npy: shape \(2, 6\), expected \(2, 9\)"):
        read_deepmd(root)
    np.save(root / "set.000" / "virial.npy", np.zeros((3, 9)))
    with pytest.raises(DataError, match=r"virial.npy: shape \(3, 9\), expected \(2, 9\)"):
        read_deepmd(root)


@pytest.mark.parametrize("value, kind", [(np.nan, "NaN"), (np.inf, "inf")])
def test_deepmd_non_finite_virial_names_file_and_frame(tmp_path, value, kind):
    frames = argon_frames(3)
    virial = np.array([(-reference_stress(a) * a.get_volume()).ravel() for a in frames])
    virial[2, 4] = value
    with pytest.raises(DataError, match=rf"set.000/virial.npy: frame 2 holds {kind}"):
        read_deepmd(write_deepmd(tmp_path / "argon", frames, virial=virial))


def test_deepmd_virial_without_a_periodic_cell_is_refused(tmp_path):
    root = write_deepmd(tmp_path / "argon", argon_frames(1))
    (root / "nopbc").write_text("")
    with pytest.raises(DataError, match="virial.npy: a virial needs a periodic cell"):
        read_deepmd(root)
