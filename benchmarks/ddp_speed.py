"""Data-parallel training on one machine: K processes × T threads each (`torchrun --nproc_per_node K -m tpainn
train CONFIG threads=T`) against one process with K × T threads, on the same config and the same global batch.

Usage: python benchmarks/ddp_speed.py [--processes 2] [--model 128x3] [--batch 4] [--n-train 16] [--epochs 3]

Each layout trains the same run (examples/water/train.yaml on water-revpbe0-d3, `--n-train` frames + 2 validation frames, no test set, global
batch `--batch`) into a temporary directory; the table gives the median over epochs 2.. of the seconds per epoch
that `tpainn train` writes to metrics.csv (the first epoch builds the graph cache), per optimizer step, and
the ratio. Both layouts take the same optimizer steps (tests/test_ddp.py checks they end on the same weights).
"""

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


CONFIG = Path(__file__).resolve().parents[1] / "examples" / "water" / "train.yaml"


def seconds_per_epoch(command, output_dir: Path, threads: int) -> float:
    """Run a `tpainn train` command; the median seconds of its epochs after the first."""
    subprocess.run([*command, f"output_dir={output_dir}", f"threads={threads}"], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": str(threads)})  # fmt: skip
    with open(output_dir / "metrics.csv") as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    return statistics.median(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2, help="K: processes of the data-parallel layout")
    parser.add_argument("--threads", type=int, default=1, help="T: threads per process (one process gets K × T)")
    parser.add_argument("--model", default="128x3", help="FEATURESxLAYERS")
    parser.add_argument("--batch", type=int, default=4, help="global batch (a multiple of --processes)")
    parser.add_argument("--n-train", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    features, layers = args.model.split("x")
    overrides = [f"model.n_features={features}", f"model.n_interactions={layers}", f"split.n_train={args.n_train}",
                 "split.n_val=2", "data.test=null", f"optimizer.batch_size={args.batch}", f"epochs={args.epochs}"]  # fmt: skip
    k, t = args.processes, args.threads
    with tempfile.TemporaryDirectory() as scratch:
        single = Path(scratch) / "single"
        data_parallel = Path(scratch) / "ddp"
        one = seconds_per_epoch([sys.executable, "-m", "tpainn", "train", str(CONFIG), *overrides], single, k * t)
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={k}"]
        many = seconds_per_epoch([*torchrun, "-m", "tpainn", "train", str(CONFIG), *overrides], data_parallel, t)
    steps = -(-args.n_train // args.batch)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; F x L = {args.model}, global batch "
          f"{args.batch} x 192-atom water, {steps} steps per epoch, median of epochs 2-{args.epochs}")
    print("| layout | s per epoch | s per optimizer step | speed-up |")
    print("|---|---|---|---|")
    print(f"| 1 process x {k * t} threads | {one:.2f} | {one / steps:.2f} | 1.00x |")
    print(f"| {k} processes x {t} thread(s) | {many:.2f} | {many / steps:.2f} | {one / many:.2f}x |")


if __name__ == "__main__":
    main()
