"""The `tpainn` command: a thin layer over the functions of the Python API."""

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import List, Optional


def _data(args: argparse.Namespace) -> None:
    from tpainn.data import hdf5, registry

    if args.data_command == "list":
        print(registry.list_table())
    elif args.data_command == "info":
        from tpainn.data.summary import describe_source

        if args.name in registry.DATASETS and not args.frames:
            print(registry.info(args.name))
        else:
            print(describe_source(args.name, args.format, args.model, **_label_keys(args)))
    else:
        n = hdf5.convert(args.source, args.destination, format=args.format)
        print(f"wrote {n} frames to {args.destination}")


def _train(args: argparse.Namespace) -> None:
    from tpainn.train import load_config, train

    overrides = list(args.overrides)
    if args.command == "autotune":
        overrides += [f"autotune.from={args.pretrained}", f"data.dataset={args.data}"]
        overrides += [f"data.{key}={value}" for key, value in (("test", args.test), *_label_keys(args).items()) if value is not None]
    train(load_config(args.config, overrides), resume=args.resume)


def _evaluate(args: argparse.Namespace) -> None:
    from tpainn.data.sources import load_source, pool_and_test
    from tpainn.dispersion import without_dispersion
    from tpainn.train import error_metrics, load_model, predict
    from tpainn.train.evaluate import format_metrics, parity_plot

    if args.subset == "all" and args.test is not None:
        raise ValueError(f"--test {args.test} applies with --subset test or --subset pool, not to all frames")
    model = load_model(args.model)
    # A model trained without D3 is scored against DFT minus D3 (the same force errors as model + D3 against DFT).
    frames = load_source(args.data, args.format, **_label_keys(args))
    frames = without_dispersion(frames, model.hyperparameters["dispersion"], args.data)
    if args.subset != "all":
        test = _evaluation_split(args)
        pool, test_frames = pool_and_test({"dataset": args.data, "test": test, "test_seed": args.test_seed}, frames)
        frames = list(test_frames) if args.subset == "test" else [frames[int(i)] for i in pool]
    prediction = predict(model, frames)
    metrics = error_metrics(prediction)
    print(format_metrics(metrics))
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"parity plot: {parity_plot(prediction, output / 'parity.png', title=f'{args.data} ({args.subset})')}")


def _evaluation_split(args: argparse.Namespace):
    """The split `evaluate --subset` takes: "standard" (registry datasets) or a fraction 0 < f < 1 of the frames."""
    from tpainn.data.registry import DATASETS

    if args.test in (None, "standard"):
        if args.data not in DATASETS:
            raise ValueError(
                f"--subset {args.subset}: {args.data} is not a registry dataset and has no standard split; pass "
                "--test 0.2 to hold out a fraction of its frames (--test-seed picks which), or evaluate a test file whole"
            )
        return "standard"
    try:
        fraction = float(args.test)
    except ValueError:
        fraction = float("nan")
    if not 0 < fraction < 1:
        raise ValueError(f"--test {args.test}: with --subset, standard or a fraction between 0 and 1 such as 0.2 "
                         "(to score a test file, give it as the data)")  # fmt: skip
    return fraction


def _export(args: argparse.Namespace) -> None:
    from tpainn.export import export_model

    print(f"exported {args.model} to {export_model(args.model, args.output, fused=not args.unfused)}")


def _classical(args: argparse.Namespace) -> None:
    if args.system == "for":
        from tpainn.classical.for_system import classical_for

        print(classical_for(args.file, args.format, **_label_keys(args)))
    elif args.system == "verify":
        from tpainn.classical import verify_frames

        report = verify_frames(args.file, args.frames)
        print(json.dumps(report, indent=2, default=float))
        if not report["passed"]:
            raise ValueError(f"{args.file}: stored labels do not match the recomputation (see the report above)")
    elif args.system == "contacts":
        from tpainn.classical.contacts import add_short_contacts

        record = add_short_contacts(args.source, args.output, fraction=args.fraction,
                                    contacts_per_frame=args.per_frame, seed=args.seed)  # fmt: skip
        print(f"{args.output}: {len(record['frames'])} of the frames of {args.source} turned into short contacts")
    elif args.system == "water":
        from tpainn.classical.water import generate_water

        n = generate_water(
            args.output, model=args.model, n_molecules=args.n_molecules, temperatures=args.temperatures,
            densities=args.densities, frames_per_state=args.frames_per_state, equilibration_ps=args.equilibration_ps,
            sample_interval_fs=args.sample_interval_fs, timestep_fs=args.timestep_fs, seed=args.seed,
        )  # fmt: skip
        print(f"{args.output}: {n} frames")
    else:
        from tpainn.classical.mmff import generate_qm9, report_json

        report = generate_qm9(
            args.output, n_molecules=args.n_molecules, conformers_per_molecule=args.conformers,
            temperature=args.temperature, seed=args.seed, exclude_test=not args.include_test, workers=args.workers,
        )  # fmt: skip
        print(report_json(report))


def _analyze(args: argparse.Namespace) -> None:
    from tpainn.analysis import analyze_runs, write_report

    results = analyze_runs(args.run_dirs, properties=tuple(args.properties), equilibration_ps=args.equilibration_ps,
                           fit_window_ps=args.fit_window_ps, viscosity_mPa_s=args.viscosity)  # fmt: skip
    failed = [r["error"] for r in results if "error" in r]
    if len(failed) == len(results):
        raise ValueError("no run could be analysed: " + "; ".join(failed))
    paths = write_report(results, args.output)
    print(f"report: {paths['markdown']} and {paths['html']}")
    failed += [f"{r['run_dir']}: {name}: {why}" for r in results for name, why in r.get("errors", {}).items()]
    if failed:
        print("not analysed (named in the report):\n  " + "\n  ".join(failed), file=sys.stderr)


def _md(args: argparse.Namespace) -> None:
    from tpainn.md import ExternalProgramError, MDSettings, run_water

    if args.system == "input":
        from tpainn.md.own_input import write_lammps_input

        path = write_lammps_input(args.model, args.structure, args.output, frame=args.frame, temperature_K=args.temperature,
                                  steps=args.steps, timestep_fs=args.timestep_fs, format=args.format, **_label_keys(args))  # fmt: skip
        print(f"{path}: run it with `lmp -in {path.name}` in {path.parent}")
        return
    # Every MDSettings field is an option of the same name (dest), None where not given.
    settings = MDSettings.for_scale(args.scale, **{f.name: getattr(args, f.name) for f in dataclasses.fields(MDSettings)})
    try:
        summary = run_water(args.output, args.model, settings, label=args.label, mpi=args.mpi, device=args.device,
                            dtype=args.dtype)  # fmt: skip
    except ExternalProgramError as err:
        raise SystemExit(f"tpainn md: error: {err}") from err
    print(f"{args.output}: stages {', '.join(s['name'] for s in summary['stages'])} done; "
          f"analyse with `tpainn analyze {args.output} -o REPORT_DIR`")  # fmt: skip


def _experiment(args: argparse.Namespace) -> None:
    from tpainn.experiments.learning_curve import load_experiment, run_learning_curve

    run_learning_curve(load_experiment(args.config, args.overrides))


def _add_read_options(parser: argparse.ArgumentParser, format_option: bool = True) -> None:
    """--format and the label keys of extended XYZ / ASE database files (as data.format, data.energy_key, ...)."""
    if format_option:
        parser.add_argument("--format", default=None, help="the file's format when its name does not tell")
    parser.add_argument("--energy-key", default=None, help="extxyz / ASE db key of the energy (default: energy)")
    parser.add_argument("--forces-key", default=None, help="extxyz column / ASE db data key of the forces (default: forces)")
    parser.add_argument("--stress-key", default=None, help="extxyz / ASE db key of the stress, eV/Å³ (default: stress)")


def _label_keys(args: argparse.Namespace) -> dict:
    return {"energy_key": args.energy_key, "forces_key": args.forces_key, "stress_key": args.stress_key}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tpainn", description=__doc__)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (accepted anywhere on the line)")
    commands = p.add_subparsers(dest="command", required=True)

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
    data.set_defaults(handler=_data)

    classical = commands.add_parser("classical", help="generate classical force-field data for pretraining")
    systems = classical.add_subparsers(dest="system", required=True)
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
    contacts = systems.add_parser("contacts", help="copy a water file, turning molecules of some frames into short H–H contacts")
    contacts.add_argument("source", help="HDF5 frame file written by `tpainn classical water`")
    contacts.add_argument("--output", "-o", required=True, help="HDF5 frame file to write (appears when complete)")
    contacts.add_argument("--fraction", type=float, default=0.25, help="fraction of the frames turned")
    contacts.add_argument("--per-frame", type=int, default=4, help="molecules turned per turned frame")
    contacts.add_argument("--seed", type=int, default=0)
    qm9 = systems.add_parser("qm9", help="MMFF94 (RDKit) conformers of QM9 molecules outside the QM9 test split")
    qm9.add_argument("--output", "-o", required=True, help="HDF5 frame file (resumed if it exists)")
    qm9.add_argument("--n-molecules", type=int, default=20000)
    qm9.add_argument("--conformers", type=int, default=5, help="conformers per molecule")
    qm9.add_argument("--temperature", type=float, default=500.0, help="Langevin temperature, K")
    qm9.add_argument("--seed", type=int, default=0)
    qm9.add_argument("--include-test", action="store_true", help="allow QM9 test-split molecules (not for benchmarks)")
    qm9.add_argument("--workers", type=int, default=1)
    for_file = systems.add_parser("for", help="which classical pretraining tpainn has for the frames of a file")
    for_file.add_argument("file", help="frame source: registry name, file or DeePMD folder")
    _add_read_options(for_file)
    verify = systems.add_parser("verify", help="recompute stored frames (LAMMPS run 0 or RDKit) and finite differences")
    verify.add_argument("file", help="HDF5 frame file written by `tpainn classical water` or `qm9`")
    verify.add_argument("--frames", type=int, nargs="+", default=[0, -1], help="frame indices (negative: from the end)")
    classical.set_defaults(handler=_classical)

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
        train.set_defaults(handler=_train)

    experiment = commands.add_parser("experiment", help="experiments made of several training runs")
    experiments = experiment.add_subparsers(dest="experiment", required=True)
    curve = experiments.add_parser("learning-curve", help="test error vs DFT set size: autotuned vs from scratch")
    curve.add_argument("config", type=Path)
    curve.add_argument("overrides", nargs="*", help="key=value overrides, e.g. seeds=[0]")
    experiment.set_defaults(handler=_experiment)

    evaluate = commands.add_parser("evaluate", help="energy and force errors of a model on a dataset")
    evaluate.add_argument("model", type=Path, help="model.pt or checkpoint.pt")
    evaluate.add_argument("data", help="registry name or file path")
    evaluate.add_argument("--subset", choices=["all", "test", "pool"], default="all",
                          help="all frames, or the test set / the pool of the split --test")
    evaluate.add_argument("--test", default=None, help="with --subset: standard (registry datasets, the default) or a fraction such as 0.2")
    evaluate.add_argument("--test-seed", type=int, default=0, help="seed of a test fraction (as data.test_seed)")
    _add_read_options(evaluate)
    evaluate.add_argument("--output", default="evaluation", help="directory for metrics.json and parity.png")
    evaluate.set_defaults(handler=_evaluate)

    export = commands.add_parser("export", help="TorchScript file with metadata for the C++ engine (ASE, LAMMPS)")
    export.add_argument("model", type=Path, help="model.pt or checkpoint.pt")
    export.add_argument("--output", "-o", type=Path, required=True, help="exported file, e.g. water.pt")
    export.add_argument("--unfused", action="store_true",
                        help="plain TorchScript operators only (for libtorch loaders without tpainn; several times slower; "
                             "one LAMMPS rank only)")
    export.set_defaults(handler=_export)

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
    analyze.set_defaults(handler=_analyze)

    from tpainn.md.settings import PRODUCTION_ENSEMBLES, SCALES, MDSettings

    defaults = MDSettings()
    md = commands.add_parser("md", help="production MD in LAMMPS into a run directory for `tpainn analyze`")
    md_systems = md.add_subparsers(dest="system", required=True)
    md_water = md_systems.add_parser(
        "water", help="liquid water: minimise, NVT, NPT (density), NVT/NVE production (transport); continues a killed run")
    md_water.add_argument("--model", required=True, help="spcfw, qtip4pf, or a T-PaiNN model exported with `tpainn export`")
    md_water.add_argument("--output", "-o", type=Path, required=True, help="run directory (continued if it holds a run)")
    md_water.add_argument("--label", default=None, help="the model's name in reports (default: SPC/Fw, q-TIP4P/F, file stem)")
    presets = "; ".join(f"{name} {p['equilibration_ps']:g} + {p['npt_ps']:g} + {p['production_ps']:g} ps" for name, p in SCALES.items())
    md_water.add_argument("--scale", choices=list(SCALES), default="quick", help=f"preset stage lengths: {presets}")
    md_water.add_argument("--equilibration-ps", type=float, default=None, help="NVT equilibration (ps; default: --scale)")
    md_water.add_argument("--npt-ps", type=float, default=None,
                          help="NPT stage for the density (ps; default: --scale; 0: none, NVT at --density throughout)")
    md_water.add_argument("--density", dest="density_g_cm3", type=float, default=None,
                          help=f"g/cm³ of the packed box (default {defaults.density_g_cm3:g})")
    md_water.add_argument("--production-ps", type=float, default=None, help="production stage (ps; default: --scale)")
    md_water.add_argument("--production", dest="production_ensemble", choices=PRODUCTION_ENSEMBLES, default=None, help=f"production ensemble (default {defaults.production_ensemble})")
    md_water.add_argument("--n-molecules", type=int, default=None, help=f"default {defaults.n_molecules}")
    md_water.add_argument("--temperature", dest="temperature_K", type=float, default=None, help=f"K (default {defaults.temperature_K:g})")
    md_water.add_argument("--pressure", dest="pressure_bar", type=float, default=None, help=f"bar (default {defaults.pressure_bar:g})")
    md_water.add_argument("--timestep-fs", type=float, default=None, help=f"default {defaults.timestep_fs:g}")
    md_water.add_argument("--tdamp-fs", type=float, default=None, help=f"thermostat damping time (default {defaults.tdamp_fs:g})")
    md_water.add_argument("--pdamp-fs", type=float, default=None, help=f"barostat damping time (default {defaults.pdamp_fs:g})")
    md_water.add_argument("--thermo-every-fs", type=float, default=None, help=f"log interval (default {defaults.thermo_every_fs:g})")
    md_water.add_argument("--dump-every-fs", type=float, default=None, help=f"trajectory frame interval (default {defaults.dump_every_fs:g})")
    md_water.add_argument("--restart-every-ps", type=float, default=None, help=f"restart file interval (default {defaults.restart_every_ps:g})")
    md_water.add_argument("--minimize-iterations", type=int, default=None, help=f"default {defaults.minimize_iterations}")
    md_water.add_argument("--seed", type=int, default=None, help=f"Packmol box and initial velocities (default {defaults.seed})")
    md_water.add_argument("--mpi", type=int, default=1, help="MPI ranks: run `mpirun -np MPI lmp` (default 1: `lmp`)")
    md_water.add_argument("--device", default=None, help="pair_style tpainn device: cpu, cuda, cuda:K (default cpu)")
    md_water.add_argument("--dtype", choices=["float32", "float64"], default=None, help="network precision (default: the model's)")
    md_input = md_systems.add_parser("input", help="a LAMMPS input (NVT) for an exported model and a frame of your own data")
    md_input.add_argument("--model", required=True, help="T-PaiNN model exported with `tpainn export`")
    md_input.add_argument("--structure", required=True, help="frame source holding the starting structure")
    md_input.add_argument("--frame", type=int, default=0, help="which frame of it (default 0; -1: the last)")
    md_input.add_argument("--output", "-o", type=Path, required=True, help="folder for in.lammps and system.data")
    md_input.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    md_input.add_argument("--steps", type=int, default=1000, help="MD steps (default 1000)")
    md_input.add_argument("--timestep-fs", type=float, default=0.5, help="default 0.5")
    _add_read_options(md_input)
    md.set_defaults(handler=_md)
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
