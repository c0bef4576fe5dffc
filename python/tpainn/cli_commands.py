"""What each `tpainn` subcommand does (tpainn.cli parses the line): thin layers over the Python API."""

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def label_keys(args: argparse.Namespace) -> dict:
    return {"energy_key": args.energy_key, "forces_key": args.forces_key, "stress_key": args.stress_key}


def run_data(args: argparse.Namespace) -> None:
    from tpainn.data import DATASETS, convert, list_table

    if args.data_command == "list":
        print(list_table())
    elif args.data_command == "info":
        from tpainn.data.summary import describe_source, info

        if args.name in DATASETS and not args.frames:
            print(info(args.name))
        else:
            print(describe_source(args.name, args.format, args.model, **label_keys(args)))
    else:
        n = convert(args.source, args.destination, format=args.format)
        print(f"wrote {n} frames to {args.destination}")


def run_training(args: argparse.Namespace) -> None:
    from tpainn.train import load_config, train

    overrides = list(args.overrides)
    if args.command == "autotune":
        overrides += [f"autotune.from={args.pretrained}", f"data.dataset={args.data}"]
        overrides += [f"data.{key}={value}" for key, value in (("test", args.test), *label_keys(args).items()) if value is not None]
    train(load_config(args.config, overrides), resume=args.resume)


def run_evaluate(args: argparse.Namespace) -> None:
    from tpainn.data import load_frames
    from tpainn.data.sources import pool_and_test
    from tpainn.dispersion import without_dispersion
    from tpainn.train import error_metrics, load_trained, predict
    from tpainn.train.evaluate import format_metrics, parity_plot

    if args.subset == "all" and args.test is not None:
        raise ValueError(f"--test {args.test} applies with --subset test or --subset pool, not to all frames")
    model = load_trained(args.model)
    # A model trained without D3 is scored against DFT minus D3 (the same force errors as model + D3 against DFT).
    frames = load_frames(args.data, args.format, **label_keys(args))
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


def run_export(args: argparse.Namespace) -> None:
    from tpainn.export import export_model

    print(f"exported {args.model} to {export_model(args.model, args.output, fused=not args.unfused)}")


def run_classical(args: argparse.Namespace) -> None:
    if args.system == "for":
        from tpainn.classical.for_system import classical_for

        print(classical_for(args.file, args.format, **label_keys(args)))
    elif args.system == "verify":
        from tpainn.classical.verification import verify_frames

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
        from tpainn.classical.water_sampling import generate_water

        n = generate_water(
            args.output, model=args.model, n_molecules=args.n_molecules, temperatures=args.temperatures,
            densities=args.densities, frames_per_state=args.frames_per_state, equilibration_ps=args.equilibration_ps,
            sample_interval_fs=args.sample_interval_fs, timestep_fs=args.timestep_fs, seed=args.seed,
        )  # fmt: skip
        print(f"{args.output}: {n} frames")
    else:
        from tpainn.classical.qm9_sampling import generate_qm9, report_json

        report = generate_qm9(
            args.output, n_molecules=args.n_molecules, conformers_per_molecule=args.conformers,
            temperature=args.temperature, seed=args.seed, exclude_test=not args.include_test, workers=args.workers,
        )  # fmt: skip
        print(report_json(report))


def run_analyze(args: argparse.Namespace) -> None:
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


def run_md(args: argparse.Namespace) -> None:
    from tpainn.md import ExternalProgramError, MDSettings, run_water

    if args.system == "input":
        from tpainn.md.own_input import write_lammps_input

        path = write_lammps_input(args.model, args.structure, args.output, frame=args.frame, temperature_K=args.temperature,
                                  steps=args.steps, timestep_fs=args.timestep_fs, format=args.format, **label_keys(args))  # fmt: skip
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


def run_experiment(args: argparse.Namespace) -> None:
    from tpainn.experiments.learning_curve import load_experiment, run_learning_curve

    run_learning_curve(load_experiment(args.config, args.overrides))
