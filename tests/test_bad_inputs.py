"""Bad input to every command gives a clear one-line error: a table of (command line, expected message fragment).

Each case runs `tpainn` in-process (tpainn.cli.main) and must exit non-zero within 10 CPU seconds, print one error line
naming the problem and no traceback (that needs --debug), and never print a model path it did not write. The
ASE calculator and the LAMMPS pair style (through the LAMMPS Python module) have their own tables below.
"""

import json
import re
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from ase import Atoms

from helpers.frames import labelled_water, n2p2_text, write_deepmd, xyz_text
from helpers.runs import BOX_A, brownian_frames, write_run
from tpainn.cli import main
from tpainn.data import load_frames, write_frames
from tpainn.export import export_model

TIME_LIMIT_S = 10.0


def edit_line(text: str, line: int, old: str, new: str) -> str:
    lines = text.splitlines()
    assert old in lines[line], (old, lines[line])
    lines[line] = lines[line].replace(old, new, 1)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def paths(tmp_path_factory, pretrained_model) -> dict:
    """Every bad file the table names, by name; {out} is a fresh folder for outputs."""
    root = tmp_path_factory.mktemp("bad")
    p = {"out": root / "out", "model": pretrained_model, "missing": root / "missing.pt"}
    p["out"].mkdir()
    ok = xyz_text(labelled_water())
    texts = {
        "xyz_ok": ok,
        "xyz_huge": "999999999999" + ok[1:],
        "xyz_negative": "-3" + ok[1:],
        "xyz_word": "three" + ok[1:],
        "xyz_truncated": "\n".join(ok.splitlines()[:-1]) + "\n",
        "xyz_nan_pos": edit_line(ok, 2, "1.00000000 ", "nan "),
        "xyz_inf_energy": edit_line(ok, 1, "energy=-14.2", "energy=inf"),
        "xyz_word_energy": edit_line(ok, 1, "energy=-14.2", "energy=low"),
        "xyz_no_energy": edit_line(ok, 1, "energy=-14.2", "REF_energy=-14.2"),
        "xyz_nan_cell": edit_line(ok, 1, 'Lattice="6.0', 'Lattice="nan'),
        "xyz_zero_cell": edit_line(ok, 1, 'Lattice="6.0 0.0 0.0 0.0 6.0', 'Lattice="0.0 0.0 0.0 0.0 6.0'),
        "xyz_unknown_element": edit_line(ok, 2, "O ", "Qq "),
        "xyz_dummy_element": edit_line(ok, 2, "O ", "X "),
        "xyz_empty": "",
        "xyz_two_counts": "3\n" + ok,
        "xyz_stress6": edit_line(xyz_text(labelled_water(stress=True)), 1, "stress=\"", "stress=\"1 2 3 4 5 6\" old=\""),
        "xyz_virial_nan": edit_line(ok, 1, "energy=", 'virial="1 0 0 0 1 0 0 0 nan" energy='),
        "n2p2_ok": n2p2_text(labelled_water()),
    }
    nan_forces = labelled_water()
    nan_forces[1].calc.results["forces"][2, 1] = np.nan
    texts["xyz_nan_forces"] = xyz_text(nan_forces)
    texts["xyz_stress_molecule"] = edit_line(xyz_text(labelled_water(pbc=False)), 1, "energy=", 'stress="1 0 0 0 1 0 0 0 1" energy=')
    n2p2 = texts["n2p2_ok"]
    texts |= {
        "n2p2_truncated": "\n".join(n2p2.splitlines()[:-3]) + "\n",
        "n2p2_no_energy": "\n".join(line for line in n2p2.splitlines() if not line.startswith("energy")) + "\n",
        "n2p2_empty": "",
        "n2p2_unknown_element": n2p2.replace(" O ", " Qq ", 1),
        "n2p2_two_lattices": "\n".join(line for i, line in enumerate(n2p2.splitlines()) if i != 2) + "\n",
        "n2p2_outside": "atom 0 0 0 O 0 0 0 0 0\n" + n2p2,
    }
    lines = n2p2.splitlines()
    atom = next(i for i, line in enumerate(lines) if line.startswith("atom"))
    fields = lines[atom].split()
    fields[7] = "nan"
    lines[atom] = " ".join(fields)
    texts["n2p2_nan_force"] = "\n".join(lines) + "\n"
    for name, text in texts.items():
        suffix = ".data" if name.startswith("n2p2") else ".xyz"
        p[name] = root / f"{name}{suffix}"
        p[name].write_text(text)
    p["xyz_binary"] = root / "binary.xyz"
    p["xyz_binary"].write_bytes(b"3\n\xff\xfe\x00garbage\x00\n" * 4)
    p["n2p2_binary"] = root / "binary.data"
    p["n2p2_binary"].write_bytes(b"begin\n\xff\xfe\x00garbage\x00\nend\n")
    p["h5_text"] = root / "text.h5"
    p["h5_text"].write_text("not HDF5\n")
    p["unknown_suffix"] = root / "frames.cif"
    p["unknown_suffix"].write_text("data_x\n")
    # DeePMD systems.
    frames = labelled_water()
    p["dp_no_type_map"] = write_deepmd(root / "dp_no_type_map", frames, type_map=None)
    p["dp_type_range"] = write_deepmd(root / "dp_type_range", frames, type=b"0\n1\n2\n")
    coord = np.array([a.positions.ravel() for a in frames])
    p["dp_nan_coord"] = write_deepmd(root / "dp_nan_coord", frames, coord=np.where(np.arange(coord.size).reshape(coord.shape) == 7, np.nan, coord))
    p["dp_force_shape"] = write_deepmd(root / "dp_force_shape", frames, force=np.zeros((2, 6)))
    p["dp_virial_shape"] = write_deepmd(root / "dp_virial_shape", frames, virial=np.zeros((2, 6)))
    p["dp_virial_nan"] = write_deepmd(root / "dp_virial_nan", frames, virial=np.array([np.zeros(9), np.full(9, np.nan)]))
    p["dp_energy_inf"] = write_deepmd(root / "dp_energy_inf", frames, energy=np.array([-14.0, np.inf]))
    p["dp_truncated"] = write_deepmd(root / "dp_truncated", frames)
    coord_file = p["dp_truncated"] / "set.000" / "coord.npy"
    coord_file.write_bytes(coord_file.read_bytes()[:-20])
    p["dp_huge_header"] = write_deepmd(root / "dp_huge_header", frames)
    with open(p["dp_huge_header"] / "set.000" / "energy.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
        f.write(b"\0" * 16)
    p["dp_object"] = write_deepmd(root / "dp_object", frames)
    np.save(p["dp_object"] / "set.000" / "box.npy", np.array([{"a": 1}, {"b": 2}], dtype=object), allow_pickle=True)
    # Configs.
    for name, text in {"cfg_empty": "", "cfg_bad_yaml": "model: [1, 2\n", "cfg_list": "- a\n- b\n",
                       "cfg_model_scalar": "model: 5\n", "cfg_quoted_lr": 'optimizer:\n  lr: "1e-3"\n',
                       "cfg_unknown_key": "optimiser:\n  lr: 0.001\n", "cfg_tab": "model:\n\tcutoff: 4\n"}.items():  # fmt: skip
        p[name] = root / f"{name}.yaml"
        p[name].write_text(text)
    p["cfg_folder"] = root
    p["h5_folder"] = root / "folder.h5"
    p["h5_folder"].mkdir()
    # Models.
    p["exported"] = export_model(pretrained_model, root / "exported.pt")
    p["notmodel"] = root / "notmodel.pt"
    p["notmodel"].write_text("not a model\n")
    p["truncated_model"] = root / "truncated.pt"
    p["truncated_model"].write_bytes(Path(pretrained_model).read_bytes()[:2000])
    # HDF5 frame files changed after writing (write_frames refuses non-finite values; another writer may not).
    revpbe = list(load_frames("water-revpbe0-d3")[:8])
    for name in ("nan_h5", "h5_no_energy", "h5_bad_offsets", "h5_no_element", "h5_n_frames_text", "h5_truncated"):
        p[name] = root / f"{name}.h5"
        write_frames(p[name], revpbe)
    with h5py.File(p["nan_h5"], "r+") as f:
        f["forces"][int(f["offsets"][5]) + 1, 1] = np.nan  # frame 5, atom 1
    with h5py.File(p["h5_no_energy"], "r+") as f:
        del f["energy"]
    with h5py.File(p["h5_bad_offsets"], "r+") as f:
        f["offsets"][3] = 10**6
    with h5py.File(p["h5_no_element"], "r+") as f:
        f["numbers"][int(f["offsets"][2])] = 200  # frame 2, atom 0
    with h5py.File(p["h5_n_frames_text"], "r+") as f:
        f.attrs["n_frames"] = "eight"
    p["h5_truncated"].write_bytes(p["h5_truncated"].read_bytes()[:3000])
    # A run directory with a checkpoint (train without --resume refuses it).
    p["used_run"] = root / "used"
    p["used_run"].mkdir()
    (p["used_run"] / "checkpoint.pt").write_bytes(b"x")
    # MD run directories for analyze.
    frames = brownian_frames(0.23, 41, seed=3)
    volumes = np.random.default_rng(3).normal(1900.0, 5.0, 40)
    for name in ("run_empty", "run_header", "run_partial", "run_short", "run_bad_summary", "run_crashed", "run_dump_cut"):
        write_run(root / name, frames, BOX_A, model=name, npt_volumes=volumes, trajectory="xu" if name == "run_dump_cut" else "dcd")
        p[name] = root / name
    dcd = (p["run_empty"] / "trajectory.dcd")
    data = dcd.read_bytes()
    dcd.write_bytes(b"")
    frame_bytes = 56 + 3 * (4 * frames.shape[1] + 8)  # unit cell record + x, y, z records
    (p["run_header"] / "trajectory.dcd").write_bytes(data[: len(data) - len(frames) * frame_bytes])
    (p["run_partial"] / "trajectory.dcd").write_bytes(data[: len(data) - 1000])
    (p["run_short"] / "trajectory.dcd").write_bytes(data[: len(data) - 10 * frame_bytes])
    (p["run_bad_summary"] / "summary.json").write_text('{"units": "metal", ')
    with open(p["run_crashed"] / "log.lammps", "a") as log:
        log.write("ERROR: Pair tpainn: atoms 3 and 7 overlap (0.05 A)\n")
    dump = p["run_dump_cut"] / "trajectory.lammpstrj"
    dump.write_text("\n".join(dump.read_text().splitlines()[:-5]) + "\n")
    p["file_not_dir"] = root / "plain_file"
    p["file_not_dir"].write_text("x")
    return p


DATA = "water-revpbe0-d3"
TINY = ["model.n_features=8", "model.n_interactions=2", "model.n_rbf=4", "model.cutoff=3.0", "model.dtype=float64",
        "threads=1", "epochs=2", "split.n_train=4", "split.n_val=2"]  # fmt: skip

# (id, command line with {name} placeholders for the `paths` fixture, fragment the error line must contain)
CASES = [
    # data convert: every reader's damage is named with the file and the frame or line
    ("xyz-huge-count", "data convert {xyz_huge} {out}/a.h5", "xyz_huge.xyz:1: frame 0: the header says 999999999999 atoms, but only"),
    ("xyz-negative-count", "data convert {xyz_negative} {out}/a.h5", "xyz_negative.xyz:1: frame 0: negative atoms count -3"),
    ("xyz-count-not-a-number", "data convert {xyz_word} {out}/a.h5", "xyz_word.xyz:1: expected the atom count of frame 0"),
    ("xyz-truncated", "data convert {xyz_truncated} {out}/a.h5", "xyz_truncated.xyz:6: frame 1 declares 3 atoms but the file ends after 2 of them"),
    ("xyz-extra-count-line", "data convert {xyz_two_counts} {out}/a.h5", "xyz_two_counts.xyz"),
    ("xyz-nan-positions", "data convert {xyz_nan_pos} {out}/a.h5", "xyz_nan_pos.xyz:1: frame 0: positions are not finite"),
    ("xyz-nan-forces", "data convert {xyz_nan_forces} {out}/a.h5", "xyz_nan_forces.xyz:6: frame 1: forces are not finite"),
    ("xyz-inf-energy", "data convert {xyz_inf_energy} {out}/a.h5", "xyz_inf_energy.xyz:1: frame 0: the energy is not a finite number"),
    ("xyz-energy-not-a-number", "data convert {xyz_word_energy} {out}/a.h5", "frame 0: the energy is not a number ('low')"),
    ("xyz-no-energy", "data convert {xyz_no_energy} {out}/a.h5", "frame 0: no energy (the key `energy=` of the comment line; its keys: REF_energy"),
    ("xyz-nan-cell", "data convert {xyz_nan_cell} {out}/a.h5", "frame 0: "),
    ("xyz-zero-cell-vector", "data convert {xyz_zero_cell} {out}/a.h5", "frame 0: periodic in direction a but cell vector a has length 0"),
    ("xyz-unknown-element", "data convert {xyz_unknown_element} {out}/a.h5", "xyz_unknown_element.xyz:1: frame 0: not a readable extended XYZ frame"),
    ("xyz-dummy-element", "data convert {xyz_dummy_element} {out}/a.h5", "frame 0: atom 0 has no element (symbol X"),
    ("xyz-empty", "data convert {xyz_empty} {out}/a.h5", "xyz_empty.xyz: no frames (the file is empty)"),
    ("xyz-binary", "data convert {xyz_binary} {out}/a.h5", "binary.xyz:"),
    ("xyz-stress-six-values", "data convert {xyz_stress6} {out}/a.h5", "frame 0: not a readable extended XYZ frame (ValueError: Got info item stress"),
    ("xyz-virial-nan", "data convert {xyz_virial_nan} {out}/a.h5", "xyz_virial_nan.xyz:1: frame 0: virial: stress is not finite"),
    ("xyz-stress-without-cell", "data convert {xyz_stress_molecule} {out}/a.h5", "frame 0: stress or virial given for a frame that is not periodic"),
    ("n2p2-truncated", "data convert {n2p2_truncated} {out}/a.h5", "without 'end': it is truncated"),
    ("n2p2-nan-force", "data convert {n2p2_nan_force} {out}/a.h5", "n2p2_nan_force.data:11: frame 0: forces are not finite"),
    ("n2p2-no-energy", "data convert {n2p2_no_energy} {out}/a.h5", "frame 0 has no 'energy' line"),
    ("n2p2-empty", "data convert {n2p2_empty} {out}/a.h5", "n2p2_empty.data: no frames"),
    ("n2p2-unknown-element", "data convert {n2p2_unknown_element} {out}/a.h5", "unknown element symbol 'Qq'"),
    ("n2p2-two-lattice-lines", "data convert {n2p2_two_lattices} {out}/a.h5", "frame 0 has 2 lattice lines, expected 0 or 3"),
    ("n2p2-line-outside-frame", "data convert {n2p2_outside} {out}/a.h5", "n2p2_outside.data:1: 'atom' outside a begin ... end frame"),
    ("n2p2-binary", "data convert {n2p2_binary} {out}/a.h5", "binary.data:2: not text"),
    ("deepmd-no-type-map", "data convert {dp_no_type_map} {out}/a.h5", "type_map.raw: missing"),
    ("deepmd-type-out-of-range", "data convert {dp_type_range} {out}/a.h5", "type.raw: atom types must lie in 0..1"),
    ("deepmd-nan-coord", "data convert {dp_nan_coord} {out}/a.h5", "set.000/coord.npy: frame 0 holds NaN"),
    ("deepmd-force-shape", "data convert {dp_force_shape} {out}/a.h5", "force.npy: shape (2, 6), expected (2, 9)"),
    ("deepmd-virial-shape", "data convert {dp_virial_shape} {out}/a.h5", "virial.npy: shape (2, 6), expected (2, 9)"),
    ("deepmd-virial-nan", "data convert {dp_virial_nan} {out}/a.h5", "virial.npy: frame 1 holds NaN"),
    ("deepmd-energy-inf", "data convert {dp_energy_inf} {out}/a.h5", "energy.npy: frame 1 holds inf"),
    ("deepmd-truncated-npy", "data convert {dp_truncated} {out}/a.h5", "coord.npy: the header says shape (2, 9) (144 bytes) but 124 bytes follow"),
    ("deepmd-huge-npy-header", "data convert {dp_huge_header} {out}/a.h5", "energy.npy: the header says shape (1000000000000,)"),
    ("deepmd-object-npy", "data convert {dp_object} {out}/a.h5", "box.npy: holds object values, expected numbers"),
    ("convert-to-non-hdf5", "data convert {xyz_ok} {out}/a.xyz", "the destination must be an HDF5 file"),
    ("convert-missing-source", "data convert {out}/nothing.xyz {out}/a.h5", "nothing.xyz: no such file or folder"),
    ("convert-unknown-format", "data convert {xyz_ok} {out}/a.h5 --format pdb", "unknown format 'pdb'"),
    ("convert-unknown-suffix", "data convert {unknown_suffix} {out}/a.h5", "cannot tell the format from the name"),
    ("convert-onto-its-source", "data convert {nan_h5} {nan_h5}", "nan_h5.h5: the destination is the source; write to another file"),
    ("convert-to-a-missing-folder", "data convert {xyz_ok} {out}/no/such/dir/a.h5", "no/such/dir: the output folder does not exist"),
    ("convert-to-a-folder", "data convert {xyz_ok} {h5_folder}", "folder.h5: is a folder, not an HDF5 file to write"),
    ("convert-hdf5-not-hdf5", "data convert {h5_text} {out}/a.h5", "text.h5: cannot be opened as an HDF5 file"),
    ("h5-nan-forces", "data convert {nan_h5} {out}/a.h5", "nan_h5.h5: frame 5: forces are not finite: NaN (row 1:"),
    ("h5-missing-dataset", "data convert {h5_no_energy} {out}/a.h5", "h5_no_energy.h5: the dataset 'energy' is missing"),
    ("h5-damaged-offsets", "data convert {h5_bad_offsets} {out}/a.h5", "h5_bad_offsets.h5: the frame offsets are damaged"),
    ("h5-atomic-number-200", "data convert {h5_no_element} {out}/a.h5", "h5_no_element.h5: frame 2: atom 0 has atomic number 200, which is no element"),
    ("h5-frame-count-text", "data convert {h5_n_frames_text} {out}/a.h5", "h5_n_frames_text.h5: the n_frames attribute is 'eight', not a frame count"),
    ("h5-truncated", "data convert {h5_truncated} {out}/a.h5", "h5_truncated.h5: cannot be opened as an HDF5 file (Unable to synchronously open file (truncated file"),
    ("data-info-unknown", "data info water-pbe", "unknown dataset 'water-pbe'"),
    # train: the config is checked when it is loaded
    ("lr-not-a-number", "train {cfg_empty} optimizer.lr=abc", "config key 'optimizer.lr' must be a number, got 'abc'"),
    ("lr-negative", "train {cfg_empty} optimizer.lr=-1e-3", "config key 'optimizer.lr' must be > 0, got -0.001"),
    ("lr-quoted-in-file", "train {cfg_quoted_lr}", "'optimizer.lr' must be a number, got '1e-3' (str) (write numbers without quotes)"),
    ("epochs-zero", "train {cfg_empty} epochs=0", "config key 'epochs' must be >= 1, got 0"),
    ("n-train-fraction", "train {cfg_empty} split.n_train=2.5", "config key 'split.n_train' must be an integer, got 2.5"),
    ("lr-nan", "train {cfg_empty} optimizer.lr=.nan", "config key 'optimizer.lr' must be a finite number, got nan"),
    ("lr-nan-text", "train {cfg_empty} optimizer.lr=nan", "config key 'optimizer.lr' must be a number, got 'nan' (str)"),
    ("cutoff-overflows", "train {cfg_empty} model.cutoff=1e400", "config key 'model.cutoff' must be a finite number, got inf"),
    ("cutoff-in-bohr-or-nm", "train {cfg_empty} model.cutoff=100 output_dir={out}/t5 " + " ".join(TINY[:2]),
     "cutoff 100 Å: about"),
    ("dtype-unknown", "train {cfg_empty} model.dtype=float16", "'model.dtype' must be one of float32, float64; got 'float16'"),
    ("schedule-unknown", "train {cfg_empty} schedule.kind=cos", "'schedule.kind' must be one of plateau, cosine"),
    ("strategy-unknown", "autotune --from {model} --data water-revpbe0-d3 autotune.strategy=all", "'autotune.strategy' must be one of full, freeze, warmup"),
    ("ema-decay-one", "train {cfg_empty} ema_decay=1", "config key 'ema_decay' must be < 1, got 1"),
    ("threads-zero", "train {cfg_empty} threads=0", "config key 'threads' must be >= 1, got 0"),
    ("bool-as-number", "train {cfg_empty} model.shared_filters=2", "'model.shared_filters' must be true or false, got 2"),
    ("loss-weight-negative", "train {cfg_empty} loss.forces_weight=-1", "config key 'loss.forces_weight' must be >= 0"),
    ("unknown-override-key", "train {cfg_empty} optimiser.lr=1e-3", "unknown config key 'optimiser'"),
    ("override-without-value", "train {cfg_empty} epochs", "override 'epochs' must look like section.key=value"),
    ("override-bad-yaml", "train {cfg_empty} model.cutoff=[4", "override 'model.cutoff=[4': the value '[4' is not valid YAML"),
    ("section-as-value", "train {cfg_empty} model=5", "config key 'model' must be a mapping, got 5"),
    ("config-missing", "train {out}/none.yaml", "none.yaml: no such config file"),
    ("config-folder", "train {cfg_folder}", "is a folder, not a YAML config file"),
    ("config-bad-yaml", "train {cfg_bad_yaml}", "cfg_bad_yaml.yaml: not valid YAML"),
    ("config-tab-indent", "train {cfg_tab}", "cfg_tab.yaml: not valid YAML"),
    ("config-a-list", "train {cfg_list}", "a config must be a mapping of keys to values, not a list"),
    ("config-section-scalar", "train {cfg_model_scalar}", "config key 'model' must be a mapping, got 5"),
    ("config-unknown-key", "train {cfg_unknown_key}", "unknown config key 'optimiser'"),
    ("split-too-large", "train {cfg_empty} split.n_train=500 output_dir={out}/big", "split n_train=500, n_val=10 does not fit the"),
    ("run-exists", "train {cfg_empty} output_dir={used_run}", "checkpoint.pt exists: pass --resume"),
    ("train-data-missing", "train {cfg_empty} data.dataset={out}/none.xyz data.test=null output_dir={out}/t1", "none.xyz: no such file or folder"),
    ("train-data-nan", "train {cfg_empty} data.dataset={xyz_nan_pos} data.test=null output_dir={out}/t2", "xyz_nan_pos.xyz:1: frame 0: positions are not finite"),
    ("train-h5-nan-forces", "train {cfg_empty} data.dataset={nan_h5} data.test=null split.n_train=6 split.n_val=2 output_dir={out}/t3 " + " ".join(TINY[:6]),
     "nan_h5.h5: frame 5: forces are not finite"),
    ("train-diverges-stops", "train {cfg_empty} optimizer.lr=1e30 data.test=null split.n_train=6 split.n_val=2 optimizer.batch_size=2 output_dir={out}/t4 " + " ".join(TINY[:6]),
     "the inputs are finite, so the model diverged: lower optimizer.lr (now 1e+30)"),
    # models: training outputs vs exported files
    ("evaluate-exported", "evaluate {exported} water-revpbe0-d3 --output {out}/e1", "exported.pt is an exported model (TorchScript, from `tpainn export`)"),
    ("export-exported", "export {exported} -o {out}/x.pt", "exported.pt is an exported model"),
    ("autotune-exported", "autotune --from {exported} --data water-revpbe0-d3 output_dir={out}/a1", "exported.pt is an exported model"),
    ("evaluate-not-a-model", "evaluate {notmodel} water-revpbe0-d3 --output {out}/e2", "notmodel.pt is not a readable tpainn-model or tpainn-checkpoint file"),
    ("evaluate-truncated-model", "evaluate {truncated_model} water-revpbe0-d3 --output {out}/e3", "truncated.pt is not a readable"),
    ("evaluate-missing-model", "evaluate {missing} water-revpbe0-d3 --output {out}/e4", "missing.pt: no such file"),
    ("evaluate-nan-data", "evaluate {model} {xyz_nan_forces} --output {out}/e5", "frame 1: forces are not finite"),
    ("evaluate-subset-of-a-file", "evaluate {model} {xyz_ok} --subset test --output {out}/e6",
     "xyz_ok.xyz is not a registry dataset and has no standard split; pass --test 0.2 to hold out a fraction"),
    ("evaluate-test-a-file", "evaluate {model} water-revpbe0-d3 --subset test --test {xyz_ok} --output {out}/e7",
     "xyz_ok.xyz: with --subset, standard or a fraction between 0 and 1 such as 0.2 (to score a test file, give it as the data)"),
    ("evaluate-test-fraction-nan", "evaluate {model} {xyz_ok} --subset pool --test nan --output {out}/e8", "--test nan: with --subset, standard or a fraction"),
    ("evaluate-test-without-subset", "evaluate {model} {xyz_ok} --test 0.2 --output {out}/e9", "--test 0.2 applies with --subset test or --subset pool"),
    ("export-to-a-folder", "export {model} -o {out}", "/out: is a folder; give the file to write, e.g. "),
    ("export-missing-folder", "export {model} -o {out}/no/such/dir/x.pt", "no/such/dir: the output folder does not exist"),
    ("autotune-missing-model", "autotune --from {missing} --data water-revpbe0-d3 output_dir={out}/a2", "missing.pt: no such file"),
    ("autotune-other-size", "autotune --from {model} --data water-revpbe0-d3 " + " ".join(TINY[:5]) + " model.n_features=16 output_dir={out}/a3",
     "config model.n_features=16 does not match the pretrained model's n_features=8"),
    # md: settings and models checked before anything runs
    ("md-missing-model", "md water --model {missing} -o {out}/m1", "missing.pt"),
    ("md-training-model", "md water --model {model} -o {out}/m2", "is not a TorchScript file"),
    ("md-few-molecules", "md water --model spcfw -o {out}/m3 --n-molecules 2", "n_molecules"),
    ("md-long-timestep", "md water --model spcfw -o {out}/m4 --timestep-fs 5", "timestep_fs must be at most 2.0 fs"),
    ("md-negative-temperature", "md water --model spcfw -o {out}/m5 --temperature -300", "temperature_K"),
    ("md-dump-not-whole-steps", "md water --model spcfw -o {out}/m6 --dump-every-fs 0.3", "dump_every_fs"),
    ("md-mpi-zero", "md water --model spcfw -o {out}/m7 --mpi 0", "mpi must be an integer >= 1"),
    ("md-output-is-a-file", "md water --model spcfw -o {file_not_dir}", "plain_file"),
    # classical data and experiments
    ("classical-verify-not-hdf5", "classical verify {xyz_ok}", "xyz_ok.xyz: cannot be opened as an HDF5 file"),
    ("classical-verify-no-such-frame", "classical verify {nan_h5} --frames 99", "frame index 99 out of range (8 frames)"),
    ("classical-water-no-molecules", "classical water -o {out}/w.h5 --n-molecules 0", "n_molecules must be an integer >= 1, got 0"),
    ("classical-water-negative-temperature", "classical water -o {out}/w.h5 --temperatures -5", "temperatures must be positive and finite"),
    ("classical-qm9-no-molecules", "classical qm9 -o {out}/q.h5 --n-molecules 0", "n_molecules must be an integer >= 1, got 0"),
    ("experiment-config-missing", "experiment learning-curve {out}/none.yaml", "none.yaml: no such config file"),
    ("experiment-bad-sizes", "experiment learning-curve {cfg_empty} sizes=[1]", "config key 'sizes[0]' must be >= 2, got 1"),
    ("evaluate-output-is-a-file", "evaluate {model} {xyz_ok} --output {xyz_ok}", "xyz_ok.xyz: File exists"),
    ("analyze-output-is-a-file", "analyze {run_crashed} -o {xyz_ok}", "run_crashed/log.lammps: the LAMMPS run failed"),
    # analyze: a damaged run is named with its damage
    ("analyze-missing-run", "analyze {out}/none -o {out}/r1", "none: run directory does not exist"),
    ("analyze-empty-trajectory", "analyze {run_empty} -o {out}/r2 --properties rdf", "trajectory.dcd: the trajectory is empty (0 bytes)"),
    ("analyze-header-only-trajectory", "analyze {run_header} -o {out}/r3 --properties rdf", "run_header/trajectory.dcd: the trajectory holds a header but no frame"),
    ("analyze-partial-frame", "analyze {run_partial} -o {out}/r4 --properties rdf", "ends in a partial frame"),
    ("analyze-short-trajectory", "analyze {run_short} -o {out}/r5 --properties rdf", "holds 31 frames, but the production stage"),
    ("analyze-cut-dump", "analyze {run_dump_cut} -o {out}/r6 --properties rdf", "trajectory.lammpstrj: ends in a partial frame"),
    ("analyze-bad-summary", "analyze {run_bad_summary} -o {out}/r7", "summary.json: not valid JSON"),
    ("analyze-crashed-run", "analyze {run_crashed} -o {out}/r8", "the LAMMPS run failed: ERROR: Pair tpainn: atoms 3 and 7 overlap"),
]


@pytest.mark.parametrize("case, command, fragment", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_line(paths, capsys, case, command, fragment):
    argv = command.format(**paths).split()
    started = time.process_time()  # CPU time: the limit must hold on a loaded machine too
    code = main(argv)
    seconds = time.process_time() - started
    out, err = capsys.readouterr()
    error_lines = [line for line in err.splitlines() if line.startswith("tpainn ")]
    assert code != 0, f"exit 0 for bad input; stdout: {out}"
    assert "Traceback" not in err
    assert len(error_lines) == 1, err
    assert fragment in error_lines[0], error_lines[0]
    assert "model: " not in out, "a model path was printed for a run that failed"
    assert seconds < TIME_LIMIT_S, f"{seconds:.1f} s"


def test_the_loss_guard_names_the_frame_with_non_finite_input():
    """Frames given in memory skip the readers' checks; a non-finite loss then names the frame that caused it."""
    import torch

    from tpainn.data.graph import GraphDataset, collate
    from tpainn.train import load_config
    from tpainn.train.guards import NonFiniteLossError, check_loss

    frames = labelled_water(4)
    frames[2].calc.results["forces"][1, 0] = np.nan
    batch = collate([GraphDataset(frames, cutoff=3.0)[i] for i in (1, 2)])
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    config = load_config(None, ["split.n_train=4", "optimizer.batch_size=2"])
    with pytest.raises(NonFiniteLossError, match=r"the loss is nan at optimizer step 1 \(epoch 1, batch 1 of 2\); the "
                       r"batch holds frames 1, 2 of water-revpbe0-d3; non-finite input: frame 2 \(forces not finite\)$"):  # fmt: skip
        check_loss(torch.tensor(float("nan")), batch, optimizer, config)
    check_loss(torch.tensor(1.0), batch, optimizer, config)  # a finite loss passes


def test_the_table_is_large():
    assert len(CASES) + len(CALCULATOR_CASES) + len(LAMMPS_CASES) >= 60


def test_debug_shows_the_traceback(paths):
    with pytest.raises(ValueError, match="must be a number"):
        main(["train", str(paths["cfg_empty"]), "optimizer.lr=abc", "--debug"])


def test_numbers_in_exponent_notation_are_numbers(paths):
    """YAML 1.1 reads 1e-3 as a string; configs read it as the number it is, on the command line and in files."""
    from tpainn.train import load_config

    file = paths["out"] / "exp.yaml"
    file.write_text("optimizer:\n  lr: 1e-3\n  weight_decay: 1E+2\nschedule:\n  min_lr: 5e-7\n")
    config = load_config(file, ["optimizer.grad_clip=1e1", "split.n_train=1e2"])
    assert config["optimizer"]["lr"] == 1e-3 and config["optimizer"]["weight_decay"] == 100.0
    assert config["schedule"]["min_lr"] == 5e-7 and config["optimizer"]["grad_clip"] == 10.0
    assert config["split"]["n_train"] == 100 and isinstance(config["split"]["n_train"], int)


def test_keys_added_to_the_defaults_later_are_checked():
    """The checks derive from DEFAULTS: a key that someone adds is type-checked without touching config_check."""
    from tpainn.train.config import DEFAULTS, load_config

    base = {**DEFAULTS, "loss": {**DEFAULTS["loss"], "new_weight": 2.0}, "new_flag": False, "new_name": "x"}
    assert load_config(None, ["loss.new_weight=1e-2"], base=base)["loss"]["new_weight"] == 0.01
    with pytest.raises(ValueError, match="'loss.new_weight' must be >= 0"):  # the loss.* rule
        load_config(None, ["loss.new_weight=-1"], base=base)
    with pytest.raises(ValueError, match="'new_flag' must be true or false"):
        load_config(None, ["new_flag=maybe"], base=base)
    with pytest.raises(ValueError, match="'new_name' must be a string"):
        load_config(None, ["new_name=[1]"], base=base)


def test_analyze_reports_a_damaged_run_next_to_the_good_ones(paths, tmp_path, capsys):
    """The damaged runs are rows naming the damage; the good run is analysed; the command succeeds."""
    good = write_run(tmp_path / "good", brownian_frames(0.23, 41, seed=4), BOX_A, model="good",
                     npt_volumes=np.random.default_rng(4).normal(1900.0, 5.0, 40))  # fmt: skip
    runs = [good, paths["run_empty"], paths["run_short"], paths["run_bad_summary"]]
    assert main(["analyze", *map(str, runs), "-o", str(tmp_path / "report"), "--properties", "density", "rdf"]) == 0
    rows = [line for line in (tmp_path / "report" / "report.md").read_text().splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| good | ")
    report = (tmp_path / "report" / "report.md").read_text()
    assert "the trajectory is empty (0 bytes)" in report and "holds 31 frames, but the production stage" in report
    assert "summary.json: not valid JSON" in report
    err = capsys.readouterr().err
    assert "Traceback" not in err and "the trajectory is empty" in err
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert "rdf" in results[0] and "rdf" in results[1]["errors"]


# ------------------------------------------------------------------------------------- ASE calculator


def _calculator_atoms(kind: str) -> Atoms:
    atoms = Atoms("OH2", positions=[[1, 1, 1.12], [1, 1.76, 0.52], [1, 0.24, 0.52]], cell=np.eye(3) * 8.0, pbc=True)
    if kind == "nan":
        atoms.positions[1, 0] = np.nan
    elif kind == "overlap":
        atoms.positions[2] = atoms.positions[1] + 0.01
    elif kind == "element":
        atoms.numbers[0] = 6
    elif kind == "molecule":
        atoms.pbc = False
    return atoms


CALCULATOR_CASES = [
    ("missing-file", "{missing}", "plain", "energy", FileNotFoundError, "missing.pt: no such file"),
    ("training-output", "{model}", "plain", "energy", ValueError, "is not a TorchScript file"),
    ("not-a-model", "{notmodel}", "plain", "energy", ValueError, "is not a TorchScript file"),
    ("nan-position", "{exported}", "nan", "energy", ValueError, "position of atom 1 is not finite"),
    ("overlapping-atoms", "{exported}", "overlap", "energy", ValueError, "Å apart, closer than 0.100000 Å: overlapping atoms"),
    ("unknown-element", "{exported}", "element", "energy", ValueError, "not in the model's species"),
    ("stress-of-a-molecule", "{exported}", "molecule", "stress", Exception, "stress needs a cell periodic in all directions"),
]


@pytest.mark.parametrize("case, model, atoms, prop, error, fragment", CALCULATOR_CASES, ids=[c[0] for c in CALCULATOR_CASES])
def test_calculator_bad_input(paths, case, model, atoms, prop, error, fragment):
    from tpainn import TPaiNNCalculator

    structure = _calculator_atoms(atoms)
    with pytest.raises(error) as raised:
        structure.calc = TPaiNNCalculator(model.format(**paths), device="cpu")
        structure.get_stress() if prop == "stress" else structure.get_potential_energy()
    assert fragment in str(raised.value)


# ------------------------------------------------------------------------------------ LAMMPS pair style

LAMMPS_CASES = [
    ("missing-model", ["pair_style tpainn {missing}"], "no such file"),
    ("training-output", ["pair_style tpainn {model}"], "not a TorchScript file"),
    ("element-not-in-model", ["pair_style tpainn {exported}", "pair_coeff * * H C"], "element 'C' (atom type 2)"),
    ("too-few-elements", ["pair_style tpainn {exported}", "pair_coeff * * H"], "element symbol(s)"),
    ("bad-device", ["pair_style tpainn {exported} device tpu"], "device"),
    ("bad-dtype", ["pair_style tpainn {exported} dtype float16"], "dtype"),
    ("overlapping-atoms-by-id", ["pair_style tpainn {exported}", "pair_coeff * * H O", "run 0"],
     "atoms 205 and 101 are"),
]


@pytest.mark.parametrize("case, lines, fragment", LAMMPS_CASES, ids=[c[0] for c in LAMMPS_CASES])
def test_lammps_bad_input(paths, case, lines, fragment):
    from tpainn.classical.lammps_runtime import new_lammps

    with new_lammps() as lmp:
        lmp.commands_list(["units metal", "atom_style atomic", "boundary p p p", "region box block 0 8 0 8 0 8",
                           "create_box 2 box", "mass 1 1.008", "mass 2 15.999"])  # fmt: skip
        # Atom IDs far from LAMMPS' local indices (0, 1, 2): an error must name the IDs.
        created = lmp.create_atoms(3, [101, 205, 307], [1, 1, 2], [2.0, 2.0, 2.0, 2.0, 2.0, 2.05, 4.0, 4.0, 4.0])
        assert created == 3
        with pytest.raises(Exception) as raised:
            lmp.commands_list([line.format(**paths) for line in lines])
    message = str(raised.value)
    assert fragment in message or fragment.replace("205 and 101", "101 and 205") in message, message
    if "overlapping" in case:
        assert "(LAMMPS atom IDs)" in message
