#!/usr/bin/env bash
# Classical-to-quantum transfer for QM9, quick scale: MMFF94 conformers of 20,100 molecules (20,099 typed) (none from
# the QM9 test split), pretraining, then the U0 learning curve (autotuned vs from scratch).
# Run from the project root with the package installed; every step resumes where it stopped.
set -euo pipefail
tpainn classical qm9 -o runs/classical/qm9-mmff.h5 --n-molecules 20100 --conformers 5 --workers 2
tpainn pretrain examples/qm9/pretrain-mmff.yaml --resume       # -> runs/qm9-pretrain/model.pt
tpainn experiment learning-curve examples/qm9/learning-curve.yaml
