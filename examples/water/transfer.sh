#!/usr/bin/env bash
# Classical-to-quantum transfer for liquid water, quick scale (2 CPU cores): SPC/Fw data in LAMMPS,
# pretraining, then the learning curves (autotuned vs from scratch) on both DFT water sets.
# Run from the project root with the package installed (`make install`; then `. .venv/bin/activate`).
# Every step resumes where it stopped when re-run.
set -euo pipefail
tpainn classical water -o runs/classical/spcfw-64.h5          # 5,000 frames, ~25 min on one core
tpainn pretrain examples/water/pretrain-spcfw.yaml --resume    # -> runs/water-pretrain/model.pt
tpainn experiment learning-curve examples/water/learning-curve-revpbe0.yaml
tpainn experiment learning-curve examples/water/learning-curve-deepmd.yaml
# The autotuning strategies side by side (the default, full fine-tuning, is justified by this table):
for strategy in freeze warmup; do
  tpainn experiment learning-curve examples/water/learning-curve-revpbe0.yaml "sizes=[10, 20]" "seeds=[0]" \
    "overrides=[autotune.strategy=$strategy]" "output_dir=runs/learning-curve-revpbe0-$strategy"
done
