"""Short-contact frames: turned molecules, relabelled by LAMMPS, the rest of the file unchanged."""

import numpy as np
import pytest

from tpainn.classical.contacts import HH_WINDOW_A, MIN_OH_A, add_short_contacts
from tpainn.classical.verification import verify_frames
from tpainn.classical.water_sampling import frame_states, generate_water
from tpainn.cli import main as cli
from tpainn.data import H5Frames, write_frames
from tpainn.data.labels import labels_of


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("contacts") / "water.h5"
    generate_water(path, model="qtip4pf", n_molecules=16, temperatures=[300.0], densities=[1.0, 1.1],
                   frames_per_state=3, equilibration_ps=0.05, progress=False)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def turned(source):
    output = source.with_name("turned.h5")
    record = add_short_contacts(source, output, fraction=0.5, contacts_per_frame=2, seed=3, progress=False)
    return output, record


def _intermolecular(positions, lengths):
    """Brute-force minimum-image distances between atoms of different molecules (O,H,H order): H–H and O–H."""
    delta = positions[:, None, :] - positions[None, :, :]
    delta -= lengths * np.round(delta / lengths)
    distance = np.linalg.norm(delta, axis=-1)
    molecule = np.arange(len(positions)) // 3
    other = molecule[:, None] != molecule[None, :]
    hydrogen = np.arange(len(positions)) % 3 != 0
    hh = distance[other & hydrogen[:, None] & hydrogen[None, :]]
    oh = distance[other & ~hydrogen[:, None] & hydrogen[None, :]]
    return hh.min(), oh.min()


def _internal(molecule, lengths):
    delta = molecule[[1, 2, 2]] - molecule[[0, 0, 1]]
    return np.linalg.norm(delta - lengths * np.round(delta / lengths), axis=1)


def test_turned_frames_hold_rigid_molecules_in_short_hh_contact(source, turned):
    output, record = turned
    before, after = H5Frames(source), H5Frames(output)
    assert len(after) == len(before) == 6 and len(record["frames"]) == 3
    for index in range(len(before)):
        old, new = before[index], after[index]
        lengths = np.diag(old.cell.array)
        if index not in record["frames"]:
            assert np.array_equal(old.positions, new.positions)
            assert labels_of(old, "")[0] == labels_of(new, "")[0]
            continue
        moved = np.unique(np.nonzero(np.any(old.positions != new.positions, axis=1))[0] // 3)
        assert len(moved) == 2
        assert np.array_equal(old.positions[::3], new.positions[::3])  # turned about their oxygens
        for m in moved:  # rigid: O–H and H–H lengths kept (minimum image: the H's may wrap)
            lengths_of = [_internal(a.positions[3 * m:3 * m + 3], lengths) for a in (old, new)]
            np.testing.assert_allclose(lengths_of[0], lengths_of[1], atol=1e-10)
        hh, oh = _intermolecular(new.positions, lengths)
        assert HH_WINDOW_A[0] - 0.05 <= hh <= HH_WINDOW_A[1] + 0.05 and oh >= MIN_OH_A
        assert hh < _intermolecular(old.positions, lengths)[0]
        # Turning a molecule out of its hydrogen bonds into a contact costs energy.
        assert labels_of(new, "")[0] > labels_of(old, "")[0] + 0.2


def test_turned_frames_pass_the_label_verification_and_keep_their_states(source, turned):
    output, record = turned
    report = verify_frames(output, record["frames"][:2])
    assert report["passed"], report
    for a, b in zip(frame_states(source), frame_states(output)):
        assert np.array_equal(a, b)
    assert H5Frames(output).metadata["short_contacts"]["frames"] == record["frames"]


def test_bad_requests_are_refused(source, turned, tmp_path):
    output, _ = turned
    with pytest.raises(ValueError, match="fraction"):
        add_short_contacts(source, tmp_path / "a.h5", fraction=0.0)
    with pytest.raises(ValueError, match="is the source file"):
        add_short_contacts(source, source)
    with pytest.raises(ValueError, match="already holds short-contact frames"):
        add_short_contacts(output, tmp_path / "b.h5", progress=False)
    other = tmp_path / "other.h5"
    write_frames(other, [H5Frames(source)[0]], metadata={"generator": "someone else"})
    with pytest.raises(ValueError, match="not written by `tpainn classical water`"):
        add_short_contacts(other, tmp_path / "c.h5")
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "c.h5").exists()


def test_a_finished_output_is_kept_and_other_settings_refused(source, turned):
    output, record = turned
    modified = output.stat().st_mtime_ns
    assert add_short_contacts(source, output, fraction=0.5, contacts_per_frame=2, seed=3, progress=False) == record
    assert output.stat().st_mtime_ns == modified
    with pytest.raises(ValueError, match="not made from this source with these settings"):
        add_short_contacts(source, output, fraction=0.5, contacts_per_frame=2, seed=4, progress=False)


def test_contacts_command(source, tmp_path, capsys):
    output = tmp_path / "cli.h5"
    cli(["classical", "contacts", str(source), "-o", str(output), "--fraction", "0.2", "--per-frame", "1"])
    assert "1 of the frames" in capsys.readouterr().out
    assert len(H5Frames(output)) == 6
