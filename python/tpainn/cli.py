"""The `tpainn` command: a thin layer over the functions of the Python API."""

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import List, Optional

from tpainn import cli_commands


def _add_read_options(parser: argparse.ArgumentParser, format_option: bool = True) -> None:
    """--format and the label keys of extended XYZ / ASE database files (as data.format, data.energy_key, ...)."""
    if format_option:
        parser.add_argument("--format", default=None, help="the file's format when its name does not tell")
    parser.add_argument("--energy-key", default=None, help="extxyz / ASE db key of the energy (default: energy)")
    parser.add_argument("--forces-key", default=None, help="extxyz column / ASE db data key of the forces (default: forces)")
    parser.add_argument("--stress-key", default=None, help="extxyz / ASE db key of the stress, eV/Å³ (default: stress)")


def _add_data(commands) -> None:
    data = commands.add_parser("data", help="the dataset registry and file conversion")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    data_commands.add_parser("list", help="list registered datasets")
    info = data_commands.add_parser("info", help="a registered dataset's source, units, licence, split; or what any file holds")
    info.add_argument("name", help="registry name, or a file / DeePMD folder: frames, species, cells, label ranges, refusals")
    info.add_argument("--frames", action="store_true", help="for a registry name: read its frames and summarise them too")
    info.add_argument("--model", default=None, help="a model.pt to autotune from: are its species enough?")
    _add_read_options(info)
    convert = data_commands.add_parser("convert", help="convert frames (file or registry name) to the HDF5 store")
    convert.add_argument("source")
    convert.add_argument("destination")
    convert.add_argument("--format", default=None, help="source format (default: from the name)")
    data.set_defaults(handler=cli_commands.run_data)


def _add_classical_water(systems) -> None:
    water = systems.add_parser("water", help="flexible water in LAMMPS over a grid of temperatures and densities")
    water.add_argument("--output", "-o", required=True, help="HDF5 frame file (resumed if it exists)")
    water.add_argument("--model", choices=["spcfw", "qtip4pf"], default="spcfw")
    water.add_argument("--n-molecules", type=int, default=64)
    water.add_argument("--temperatures", type=float, nargs="+", default=[250, 300, 350, 400, 450], help="K")
    water.add_argument("--densities", type=float, nargs="+", default=[0.90, 0.95, 1.00, 1.05, 1.10], help="g/cm³")
    water.add_argument("--frames-per-state", type=int, default=200)
    water.add_argument("--equilibration-ps", type=float, default=5.0)
    water.add_argument("--sample-interval-fs", type=float, default=100.0)
    water.add_argument("--timestep-fs", type=float, default=0.5)
    water.add_argument("--seed", type=int, default=0)


def _add_classical_contacts(systems) -> None:
    contacts = systems.add_parser("contacts", help="copy a water file, turning molecules of some frames into short H–H contacts")
    contacts.add_argument("source", help="HDF5 frame file written by `tpainn classical water`")
    contacts.add_argument("--output", "-o", required=True, help="HDF5 frame file to write (appears when complete)")
    contacts.add_argument("--fraction", type=float, default=0.25, help="fraction of the frames turned")
    contacts.add_argument("--per-frame", type=int, default=4, help="molecules turned per turned frame")
    contacts.add_argument("--seed", type=int, default=0)


def _add_classical_qm9(systems) -> None:
    qm9 = systems.add_parser("qm9", help="MMFF94 (RDKit) conformers of QM9 molecules outside the QM9 test split")
    qm9.add_argument("--output", "-o", required=True, help="HDF5 frame file (resumed if it exists)")
    qm9.add_argument("--n-molecules", type=int, default=20000)
    qm9.add_argument("--conformers", type=int, default=5, help="conformers per molecule")
    qm9.add_argument("--temperature", type=float, default=500.0, help="Langevin temperature, K")
    qm9.add_argument("--seed", type=int, default=0)
    qm9.add_argument("--include-test", action="store_true", help="allow QM9 test-split molecules (not for benchmarks)")
    qm9.add_argument("--workers", type=int, default=1)


def _add_classical(commands) -> None:
    classical = commands.add_parser("classical", help="generate classical force-field data for pretraining")
    systems = classical.add_subparsers(dest="system", required=True)
    _add_classical_water(systems)
    _add_classical_contacts(systems)
    _add_classical_qm9(systems)
    for_file = systems.add_parser("for", help="which classical pretraining tpainn has for the frames of a file")
    for_file.add_argument("file", help="frame source: registry name, file or DeePMD folder")
    _add_read_options(for_file)
    verify = systems.add_parser("verify", help="recompute stored frames (LAMMPS run 0 or RDKit) and finite differences")
    verify.add_argument("file", help="HDF5 frame file written by `tpainn classical water` or `qm9`")
    verify.add_argument("--frames", type=int, nargs="+", default=[0, -1], help="frame indices (negative: from the end)")
    classical.set_defaults(handler=cli_commands.run_classical)


def _add_training(commands) -> None:
    """train, pretrain and autotune: one trainer, a config and section.key=value overrides."""
    for name, text in (("train", "train a PaiNN potential from a YAML config"),
                       ("pretrain", "train on a classical data set (the same trainer as `train`)"),
                       ("autotune", "adapt a pretrained model to a DFT set: refit reference energies, then fine-tune")):  # fmt: skip
        train = commands.add_parser(name, help=text)
        if name == "autotune":
            train.add_argument("--from", dest="pretrained", required=True, help="pretrained model.pt")
            train.add_argument("--data", required=True, help="DFT pool: registry name, file or DeePMD folder")
            train.add_argument("--test", default=None, help="standard, a fraction of the pool (0.2) or a test file (default: the config's)")
            _add_read_options(train, format_option=False)
            train.add_argument("--config", type=Path, default=None, help="YAML config (default: built-in defaults)")
        else:
            train.add_argument("config", type=Path)
        train.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. split.n_train=20")
        train.add_argument("--resume", action="store_true", help="continue the run in output_dir from its checkpoint")
        train.set_defaults(handler=cli_commands.run_training)


def _add_experiment(commands) -> None:
    experiment = commands.add_parser("experiment", help="experiments made of several training runs")
    experiments = experiment.add_subparsers(dest="experiment", required=True)
    curve = experiments.add_parser("learning-curve", help="test error vs DFT set size: autotuned vs from scratch")
    curve.add_argument("config", type=Path)
    curve.add_argument("overrides", nargs="*", help="key=value overrides, e.g. seeds=[0]")
    experiment.set_defaults(handler=cli_commands.run_experiment)


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="energy and force errors of a model on a dataset")
    evaluate.add_argument("model", type=Path, help="model.pt or checkpoint.pt")
    evaluate.add_argument("data", help="registry name or file path")
    evaluate.add_argument("--subset", choices=["all", "test", "pool"], default="all",
                          help="all frames, or the test set / the pool of the split --test")
    evaluate.add_argument("--test", default=None, help="with --subset: standard (registry datasets, the default) or a fraction such as 0.2")
    evaluate.add_argument("--test-seed", type=int, default=0, help="seed of a test fraction (as data.test_seed)")
    _add_read_options(evaluate)
    evaluate.add_argument("--output", default="evaluation", help="directory for metrics.json and parity.png")
    evaluate.set_defaults(handler=cli_commands.run_evaluate)


def _add_export(commands) -> None:
    export = commands.add_parser("export", help="TorchScript file with metadata for the C++ engine (ASE, LAMMPS)")
    export.add_argument("model", type=Path, help="model.pt or checkpoint.pt")
    export.add_argument("--output", "-o", type=Path, required=True, help="exported file, e.g. water.pt")
    export.add_argument("--unfused", action="store_true",
                        help="plain TorchScript operators only (for libtorch loaders without tpainn; several times slower; "
                             "one LAMMPS rank only)")
    export.set_defaults(handler=cli_commands.run_export)


def _add_analyze(commands) -> None:
    analyze = commands.add_parser("analyze", help="density, diffusion, RDFs, pressure and short contacts of water MD runs; one report for all")
    analyze.add_argument("run_dirs", nargs="+", type=Path, help="run directories written by `tpainn md water`")
    analyze.add_argument("--output", "-o", type=Path, required=True, help="report directory (markdown, HTML, PNGs)")
    analyze.add_argument("--properties", nargs="+", choices=["density", "diffusion", "rdf", "pressure", "contacts"],
                         default=["density", "diffusion", "rdf", "pressure", "contacts"])
    analyze.add_argument("--equilibration-ps", type=float, default=None,
                         help="NPT time discarded before averaging the density (default: detected)")
    analyze.add_argument("--fit-window-ps", type=float, nargs=2, default=None, metavar=("START", "END"),
                         help="MSD fit window (default: max(1 ps, 10%%) to 50%% of the trajectory)")
    analyze.add_argument("--viscosity", type=float, default=None,
                         help="shear viscosity for the Yeh–Hummer correction, mPa·s (default: experiment, 0.896)")
    analyze.set_defaults(handler=cli_commands.run_analyze)


def _setting_help(setting: dataclasses.Field) -> str:
    """An MDSettings field's help: a stage length defaults to the --scale preset, any other setting to its own."""
    from tpainn.md.settings import SCALES

    meta, flag = setting.metadata, _setting_flag(setting)
    if setting.name in SCALES["quick"]:
        return f"{meta['help']} ({meta['unit']}; default: --scale{'; ' + meta['note'] if meta['note'] else ''})"
    # The unit is said unless the option's name already says it (--timestep-fs).
    unit = meta["unit"] if meta["unit"] and not flag.endswith("-" + meta["unit"]) else ""
    text = " ".join(part for part in (unit, meta["help"]) if part)
    default = f"{setting.default:g}" if isinstance(setting.default, float) else setting.default
    return f"{text} (default {default})" if text else f"default {default}"


def _setting_flag(setting: dataclasses.Field) -> str:
    return setting.metadata["flag"] or "--" + setting.name.replace("_", "-")


def _add_md_water(md_systems) -> None:
    from tpainn.md.settings import SCALES, MDSettings

    md_water = md_systems.add_parser(
        "water", help="liquid water: minimise, NVT, NPT (density), NVT/NVE production (transport); continues a killed run")
    md_water.add_argument("--model", required=True, help="spcfw, qtip4pf, or a T-PaiNN model exported with `tpainn export`")
    md_water.add_argument("--output", "-o", type=Path, required=True, help="run directory (continued if it holds a run)")
    md_water.add_argument("--label", default=None, help="the model's name in reports (default: SPC/Fw, q-TIP4P/F, file stem)")
    presets = "; ".join(f"{name} {p['equilibration_ps']:g} + {p['npt_ps']:g} + {p['production_ps']:g} ps" for name, p in SCALES.items())
    md_water.add_argument("--scale", choices=list(SCALES), default="quick", help=f"preset stage lengths: {presets}")
    # Every MDSettings field is an option (dest: the field's name), None where not given (_md fills in the defaults).
    types = {"int": int, "float": float, "str": str}
    for setting in dataclasses.fields(MDSettings):
        md_water.add_argument(_setting_flag(setting), dest=setting.name, type=types[setting.type], default=None,
                              choices=setting.metadata["choices"], help=_setting_help(setting))  # fmt: skip
    md_water.add_argument("--mpi", type=int, default=1, help="MPI ranks: run `mpirun -np MPI lmp` (default 1: `lmp`)")
    md_water.add_argument("--device", default=None, help="pair_style tpainn device: cpu, cuda, cuda:K (default cpu)")
    md_water.add_argument("--dtype", choices=["float32", "float64"], default=None, help="network precision (default: the model's)")


def _add_md(commands) -> None:
    md = commands.add_parser("md", help="production MD in LAMMPS into a run directory for `tpainn analyze`")
    md_systems = md.add_subparsers(dest="system", required=True)
    _add_md_water(md_systems)
    md_input = md_systems.add_parser("input", help="a LAMMPS input (NVT) for an exported model and a frame of your own data")
    md_input.add_argument("--model", required=True, help="T-PaiNN model exported with `tpainn export`")
    md_input.add_argument("--structure", required=True, help="frame source holding the starting structure")
    md_input.add_argument("--frame", type=int, default=0, help="which frame of it (default 0; -1: the last)")
    md_input.add_argument("--output", "-o", type=Path, required=True, help="folder for in.lammps and system.data")
    md_input.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    md_input.add_argument("--steps", type=int, default=1000, help="MD steps (default 1000)")
    md_input.add_argument("--timestep-fs", type=float, default=0.5, help="default 0.5")
    _add_read_options(md_input)
    md.set_defaults(handler=cli_commands.run_md)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tpainn", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (accepted anywhere on the line)")
    commands = p.add_subparsers(dest="command", required=True)
    for add in (_add_data, _add_classical, _add_training, _add_experiment, _add_evaluate, _add_export, _add_analyze, _add_md):
        add(commands)
    return p


# Errors whose message is written for the user (data, config, files): shown as they are.
_USER_ERRORS = (ValueError, OSError)


def _one_line(err: BaseException) -> str:
    """The error as one line: its message's first line (naming the problem), the type for unexpected errors."""
    if isinstance(err, OSError) and err.filename and err.strerror:  # "[Errno 17] File exists: 'x'" → "x: File exists"
        return f"{err.filename}: {err.strerror}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    if len(lines) > 1:
        text += " [...]"
    if not isinstance(err, _USER_ERRORS):
        text = f"{type(err).__name__}: {text}"
    return text


def _close_progress_bars() -> None:
    """End the line of a progress bar that an error interrupted, so that the error is a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug is accepted anywhere on the line (tpainn train cfg.yaml --debug), not only before the command.
    debug = "--debug" in argv
    args = parser().parse_args([arg for arg in argv if arg != "--debug"])
    try:
        args.handler(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"tpainn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # every error is one line naming the problem; --debug shows the traceback
        if debug:
            raise
        _close_progress_bars()
        hint = "" if isinstance(err, _USER_ERRORS) else " (run with --debug for the traceback)"
        print(f"tpainn {args.command}: error: {_one_line(err)}{hint}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
