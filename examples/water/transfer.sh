#!/usr/bin/env bash
# Classical-to-quantum transfer for liquid water, quick scale (2 CPU cores): SPC/Fw data in LAMMPS,
# pretraining, then the learning curves (autotuned vs from scratch) on both DFT water sets.
# Run from the project root with the package installed (`make install`; then `. .venv/bin/activate`).
# Every step resumes where it stopped when re-run.
set -euo pipefail
# 3,000 frames each (with stress), ~15-25 min per model on one core; pretraining ~15 min each on one core.
tpainn classical water --model qtip4pf -o runs/classical/qtip4pf-64.h5 --frames-per-state 120 --equilibration-ps 3
tpainn classical water --model spcfw -o runs/classical/spcfw-64.h5 --frames-per-state 120 --equilibration-ps 3
# A quarter of the q-TIP4P/F frames with four molecules turned into short H–H contacts (~2 min): the wall that
# liquid frames never show (without it every model formed cyclic double-donor dimers, H–H 1.1 Å, in MD).
tpainn classical contacts runs/classical/qtip4pf-64.h5 -o runs/classical/qtip4pf-64-contacts.h5
tpainn pretrain examples/water/pretrain-qtip4pf.yaml --resume  # -> runs/water-pretrain-qtip4pf/model.pt
tpainn pretrain examples/water/pretrain-spcfw.yaml --resume    # -> runs/water-pretrain/model.pt
# The autotuning strategies against one from-scratch arm (ablation.yaml: refit of the energy scale, L2-SP,
# replay, SPC/Fw vs q-TIP4P/F pretraining); its MD checks are in the issue notes.
tpainn experiment learning-curve examples/water/ablation.yaml
tpainn experiment learning-curve examples/water/learning-curve-revpbe0.yaml
tpainn experiment learning-curve examples/water/learning-curve-deepmd.yaml
# The autotuning strategies side by side (the default, full fine-tuning, is justified by this table):
for strategy in freeze warmup; do
  tpainn experiment learning-curve examples/water/learning-curve-revpbe0.yaml "sizes=[10, 20]" "seeds=[0]" \
    "overrides=[autotune.strategy=$strategy]" "output_dir=runs/learning-curve-revpbe0-$strategy"
done
